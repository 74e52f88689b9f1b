"""The read plan alone, against the matrix's server behaviours: seconds, not minutes.

    python benchmarks/run.py plans [--reads get|batch] [--tasks N] [--in-flight K]

No HTTP and no event loop: `ReadPlan` (with one shared `ModelTiming`, as the engine's) is
asked when to read each task, and each read is answered from the task's true duration and
the behaviour's progress and estimate models, a fixed latency later. The slots refill as
tasks are seen done, and the last few are read in a hurry, as in `generate_many`. It
leaves out request costs, batch-request spacing and CPU, so it is for trying a schedule;
the matrix (benchmarks/matrix.py) is the measure. On the matrix's GET rows it came
within 0.02 of the served runs' wall / oracle and within 0.3 of their reads per task.
"""

from __future__ import annotations

import argparse
import heapq
import random
from typing import Any

import attrs
from behaviours import BEHAVIOURS, simulator_knobs

from evolink._batch import HURRY_SHARE
from evolink._estimate import BATCH_COSTS, GET_COSTS, HURRY_COSTS, ReadCosts, ReadPlan
from evolink._models import TaskStatus
from evolink._timing import ModelTiming
from evolink._watcher import _grown
from evolink.testing import Estimates, LinearProgress


@attrs.frozen
class _Read:
    """What a read answers, as much of a `Task` as `ReadPlan.observe` looks at."""

    status: TaskStatus
    progress: int
    estimated_time: float | None

    @property
    def is_terminal(self) -> bool:
        return self.status is TaskStatus.COMPLETED


def simulate(
    behaviour: str,
    costs: ReadCosts,
    *,
    tasks: int = 1000,
    in_flight: int = 100,
    seed: int = 7,
    latency: float = 0.005,
) -> dict[str, float]:
    """Wall / oracle, reads per task and mean delay (s) of the plan against `behaviour`."""
    run = _Run(behaviour, costs, tasks=tasks, in_flight=in_flight, seed=seed, latency=latency)
    return run.run()


