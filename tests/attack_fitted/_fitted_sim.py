"""A plan harness of our own: `ReadPlan` + one shared `ModelTiming`, answered from true
durations, as the engine's watcher would (replan on a grown record, read at once after a
restart, a batch's last few hurried). No HTTP, no event loop: seconds, not minutes.

Unlike `benchmarks/plans.py` it takes any per-task durations, estimates, progress curves
and queue (pending) times, either as a batch on `in_flight` slots or as waits arriving at
given times, and it keeps every read of every task (to check the storm floor), and the
figures of a hand-written 1 s loop on the same tasks.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
from collections.abc import Callable, Iterator, Sequence

import attrs

from evolink import _timing
from evolink._batch import HURRY_SHARE
from evolink._estimate import GET_COSTS, HURRY_COSTS, ReadCosts, ReadPlan
from evolink._models import TaskStatus
from evolink._timing import ModelTiming
from evolink._watcher import _grown

#: progress(task index, fraction of its working time done, age) -> whole percent.
Progress = Callable[[int, float, float], int]


def no_progress(_i: int, _f: float, _age: float) -> int:
    return 0


def linear(_i: int, f: float, _age: float) -> int:
    return math.floor(100 * f)


@attrs.frozen
class _Read:
    status: TaskStatus
    progress: int
    estimated_time: float | None

    @property
    def is_terminal(self) -> bool:
        return self.status is TaskStatus.COMPLETED


@attrs.define
class Result:
    durations: list[float]
    starts: list[float]
    seen: list[float]
    reads: list[list[tuple[float, float]]]  # each task's reads: (read time, observe time)
    wall: float
    oracle: float
    loop_wall: float
    timing: ModelTiming

    def delay(self, i: int) -> float:
        return self.seen[i] - (self.starts[i] + self.durations[i])

    def mean_delay(self, idx: Sequence[int] | None = None) -> float:
        idx = range(len(self.durations)) if idx is None else idx
        return sum(self.delay(i) for i in idx) / len(idx)

    def reads_per_task(self, idx: Sequence[int] | None = None) -> float:
        idx = range(len(self.durations)) if idx is None else idx
        return sum(len(self.reads[i]) for i in idx) / len(idx)

    def loop_delay(self, idx: Sequence[int] | None = None, latency: float = 0.005) -> float:
        """A 1 s loop's mean delay on the same tasks (reads at 1, 2, 3 s of age...)."""
        idx = range(len(self.durations)) if idx is None else idx
        return sum(math.ceil(self.durations[i]) - self.durations[i] + latency for i in idx) / len(
            idx
        )

    @property
    def ratio(self) -> float:
        return self.wall / self.oracle

    @property
    def loop_ratio(self) -> float:
        return self.loop_wall / self.oracle

    def storms(self) -> list[tuple[int, float, float, float]]:
        """Reads after a task's first that came sooner than the storm floor after the
        one before: max(20 ms, min(2 % of the age, 0.5 s)) (waiting.md, "never a storm",
        with its near-end exemption). (task, age at the read before, gap, floor)."""
        bad = []
        for i, reads in enumerate(self.reads):
            for (_, seen_prev), (at, _) in itertools.pairwise(reads):
                age = seen_prev - self.starts[i]
                floor = max(0.02, min(0.02 * age, 0.5))
                gap = at - seen_prev
                if gap < floor - 1e-9:
                    bad.append((i, age, gap, floor))
        return bad


