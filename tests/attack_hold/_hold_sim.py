"""A plan simulator (after benchmarks/plans.py) that runs the engine of the working tree,
the engine as it was before the change (`before_hold`), or a plain 1 s loop, against
progress / estimate / duration models of our own, per task (to change them mid-life).

No HTTP, no event loop: one `ModelTiming`, each task asked when to read next, each read
answered from its true duration a fixed latency later, slots refilled as tasks are seen
done, the last few hurried (as `benchmarks/plans.py`).
"""

from __future__ import annotations

import contextlib
import heapq
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from evolink import _estimate as new_estimate
from evolink import _timing as new_timing
from evolink._batch import HURRY_SHARE
from evolink._models import TaskStatus
from evolink._watcher import _grown
from evolink.testing import Estimates, LinearProgress, Uniform

ENGINES = {
    "new": (new_estimate, new_timing),
    "base": (new_estimate, new_timing),  # run within `before_hold`
}


@contextlib.contextmanager
def before_hold() -> Iterator[None]:
    """The engine before the change: the narrowest record for every decision, and the
    estimates' records fitted only where the model shows no progress."""
    model = new_timing.ModelTiming
    best, ends = model.best, model.ends_on_estimates
    model.best = lambda self, hints, following=None: best(self, hints)  # type: ignore[method-assign]
    model.ends_on_estimates = lambda self: False  # type: ignore[method-assign]
    try:
        yield
    finally:
        model.best, model.ends_on_estimates = best, ends  # type: ignore[method-assign]


@attrs.frozen
class _Read:
    status: TaskStatus
    progress: int
    estimated_time: float | None

    @property
    def is_terminal(self) -> bool:
        return self.status is TaskStatus.COMPLETED


@attrs.frozen
class Bimodal:
    """Durations from two uniform ranges, `share` of them from the first."""

    first: tuple[float, float]
    second: tuple[float, float]
    share: float = 0.5

    def sample(self, rng: random.Random) -> float:
        low, high = self.first if rng.random() < self.share else self.second
        return rng.uniform(low, high)


@attrs.frozen
class SharpAndWide:
    """Progress whose 0->50 step is exact but whose later readings are loose: linear
    progress until 50 %, then a reading stuck at 50 until a random point near the end
    (one band sharp, the others wide)."""

    def percent(self, fraction: float) -> int:
        if fraction < 0.5:
            return math.floor(100 * fraction) // 25 * 25
        return 50 if fraction < 0.97 else 75


def oracle(durations: list[float], in_flight: int) -> float:
    free, last = [0.0] * in_flight, 0.0
    for duration in durations:
        end = heapq.heappop(free) + duration
        heapq.heappush(free, end)
        last = max(last, end)
    return last