class _Run:
    """One simulated batch: a heap of planned reads, answered from the true durations."""

    def __init__(
        self,
        behaviour: str,
        costs: ReadCosts,
        *,
        tasks: int,
        in_flight: int,
        seed: int,
        latency: float,
    ) -> None:
        knobs: dict[str, Any] = simulator_knobs(behaviour)
        self.rng = random.Random(seed)
        self.estimates = knobs.get("estimates", Estimates())
        self.progress = knobs.get("progress", LinearProgress())
        self.durations = [knobs["durations"].sample(self.rng) for _ in range(tasks)]
        self.costs, self.in_flight, self.latency = costs, in_flight, latency
        self.timing = ModelTiming()
        self.due: list[tuple[float, int, int]] = []
        self.plans: dict[int, tuple[ReadPlan, float | None]] = {}
        # Each task's latest heap entry (older ones are stale), and the tasks still running.
        self.latest: dict[int, int] = {}
        self.due_at: dict[int, float] = {}
        self.running: set[int] = set()
        self.reads, self.delay, self.last = 0, 0.0, 0.0

    def plan_read(self, i: int, at: float) -> None:
        self.due_at[i] = at
        self.latest[i] = self.latest.get(i, -1) + 1
        heapq.heappush(self.due, (at, self.latest[i], i))

    def start(self, i: int, at: float) -> None:
        estimate = self.estimates.estimate(self.durations[i], self.rng.random())
        plan = ReadPlan(started=at, timing=self.timing, costs=self.costs)
        plan.observe(_Read(TaskStatus.PENDING, 0, estimate), at)  # type: ignore[arg-type]
        self.plans[i] = (plan, estimate)
        self.running.add(i)
        self.plan_read(i, plan.next_read_at(at, TaskStatus.PENDING))

    def news(self, i: int, now: float, *, ended: bool = False) -> None:
        """As the watcher does (`Watcher._heed`): a model seen to show no progress has
        its waiting tasks' part-way first reads skipped, a model that changed has its
        waiting tasks read now (`Watcher._read_now`), one under suspicion has them planned
        again (deep probes), and so has a record grown to 16, 32, 64, ... ends."""
        if self.timing.fell_quiet():
            for j in self.running - {i}:
                plan = self.plans[j][0]
                if plan.looks_part_way():
                    self.plan_read(j, plan.next_read_at(now, TaskStatus.PROCESSING))
        restarted, suspected = self.timing.news()
        if restarted:
            for j in self.running - {i}:
                if self.plans[j][0].follows(restarted):
                    self.plan_read(j, self.plans[j][0].earliest(now))
        elif suspected or (ended and _grown(self.timing.ended)):
            self.replan(now)

    def replan(self, now: float) -> None:
        """As the watcher does (`Watcher._replan`): plan the waiting tasks again, sooner."""
        for j in sorted(self.running, key=lambda j: self.due_at.get(j, 0.0)):
            plan, _ = self.plans[j]
            at = plan.next_read_at(now, TaskStatus.PROCESSING)
            if at < self.due_at[j]:
                self.plan_read(j, at)

    def hurry(self, now: float) -> None:
        """As the batch does (`Batch._hurry`): its last few read at a lower price."""
        for j in self.running:
            plan, _ = self.plans[j]
            plan.costs = HURRY_COSTS
            self.plan_read(j, max(now, plan.next_read_at(now, TaskStatus.PROCESSING)))

    def run(self) -> dict[str, float]:
        tasks, durations = len(self.durations), self.durations
        for i in range(min(self.in_flight, tasks)):
            self.start(i, 0.0)
        following, hurried = min(self.in_flight, tasks), False
        while self.due:
            at, version, i = heapq.heappop(self.due)
            if version != self.latest[i]:
                continue
            plan, estimate = self.plans[i]
            now, age = at + self.latency, at - plan.started
            self.reads += 1
            if age < durations[i]:
                percent = self.progress.percent(age / durations[i])
                plan.observe(_Read(TaskStatus.PROCESSING, percent, estimate), now)  # type: ignore[arg-type]
                self.plan_read(i, plan.next_read_at(now, TaskStatus.PROCESSING))
                self.news(i, now)
                continue
            plan.observe(_Read(TaskStatus.COMPLETED, 100, estimate), now)  # type: ignore[arg-type]
            self.running.discard(i)
            self.news(i, now, ended=True)
            self.delay += now - (plan.started + durations[i])
            self.last = max(self.last, now)
            if following < tasks:
                self.start(following, now)
                following += 1
            elif not hurried and len(self.running) <= max(1, self.in_flight // HURRY_SHARE):
                hurried = True
                self.hurry(now)
        return {
            "ratio": self.last / _oracle(durations, self.in_flight),
            "reads_per_task": self.reads / tasks,
            "mean_delay": self.delay / tasks,
        }


def _oracle(durations: list[float], in_flight: int) -> float:
    """Every task started the instant a slot frees, and seen done the instant it ends."""
    free, oracle = [0.0] * in_flight, 0.0
    for duration in durations:
        end = heapq.heappop(free) + duration
        heapq.heappush(free, end)
        oracle = max(oracle, end)
    return oracle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="run.py plans", description=__doc__)
    parser.add_argument("--reads", choices=("get", "batch"), default="get")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=100)
    args = parser.parse_args(argv)
    costs = GET_COSTS if args.reads == "get" else BATCH_COSTS
    for behaviour in BEHAVIOURS:
        figures = simulate(behaviour, costs, tasks=args.tasks, in_flight=args.in_flight)
        print(
            f"{behaviour:18s} {args.reads:5s} wall / oracle {figures['ratio']:.3f}  "
            f"reads / task {figures['reads_per_task']:.2f}  "
            f"mean delay {figures['mean_delay']:.3f} s"
        )