def run(  # noqa: PLR0915
    durations: Sequence[float],
    estimates: Sequence[float | None],
    *,
    progress: Progress = no_progress,
    pending: Sequence[float] | None = None,
    in_flight: int | None = 100,
    arrivals: Sequence[float] | None = None,
    costs: ReadCosts = GET_COSTS,
    latency: float = 0.005,
    timing: ModelTiming | None = None,
    hurry: bool = True,
) -> Result:
    """Run the tasks: a batch on `in_flight` slots (refilled as tasks are seen done, its
    last tenth hurried), or, with `arrivals`, one wait per task begun at its time."""
    n = len(durations)
    pending = [0.0] * n if pending is None else list(pending)
    timing = ModelTiming() if timing is None else timing
    due: list[tuple[float, int, int]] = []
    latest = [-1] * n
    due_at = [0.0] * n
    plans: list[ReadPlan | None] = [None] * n
    starts = [0.0] * n
    seen = [math.nan] * n
    reads: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    running: set[int] = set()
    horizon = 1e7

    def plan_read(i: int, at: float) -> None:
        assert math.isfinite(at), (i, at)
        due_at[i] = at
        latest[i] += 1
        heapq.heappush(due, (at, latest[i], i))

    def answer(i: int, at: float) -> _Read:
        age = at - starts[i]
        if age >= durations[i]:
            return _Read(TaskStatus.COMPLETED, 100, estimates[i])
        if age < pending[i]:
            return _Read(TaskStatus.PENDING, 0, estimates[i])
        work = durations[i] - pending[i]
        frac = (age - pending[i]) / work if work > 0 else 0.0
        return _Read(TaskStatus.PROCESSING, progress(i, frac, age), estimates[i])

    def start(i: int, at: float) -> None:
        starts[i] = at
        plan = ReadPlan(started=at, timing=timing, costs=costs)
        plan.observe(_Read(TaskStatus.PENDING, 0, estimates[i]), at)  # type: ignore[arg-type]
        plans[i] = plan
        running.add(i)
        plan_read(i, plan.next_read_at(at, TaskStatus.PENDING))

    def news(i: int, now: float, *, ended: bool = False) -> None:
        restarted, suspected = timing.news()
        if restarted:
            for j in running - {i}:
                plan = plans[j]
                assert plan is not None
                if plan.follows(restarted):
                    plan_read(j, plan.earliest(now))
        elif suspected or (ended and _grown(timing.ended)):
            for j in sorted(running, key=lambda j: due_at[j]):
                plan = plans[j]
                assert plan is not None
                at = plan.next_read_at(now, TaskStatus.PROCESSING)
                if at < due_at[j]:
                    plan_read(j, at)

    if arrivals is not None:
        order = sorted(range(n), key=lambda i: arrivals[i])
        arrive = [(arrivals[i], i) for i in order]
        heapq.heapify(arrive)
        following = n
    else:
        assert in_flight is not None
        arrive = []
        for i in range(min(in_flight, n)):
            start(i, 0.0)
        following = min(in_flight, n)
    hurried = False
    while due or arrive:
        if arrive and (not due or arrive[0][0] <= due[0][0]):
            at, i = heapq.heappop(arrive)
            start(i, at)
            continue
        at, version, i = heapq.heappop(due)
        if version != latest[i]:
            continue
        assert at < horizon, "a read planned absurdly far ahead"
        plan = plans[i]
        assert plan is not None
        now = at + latency
        read = answer(i, at)
        reads[i].append((at, now))
        assert len(reads[i]) < 10_000, "a storm"
        plan.observe(read, now)  # type: ignore[arg-type]
        if not read.is_terminal:
            plan_read(i, plan.next_read_at(now, read.status))
            news(i, now)
            continue
        seen[i] = now
        running.discard(i)
        news(i, now, ended=True)
        if arrivals is None:
            assert in_flight is not None
            if following < n:
                start(following, now)
                following += 1
            elif hurry and not hurried and len(running) <= max(1, in_flight // HURRY_SHARE):
                hurried = True
                for j in running:
                    pj = plans[j]
                    assert pj is not None
                    pj.costs = HURRY_COSTS
                    plan_read(j, max(now, pj.next_read_at(now, TaskStatus.PROCESSING)))
    wall = max(seen)
    return Result(
        durations=list(durations),
        starts=starts,
        seen=seen,
        reads=reads,
        wall=wall,
        oracle=_slots_wall(durations, in_flight, arrivals, lambda d: d),
        loop_wall=_slots_wall(durations, in_flight, arrivals, lambda d: math.ceil(d) + latency),
        timing=timing,
    )


def _slots_wall(
    durations: Sequence[float],
    in_flight: int | None,
    arrivals: Sequence[float] | None,
    seen_after: Callable[[float], float],
) -> float:
    if arrivals is not None:
        return max(a + seen_after(d) for a, d in zip(arrivals, durations, strict=True))
    assert in_flight is not None
    free, wall = [0.0] * in_flight, 0.0
    for d in durations:
        end = heapq.heappop(free) + seen_after(d)
        heapq.heappush(free, end)
        wall = max(wall, end)
    return wall


@contextlib.contextmanager
def before_fit() -> Iterator[None]:
    """The engine as it was before the fitted record: no fitted normal, no first read at
    the estimate's end (probes everywhere, as `spread.fitted()` is then False)."""
    allow, shows = _timing.Spread.allow_fit, _timing.ModelTiming.shows_none
    _timing.Spread.allow_fit = lambda self, smooth: None  # type: ignore[method-assign]
    _timing.ModelTiming.shows_none = lambda self: False  # type: ignore[method-assign]
    try:
        yield
    finally:
        _timing.Spread.allow_fit = allow  # type: ignore[method-assign]
        _timing.ModelTiming.shows_none = shows  # type: ignore[method-assign]


def honest(
    durations: Sequence[float], draws: Sequence[float], factor: float = 1.0, error: float = 0.15
) -> list[float]:
    """Estimates as the simulator's default: duration x factor x (1 +- error), whole s."""
    return [
        max(1, round(d * factor * (1 - error + 2 * error * u)))
        for d, u in zip(durations, draws, strict=True)
    ]
