"""A discrete-event simulator of the watcher's reads, on simulated time.

Each policy runs the same tasks (true durations, progress and estimate models) through
slots refilled as tasks are seen done: `new` is the working tree's `ReadPlan`, `old` the
same with `_corroborated` always true (the rule before it). The 1 s loop and the oracle
run the same tasks.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence

import attrs

from evolink import _estimate as estimate_mod
from evolink import _timing as timing_mod
from evolink._models import TaskStatus


@attrs.frozen
class FakeTask:
    """What `ReadPlan.observe` reads of a task."""

    status: TaskStatus
    progress: int = 0
    estimated_time: float | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status is TaskStatus.COMPLETED


Progress = Callable[[float], int]


def linear(fraction: float) -> int:
    return math.floor(100 * fraction)


def share(factor: float) -> Progress:
    """Progress reporting a steady share of the truth (1/factor), then done."""

    def percent(fraction: float) -> int:
        return math.floor(100 * fraction / factor)

    return percent


@attrs.frozen
class Job:
    """One task's truth: duration, progress model, estimate (None: none sent)."""

    duration: float
    progress: Progress = linear
    estimate: float | None = None

    def answer(self, age: float) -> FakeTask:
        if age >= self.duration:
            return FakeTask(TaskStatus.COMPLETED, 100, self.estimate)
        percent = min(max(self.progress(age / self.duration), 0), 99)
        return FakeTask(TaskStatus.PROCESSING, percent, self.estimate)


@attrs.frozen
class Result:
    wall: float
    reads: int
    tasks: int
    delays: tuple[float, ...]  # seen done - true end, per task
    durations: tuple[float, ...]

    @property
    def reads_per_task(self) -> float:
        return self.reads / self.tasks

    @property
    def mean_delay(self) -> float:
        return sum(self.delays) / len(self.delays)

    @property
    def worst_delay(self) -> float:
        return max(self.delays)

    @property
    def worst_delay_share(self) -> float:
        """The worst delay as a share of its task's duration."""
        return max(d / t for d, t in zip(self.delays, self.durations, strict=True))

    def describe(self) -> str:
        return (
            f"wall={self.wall:.1f} reads/task={self.reads_per_task:.2f} "
            f"mean_delay={self.mean_delay:.2f} worst_delay={self.worst_delay:.1f} "
            f"(x{self.worst_delay_share:.2f} of its duration)"
        )


def plan_class(policy: str) -> type:
    if policy == "new":
        return estimate_mod.ReadPlan
    if policy == "old":

        class OldPlan(estimate_mod.ReadPlan):
            def _corroborated(self) -> bool:
                return True

        return OldPlan
    raise ValueError(policy)


def costs_of(policy: str, mode: str) -> tuple[object, object]:
    del policy  # (both policies price reads alike)
    base = estimate_mod.BATCH_COSTS if mode == "batch" else estimate_mod.GET_COSTS
    return base, estimate_mod.HURRY_COSTS


@attrs.define
class _Live:
    job: Job
    plan: object
    started: float
    due: float
    seq: int


