"""A plan-level simulator of many `tasks.wait` calls on one client (after
benchmarks/plans.py, copied, not imported): no slots, each task arrives at its own time,
every task's `ReadPlan` shares one `ModelTiming`, reads are answered from the task's true
duration a fixed latency later, and the watcher's news (`_grown`, `news`, `fell_quiet`)
replans as `Watcher` does. A 1 s loop is run on the same tasks for comparison.

`Spec` describes each task: arrival time, true duration, progress model, estimate.
The rule under attack can be switched off (`rule=False`: `ReadPlan._outlived` -> False);
`outlived` counts the tasks the rule fired for while the record's own cdf was < TOP.
"""

from __future__ import annotations

import contextlib
import heapq
import random
import statistics
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from evolink import _estimate
from evolink._estimate import BATCH_COSTS, GET_COSTS, ReadPlan
from evolink._models import TaskStatus
from evolink._timing import ModelTiming
from evolink._watcher import _grown
from evolink.testing import NoProgress


@attrs.frozen
class _Read:
    status: TaskStatus
    progress: int
    estimated_time: float | None

    @property
    def is_terminal(self) -> bool:
        return self.status is TaskStatus.COMPLETED


NO_PROGRESS = NoProgress()


@attrs.frozen
class Spec:
    arrive: float
    duration: float
    progress: Any = NO_PROGRESS
    estimate: float | None = None


@contextlib.contextmanager
def rule(on: bool, fired: list[int] | None = None) -> Iterator[None]:
    """The rule on (counting, in `fired`, the plans it fired for) or off."""
    original = ReadPlan._outlived
    if on:
        if fired is None:
            yield
            return

        def counting(self: ReadPlan, hint: Any, spread: Any, seen: float) -> bool:
            out = original(self, hint, spread, seen)
            if out:
                fired.append(id(self))
            return out

        ReadPlan._outlived = counting  # type: ignore[method-assign]
    else:
        ReadPlan._outlived = lambda *a: False  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ReadPlan._outlived = original  # type: ignore[method-assign]


def run(
    specs: list[Spec],
    *,
    engine: str = "rule",  # "rule" | "norule" | "loop"
    batch: bool = False,
    latency: float = 0.005,
    timing: ModelTiming | None = None,
) -> dict[str, Any]:
    fired: list[int] = []
    ctx = rule(engine != "norule", fired) if engine != "loop" else contextlib.nullcontext()
    with ctx:
        return _run(specs, engine, batch, latency, timing, fired)


def _run(  # noqa: PLR0915 - one loop, kept whole
    specs: list[Spec],
    engine: str,
    batch: bool,
    latency: float,
    timing: ModelTiming | None,
    fired: list[int],
) -> dict[str, Any]:
    costs = BATCH_COSTS if batch else GET_COSTS
    timing = timing if timing is not None else ModelTiming()
    due: list[tuple[float, int, int]] = []
    latest: dict[int, int] = {}
    due_at: dict[int, float] = {}
    plans: dict[int, ReadPlan] = {}
    running: set[int] = set()
    reads = [0] * len(specs)
    late = [0.0] * len(specs)
    gaps: list[list[float]] = [[] for _ in specs]
    last_read: dict[int, float] = {}

    def plan_read(i: int, at: float) -> None:
        due_at[i] = at
        latest[i] = latest.get(i, -1) + 1
        heapq.heappush(due, (at, latest[i], i))

    def news(i: int, now: float, ended: bool = False) -> None:
        if engine == "loop":
            return
        if timing.fell_quiet():
            for j in running - {i}:
                if j in plans and plans[j].looks_part_way():
                    plan_read(j, plans[j].next_read_at(now, TaskStatus.PROCESSING))
        restarted, suspected = timing.news()
        if restarted:
            for j in running - {i}:
                if j in plans and plans[j].follows(restarted):
                    plan_read(j, plans[j].earliest(now))
        elif suspected or (ended and _grown(timing.ended)):
            for j in sorted(running, key=lambda j: due_at.get(j, 0.0)):
                if j not in plans:
                    continue
                at = plans[j].next_read_at(now, TaskStatus.PROCESSING)
                if at < due_at[j]:
                    plan_read(j, at)

    # Arrivals are events too (tag -1 version for "start").
    arrivals = sorted(range(len(specs)), key=lambda i: specs[i].arrive)
    ai = 0
    while ai < len(arrivals) or due:
        if ai < len(arrivals) and (not due or specs[arrivals[ai]].arrive <= due[0][0]):
            i = arrivals[ai]
            ai += 1
            s = specs[i]
            running.add(i)
            if engine == "loop":
                plan_read(i, s.arrive + 1.0)
                continue
            plan = ReadPlan(started=s.arrive, timing=timing, costs=costs)
            plan.observe(_Read(TaskStatus.PENDING, 0, s.estimate), s.arrive)  # type: ignore[arg-type]
            plans[i] = plan
            plan_read(i, plan.next_read_at(s.arrive, TaskStatus.PENDING))
            continue
        at, version, i = heapq.heappop(due)
        if version != latest[i]:
            continue
        s = specs[i]
        now, age = at + latency, at - s.arrive
        reads[i] += 1
        if i in last_read:
            gaps[i].append(at - last_read[i])
        last_read[i] = at
        if age < s.duration:
            if engine == "loop":
                plan_read(i, now + 1.0)
                continue
            percent = s.progress.percent(age / s.duration)
            plans[i].observe(_Read(TaskStatus.PROCESSING, percent, s.estimate), now)  # type: ignore[arg-type]
            plan_read(i, plans[i].next_read_at(now, TaskStatus.PROCESSING))
            news(i, now)
            continue
        if engine != "loop":
            plans[i].observe(_Read(TaskStatus.COMPLETED, 100, s.estimate), now)  # type: ignore[arg-type]
        running.discard(i)
        late[i] = now - (s.arrive + s.duration)
        news(i, now, ended=True)
    ids = {id(p): i for i, p in plans.items()}
    fired_tasks = {ids[f] for f in fired if f in ids}
    return {
        "late": late,
        "reads": reads,
        "gaps": gaps,
        "mean_late": statistics.fmean(late),
        "p99_late": sorted(late)[int(0.99 * (len(late) - 1))],
        "max_late": max(late),
        "reads_per_task": sum(reads) / len(specs),
        "max_reads": max(reads),
        "fired": fired_tasks,
    }


def summary(r: dict[str, Any]) -> str:
    return (
        f"mean late {r['mean_late']:.3f}s p99 {r['p99_late']:.2f}s max {r['max_late']:.2f}s "
        f"reads/task {r['reads_per_task']:.2f} max reads {r['max_reads']} "
        f"fired {len(r.get('fired', ()))}"
    )


def specs_of(
    n: int,
    durations: Callable[[random.Random, int], float],
    *,
    arrive: Callable[[random.Random, int], float] = lambda rng, i: rng.uniform(0, 0.7),
    progress: Any = NO_PROGRESS,
    estimate: Callable[[random.Random, float, int], float | None] = lambda rng, d, i: None,
    seed: int = 1,
) -> list[Spec]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a = arrive(rng, i)
        d = durations(rng, i)
        out.append(Spec(a, d, progress, estimate(rng, d, i)))
    return out


__all__ = ["Spec", "_estimate", "run", "specs_of", "summary"]
