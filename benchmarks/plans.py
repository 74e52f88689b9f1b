"""The read plan alone, against the matrix's server behaviours: seconds, not minutes.

    python benchmarks/run.py plans [--reads get|batch] [--tasks N] [--in-flight K]

No HTTP and no event loop: `ReadPlan` (with one shared `ModelTiming`, as the engine's) is
asked when to read each task, and each read is answered from the task's true duration and
the behaviour's progress and estimate models, a fixed latency later. The slots refill as
tasks are seen done, as in `generate_many`. It leaves out request costs, batch-request
spacing and CPU, so it is for trying a schedule; the matrix (benchmarks/matrix.py) is the
measure. On the matrix's GET rows it came within 0.02 of the served runs' wall / oracle
and within 0.25 of their reads per task.
"""

from __future__ import annotations

import argparse
import heapq
import random
from typing import Any

import attrs
from behaviours import BEHAVIOURS, simulator_knobs

from evolink._estimate import BATCH_COSTS, GET_COSTS, ReadCosts, ReadPlan
from evolink._models import TaskStatus
from evolink._timing import ModelTiming
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
    knobs: dict[str, Any] = simulator_knobs(behaviour)
    rng = random.Random(seed)
    estimates = knobs.get("estimates", Estimates())
    progress = knobs.get("progress", LinearProgress())
    durations = [knobs["durations"].sample(rng) for _ in range(tasks)]
    timing = ModelTiming()
    due: list[tuple[float, int, int]] = []
    plans: dict[int, tuple[ReadPlan, float | None]] = {}
    reads, delay, last = 0, 0.0, 0.0

    def start(i: int, at: float) -> None:
        estimate = estimates.estimate(durations[i], rng.random())
        plan = ReadPlan(started=at, timing=timing, costs=costs)
        plan.observe(_Read(TaskStatus.PENDING, 0, estimate), at)  # type: ignore[arg-type]
        plans[i] = (plan, estimate)
        heapq.heappush(due, (plan.next_read_at(at, TaskStatus.PENDING), i, i))

    for i in range(min(in_flight, tasks)):
        start(i, 0.0)
    following = min(in_flight, tasks)
    while due:
        at, _, i = heapq.heappop(due)
        plan, estimate = plans[i]
        now, age = at + latency, at - plan.started
        reads += 1
        if age >= durations[i]:
            plan.observe(_Read(TaskStatus.COMPLETED, 100, estimate), now)  # type: ignore[arg-type]
            delay += now - (plan.started + durations[i])
            last = max(last, now)
            if following < tasks:
                start(following, now)
                following += 1
            continue
        seen = _Read(TaskStatus.PROCESSING, progress.percent(age / durations[i]), estimate)
        plan.observe(seen, now)  # type: ignore[arg-type]
        heapq.heappush(due, (plan.next_read_at(now, TaskStatus.PROCESSING), i, i))
    free, oracle = [0.0] * in_flight, 0.0
    for duration in durations:
        end = heapq.heappop(free) + duration
        heapq.heappush(free, end)
        oracle = max(oracle, end)
    return {"ratio": last / oracle, "reads_per_task": reads / tasks, "mean_delay": delay / tasks}


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