class Run:
    def __init__(
        self,
        engine: str,
        *,
        progress: Any = None,
        progress_of: Callable[[int], Any] | None = None,
        estimates: Any = None,
        durations: Any = None,
        tasks: int = 1000,
        in_flight: int = 100,
        seed: int = 7,
        latency: float = 0.005,
        timing: Any = None,
    ) -> None:
        self.engine = engine
        self.rng = random.Random(seed)
        self.estimates = estimates if estimates is not None else Estimates()
        default = progress if progress is not None else LinearProgress()
        self.progress_of = progress_of or (lambda i: default)
        durations = durations if durations is not None else Uniform(2, 6)
        self.durations = [durations.sample(self.rng) for _ in range(tasks)]
        self.in_flight, self.latency = in_flight, latency
        if engine != "loop":
            self.est_mod, self.tim_mod = ENGINES[engine]
            self.costs = self.est_mod.GET_COSTS
            self.timing = timing if timing is not None else self.tim_mod.ModelTiming()
        self.due: list[tuple[float, int, int]] = []
        self.plans: dict[int, tuple[Any, float | None]] = {}
        self.started: dict[int, float] = {}
        self.latest: dict[int, int] = {}
        self.due_at: dict[int, float] = {}
        self.running: set[int] = set()
        self.reads, self.last = 0, 0.0
        self.delays = [0.0] * tasks
        self.reads_of = [0] * tasks

    def plan_read(self, i: int, at: float) -> None:
        self.due_at[i] = at
        self.latest[i] = self.latest.get(i, -1) + 1
        heapq.heappush(self.due, (at, self.latest[i], i))

    def start(self, i: int, at: float) -> None:
        estimate = self.estimates.estimate(self.durations[i], self.rng.random())
        self.started[i] = at
        self.running.add(i)
        if self.engine == "loop":
            self.plans[i] = (None, estimate)
            self.plan_read(i, at + 1.0)
            return
        plan = self.est_mod.ReadPlan(started=at, timing=self.timing, costs=self.costs)
        plan.observe(_Read(TaskStatus.PENDING, 0, estimate), at)
        self.plans[i] = (plan, estimate)
        self.plan_read(i, plan.next_read_at(at, TaskStatus.PENDING))

    def news(self, i: int, now: float, *, ended: bool = False) -> None:
        if self.engine == "loop":
            return
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
            for j in sorted(self.running, key=lambda j: self.due_at.get(j, 0.0)):
                at = self.plans[j][0].next_read_at(now, TaskStatus.PROCESSING)
                if at < self.due_at[j]:
                    self.plan_read(j, at)

    def hurry(self, now: float) -> None:
        if self.engine == "loop":
            return
        for j in self.running:
            plan, _ = self.plans[j]
            plan.costs = self.est_mod.HURRY_COSTS
            self.plan_read(j, max(now, plan.next_read_at(now, TaskStatus.PROCESSING)))

    def run(self) -> dict[str, Any]:
        tasks, durations = len(self.durations), self.durations
        for i in range(min(self.in_flight, tasks)):
            self.start(i, 0.0)
        following, hurried = min(self.in_flight, tasks), False
        while self.due:
            at, version, i = heapq.heappop(self.due)
            if version != self.latest[i]:
                continue
            plan, estimate = self.plans[i]
            now, age = at + self.latency, at - self.started[i]
            self.reads += 1
            self.reads_of[i] += 1
            if age < durations[i]:
                if self.engine == "loop":
                    self.plan_read(i, now + 1.0)
                    continue
                percent = self.progress_of(i).percent(age / durations[i])
                plan.observe(_Read(TaskStatus.PROCESSING, percent, estimate), now)
                self.plan_read(i, plan.next_read_at(now, TaskStatus.PROCESSING))
                self.news(i, now)
                continue
            if plan is not None:
                plan.observe(_Read(TaskStatus.COMPLETED, 100, estimate), now)
            self.running.discard(i)
            self.news(i, now, ended=True)
            self.delays[i] = now - (self.started[i] + durations[i])
            self.last = max(self.last, now)
            if following < tasks:
                self.start(following, now)
                following += 1
            elif not hurried and len(self.running) <= max(1, self.in_flight // HURRY_SHARE):
                hurried = True
                self.hurry(now)
        return {
            "ratio": self.last / oracle(durations, self.in_flight),
            "reads_per_task": self.reads / tasks,
            "mean_delay": sum(self.delays) / tasks,
        }


def figures(engine: str, seeds: range | list[int] = range(4), **kwargs: Any) -> dict[str, float]:
    """Means over `seeds` of ratio, reads per task and mean delay."""
    out = {"ratio": 0.0, "reads_per_task": 0.0, "mean_delay": 0.0}
    for seed in seeds:
        with before_hold() if engine == "base" else contextlib.nullcontext():
            result = Run(engine, seed=seed, **kwargs).run()
        for key in out:
            out[key] += result[key] / len(seeds)
    return out


def tail(
    engine: str, last: int, seeds: range | list[int] = range(3), **kwargs: Any
) -> dict[str, float]:
    """Mean delay and reads per task of the last `last` tasks started (means over seeds)."""
    delay = reads = 0.0
    for seed in seeds:
        run = Run(engine, seed=seed, **kwargs)
        with before_hold() if engine == "base" else contextlib.nullcontext():
            run.run()
        n = len(run.durations)
        # leave out the final hurried wave: the tasks from -last-in_flight to -in_flight
        window = range(n - last - run.in_flight, n - run.in_flight)
        delay += sum(run.delays[k] for k in window) / len(window) / len(seeds)
        reads += sum(run.reads_of[k] for k in window) / len(window) / len(seeds)
    return {"mean_delay": delay, "reads_per_task": reads}