def run(  # noqa: PLR0912, PLR0915 (one event loop, read as a whole)
    jobs: Sequence[Job],
    *,
    policy: str = "new",
    slots: int = 50,
    timing: timing_mod.ModelTiming | None = None,
    mode: str = "get",
    hurry: bool = True,
    replans: bool = True,
) -> Result:
    """Run `jobs` in order through `slots`, reading as the watcher does; the wall is when
    the last is seen done. `timing`: the model's record, shared (a mature client's)."""
    plan_cls = plan_class(policy)
    base_costs, hurry_costs = costs_of(policy, mode)
    timing = timing_mod.ModelTiming() if timing is None else timing
    heap: list[tuple[float, int, int]] = []
    live: dict[int, _Live] = {}
    seq = 0
    next_job = 0
    reads = 0
    delays = [0.0] * len(jobs)
    hurried = False
    now = 0.0

    def costs() -> object:
        return hurry_costs if hurried else base_costs

    def push(index: int, item: _Live) -> None:
        nonlocal seq
        seq += 1
        item.seq = seq
        heapq.heappush(heap, (item.due, seq, index))

    def start(index: int, at: float) -> None:
        job = jobs[index]
        plan = plan_cls(started=at, timing=timing, costs=costs())
        first = job.answer(0.0)
        plan.observe(first, at)
        item = _Live(job, plan, at, plan.next_read_at(at, first.status), 0)
        live[index] = item
        push(index, item)

    def plan_sooner(at: float) -> None:
        for index, item in live.items():
            planned = item.plan.next_read_at(at, TaskStatus.PROCESSING)
            if planned < item.due:
                item.due = planned
                push(index, item)

    def maybe_hurry(at: float) -> None:
        nonlocal hurried
        if not hurry or hurried or next_job < len(jobs):
            return
        if len(live) <= max(1, slots // 10):
            hurried = True
            for item in live.values():
                item.plan.costs = hurry_costs
            plan_sooner(at)

    while next_job < min(slots, len(jobs)):
        start(next_job, 0.0)
        next_job += 1
    maybe_hurry(0.0)
    while heap:
        due, item_seq, index = heapq.heappop(heap)
        item = live.get(index)
        if item is None or item.seq != item_seq:
            continue
        now = due
        reads += 1
        answer = item.job.answer(now - item.started)
        item.plan.observe(answer, now)
        if replans:
            restarted, suspected = timing.news()
        else:
            restarted, suspected = frozenset(), False
        if answer.is_terminal:
            del live[index]
            delays[index] = now - (item.started + item.job.duration)
        else:
            item.plan.costs = costs()
            item.due = item.plan.next_read_at(now, answer.status)
            push(index, item)
        if replans:
            if restarted:
                for other_index, other in live.items():
                    soonest = other.plan.earliest(now)
                    if other.plan.follows(restarted) and soonest < other.due:
                        other.due = soonest
                        push(other_index, other)
            elif suspected or (answer.is_terminal and _grown(timing.ended)):
                plan_sooner(now)
        if answer.is_terminal:
            if next_job < len(jobs):
                start(next_job, now)
                next_job += 1
            maybe_hurry(now)
    return Result(now, reads, len(jobs), tuple(delays), tuple(job.duration for job in jobs))


def _grown(ended: int) -> bool:
    return ended >= timing_mod.MIN_SAMPLES and ended & (ended - 1) == 0


def loop(jobs: Sequence[Job], *, slots: int = 50, step: float = 1.0) -> Result:
    """The hand-written loop: every task read every `step` s from its create."""
    return _fixed(jobs, slots, lambda d: step * math.ceil(d / step), lambda d: math.ceil(d / step))


def oracle(jobs: Sequence[Job], *, slots: int = 50) -> Result:
    """Each task seen done the instant it ends, with one read."""
    return _fixed(jobs, slots, lambda d: d, lambda d: 1)


def _fixed(
    jobs: Sequence[Job],
    slots: int,
    seen: Callable[[float], float],
    count: Callable[[float], int],
) -> Result:
    free = [0.0] * min(slots, len(jobs))
    heapq.heapify(free)
    wall = 0.0
    reads = 0
    delays = []
    for job in jobs:
        at = heapq.heappop(free)
        end = at + seen(job.duration)
        delays.append(seen(job.duration) - job.duration)
        reads += count(job.duration)
        wall = max(wall, end)
        heapq.heappush(free, end)
    return Result(wall, reads, len(jobs), tuple(delays), tuple(job.duration for job in jobs))


def jobs_of(
    n: int,
    seed: int,
    low: float,
    high: float,
    *,
    progress: Progress = linear,
    estimate: Callable[[float, random.Random], float | None] | None = None,
) -> list[Job]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        duration = rng.uniform(low, high)
        est = None if estimate is None else estimate(duration, rng)
        out.append(Job(duration, progress, est))
    return out


def factor_estimate(factor: float, error: float = 0.15) -> Callable[[float, random.Random], float]:
    def make(duration: float, rng: random.Random) -> float:
        return max(1.0, round(duration * factor * (1 + rng.uniform(-error, error))))

    return make


def noisy_estimate(sigma: float) -> Callable[[float, random.Random], float]:
    def make(duration: float, rng: random.Random) -> float:
        return max(1.0, round(duration * math.exp(rng.gauss(0.0, sigma))))

    return make


def mature(jobs: Sequence[Job], policy: str, *, slots: int = 50, mode: str = "get") -> object:
    """A model's record after `jobs` ran through it (a client that has seen them)."""
    timing = timing_mod.ModelTiming()
    run(jobs, policy=policy, slots=slots, timing=timing, mode=mode)
    return timing


def mixed_jobs(
    n: int,
    seed: int,
    low: float,
    high: float,
    *,
    liar_share: float,
    factor: float = 2.5,
    honest_estimate: Callable[[float, random.Random], float | None] | None = None,
    liar_estimate: Callable[[float, random.Random], float | None] | None = None,
) -> list[Job]:
    """Honest linear tasks, and a share of liars whose progress reports 1/factor."""
    rng = random.Random(seed)
    out = []
    liar = share(factor)
    for _ in range(n):
        duration = rng.uniform(low, high)
        lies = rng.random() < liar_share
        make = liar_estimate if lies else honest_estimate
        est = None if make is None else make(duration, rng)
        out.append(Job(duration, liar if lies else linear, est))
    return out


def warmed(policy: str, warm: Sequence[Job], jobs: Sequence[Job], **kwargs: object) -> Result:
    """`jobs` run on a client whose record has seen `warm` first (same policy)."""
    slots = kwargs.get("slots", 50)
    timing = mature(warm, policy, slots=slots, mode=kwargs.get("mode", "get"))  # type: ignore[arg-type]
    return run(jobs, policy=policy, timing=timing, **kwargs)  # type: ignore[arg-type]
