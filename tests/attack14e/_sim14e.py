"""A plan-only simulator of our own: `ReadPlan` + one shared `ModelTiming`, no HTTP.

Each task has a true duration, an estimate (or none) and its own progress function of
(task index, fraction done, age) -> percent. Every planned read is checked against the
documented bounds as it is made.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence

import attrs

from evolink._estimate import GET_COSTS, HURRY_COSTS, ReadCosts, ReadPlan
from evolink._models import TaskStatus
from evolink._timing import ModelTiming

#: (task index, fraction of its duration elapsed in [0, 1), age in seconds) -> percent.
ProgressFn = Callable[[int, float, float], int]

FIRST_BOUND = 30.0
MAX_WAIT = 300.0
MIN_DELAY = 0.02
MIN_AGE_SHARE = 0.02
#: ...or half a second, near an end a hint predicts (waiting.md, "never a storm").
NEAR_FLOOR = 0.5
AGE_SHARE = 1.0
EPS = 1e-6


@attrs.frozen
class Read:
    """As much of a `Task` as `ReadPlan.observe` looks at."""

    status: TaskStatus
    progress: int
    estimated_time: float | None

    @property
    def is_terminal(self) -> bool:
        return self.status is TaskStatus.COMPLETED


@attrs.define
class Violation:
    task: int
    kind: str
    now: float
    gap: float
    age: float


def check_gap(plan: ReadPlan, now: float, at: float, *, first: bool, agreed: bool) -> str | None:
    """The bound `at` breaks, if any (read planned at `now` for `plan`)."""
    gap = at - now
    age = max(0.0, now - plan.started)
    if first:
        if gap > FIRST_BOUND + EPS:
            return "first read later than 30 s"
        return None
    if gap > MAX_WAIT + EPS:
        return "later than 300 s"
    if not agreed and gap > max(AGE_SHARE * age, MIN_DELAY) + EPS:
        return "later than the age"
    if gap < max(MIN_DELAY, min(MIN_AGE_SHARE * age, NEAR_FLOOR)) - EPS:
        return "storm: sooner than 2% of the age (or 0.5 s) / 20 ms"
    return None


def ceil_loop_wall(durations: Sequence[float], in_flight: int, step: float = 1.0) -> float:
    """A plain loop reading every task each `step` s: a task is seen at ceil(D / step)."""
    return slots_wall([math.ceil(d / step - 1e-9) * step for d in durations], in_flight)


def slots_wall(durations: Sequence[float], in_flight: int) -> float:
    free, wall = [0.0] * in_flight, 0.0
    for duration in durations:
        end = heapq.heappop(free) + duration
        heapq.heappush(free, end)
        wall = max(wall, end)
    return wall


@attrs.define
class Result:
    wall: float
    loop_wall: float
    oracle: float
    reads_per_task: float
    mean_delay: float
    violations: list[Violation]
    max_reads: int
    seen_late: list[float]  # per task: seen / duration

    @property
    def ratio_to_loop(self) -> float:
        return self.wall / self.loop_wall

    @property
    def ratio(self) -> float:
        return self.wall / self.oracle


def simulate(  # noqa: PLR0915 - one loop, kept whole
    durations: Sequence[float],
    progress: ProgressFn,
    *,
    estimates: Sequence[float | None] | None = None,
    costs: ReadCosts = GET_COSTS,
    in_flight: int = 50,
    latency: float = 0.0,
    timing: ModelTiming | None = None,
    hurry: bool = True,
) -> Result:
    """Run the tasks through `in_flight` slots, reading each when its plan says."""
    timing = ModelTiming() if timing is None else timing
    tasks = len(durations)
    due: list[tuple[float, int, int]] = []
    plans: dict[int, ReadPlan] = {}
    latest: dict[int, int] = {}
    reads_of: dict[int, int] = {}
    running: set[int] = set()
    violations: list[Violation] = []
    seen_late = [0.0] * tasks
    state = {"reads": 0, "delay": 0.0, "last": 0.0}

    def plan_read(i: int, now: float, status: TaskStatus, *, first: bool) -> None:
        plan = plans[i]
        agreed = bool(plan._agreed) and plan._stalled_reads == 0
        at = plan.next_read_at(now, status)
        problem = check_gap(plan, now, at, first=first, agreed=agreed)
        if problem is not None:
            violations.append(Violation(i, problem, now, at - now, now - plan.started))
        latest[i] = latest.get(i, -1) + 1
        heapq.heappush(due, (max(at, now), latest[i], i))

    def estimate_of(i: int) -> float | None:
        return None if estimates is None else estimates[i]

    def start(i: int, at: float) -> None:
        plan = ReadPlan(started=at, timing=timing, costs=costs)
        plan.observe(Read(TaskStatus.PENDING, 0, estimate_of(i)), at)  # type: ignore[arg-type]
        plans[i] = plan
        reads_of[i] = 0
        running.add(i)
        plan_read(i, at, TaskStatus.PENDING, first=True)

    for i in range(min(in_flight, tasks)):
        start(i, 0.0)
    following, hurried = min(in_flight, tasks), False
    while due:
        at, version, i = heapq.heappop(due)
        if version != latest[i]:
            continue
        plan = plans[i]
        now, age = at + latency, at - plan.started
        state["reads"] += 1
        reads_of[i] += 1
        if age < durations[i]:
            percent = progress(i, age / durations[i], age)
            plan.observe(Read(TaskStatus.PROCESSING, percent, estimate_of(i)), now)  # type: ignore[arg-type]
            plan_read(i, now, TaskStatus.PROCESSING, first=False)
            continue
        plan.observe(Read(TaskStatus.COMPLETED, 100, estimate_of(i)), now)  # type: ignore[arg-type]
        state["delay"] += now - (plan.started + durations[i])
        seen_late[i] = (now - plan.started) / durations[i]
        state["last"] = max(state["last"], now)
        running.discard(i)
        if following < tasks:
            start(following, now)
            following += 1
        elif hurry and not hurried and len(running) <= max(1, in_flight // 10):
            hurried = True
            for j in running:
                plans[j].costs = HURRY_COSTS
                plan_read(j, now, TaskStatus.PROCESSING, first=reads_of[j] == 0)
    return Result(
        wall=state["last"],
        loop_wall=ceil_loop_wall(durations, in_flight),
        oracle=slots_wall(durations, in_flight),
        reads_per_task=state["reads"] / tasks,
        mean_delay=state["delay"] / tasks,
        violations=violations,
        max_reads=max(reads_of.values()),
        seen_late=seen_late,
    )


def power(exponent: float) -> ProgressFn:
    """`floor(100 f^exponent)`."""
    return lambda _i, f, _age: min(99, math.floor(100 * f**exponent))


def linear() -> ProgressFn:
    return power(1.0)


def s_curve(steepness: float = 10.0) -> ProgressFn:
    """A logistic S, rescaled to run 0 -> 100 over the task."""
    lo = 1 / (1 + math.exp(steepness / 2))
    hi = 1 / (1 + math.exp(-steepness / 2))

    def fn(_i: int, f: float, _age: float) -> int:
        s = 1 / (1 + math.exp(-steepness * (f - 0.5)))
        return min(99, math.floor(100 * (s - lo) / (hi - lo)))

    return fn
