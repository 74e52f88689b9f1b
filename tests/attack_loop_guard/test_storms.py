"""Storms: tasks that never end, or sit at 99 % for an hour, or whose estimate always says
"one more second". Promises attacked (docs/explanation/waiting.md, "Why it is bounded"):

- never a storm: every read after the first at least 2 % of the task's age and 20 ms after
  the one before (near a hinted end, within a record, half a second where 2 % is more), so
  a task that never ends costs O(log(age)) reads;
- never later than the bound: each later read within the task's age (or 20 ms), always
  within 300 s;
- hurried last tasks: "the hostile suite's stuck tasks stay under 60 reads in 120 s and under
  100 in 300 s".
"""

from __future__ import annotations

import itertools
import math

import pytest
from _harness import make, run_batch, task_views
from _hostile import HostileServer, ends_at
from _servers import StuckAt, Switch, SwitchDurations

from evolink import AsyncEvolink, WaitTimeoutError
from evolink.testing import (
    TEST_API_KEY,
    Estimates,
    Fixed,
    NoProgress,
    Simulator,
    Uniform,
    VirtualClock,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


HOUR = 3600.0
NEAR_FLOOR_POINTS = 57  # "a record has at most 57 points"


def floor_violations(
    ages: list[float], near: float = 0.5, deadline: float | None = None
) -> list[str]:
    """`deadline`: the task's deadline (age); its one last read there is exempt
    (waiting.md, "deadlines")."""
    out = []
    for a, b in itertools.pairwise(ages):
        if deadline is not None and abs(b - deadline) < 1e-6:
            continue
        floor = max(0.02, min(0.02 * a, near))
        if b - a < floor - 1e-6:
            out.append(f"read at {b:.3f}s only {b - a:.4f}s after {a:.3f}s (floor {floor:.3f}s)")
    return out


def bound_violations(ages: list[float], slack: float = 0.0, trusted: bool = False) -> list[str]:
    """`trusted`: the task shows steady progress, and "two successive progress readings that
    predict the same end within 10 % are trusted to that end (still within 300 s)"."""
    out = []
    if ages and ages[0] > 30 + slack:
        out.append(f"first read at {ages[0]:.2f}s (> 30 s)")
    for a, b in itertools.pairwise(ages):
        limit = 300.0 if trusted else min(max(a, 0.02), 300.0)
        if b - a > limit + slack + 1e-6:
            out.append(f"read at {b:.2f}s, {b - a:.2f}s after {a:.2f}s")
    return out


def max_reads_allowed(first: float, until: float) -> int:
    """Reads a reader obeying exactly the storm floor (2 % of age, 20 ms) could make from
    `first` to `until`, plus one record's worth of half-second reads near an end."""
    t, n = first, 1
    while True:
        t += max(0.02, 0.02 * t)
        if t > until:
            return n + NEAR_FLOOR_POINTS
        n += 1


def per_doubling(ages: list[float], start: float = 50.0) -> list[tuple[float, int]]:
    out, t = [], start
    while t < (ages[-1] if ages else 0):
        out.append((t, sum(1 for a in ages if t <= a < 2 * t)))
        t *= 2
    return out


def check_storm(name: str, ages: list[float]) -> None:
    problems = floor_violations(ages) + bound_violations(ages)
    allowed = max_reads_allowed(ages[0], ages[-1])
    if len(ages) > allowed:
        problems.append(
            f"{len(ages)} reads by {ages[-1]:.0f}s, more than the floor allows ({allowed})"
        )
    # O(log(age)): a doubling of the age holds at most ln 2 / ln 1.02 = 35 reads at the 2 %
    # floor, plus one record's half-second reads.
    for t, n in per_doubling(ages):
        if n > 35 + NEAR_FLOOR_POINTS:
            problems.append(f"{n} reads between {t:.0f}s and {2 * t:.0f}s")
    assert not problems, f"{name}: {len(ages)} reads; " + "; ".join(problems[:6])


async def _wait_sim(
    sim: Simulator, clock: VirtualClock, client: AsyncEvolink, timeout: float
) -> str:
    async with clock.running():
        task = await client.images.generate("a task that will not end")
        try:
            await client.tasks.wait(task, timeout=timeout)
        except WaitTimeoutError:
            return task.id
    return task.id


@pytest.mark.anyio
async def test_never_ending_blind_task_wait_for_an_hour() -> None:
    sim, clock, client = make(
        seed=2, durations=Fixed(1e6), progress=NoProgress(), estimates=Estimates(missing=True)
    )
    async with client:
        tid = await _wait_sim(sim, clock, client, HOUR)
    v = next(v for v in task_views(sim) if v.id == tid)
    ages = [t - v.created for t in v.reads]
    check_storm("blind, never ends", ages)


@pytest.mark.anyio
async def test_never_ending_task_with_honest_looking_estimate() -> None:
    sim, clock, client = make(seed=2, durations=Fixed(1e6))
    async with client:
        tid = await _wait_sim(sim, clock, client, HOUR)
    v = next(v for v in task_views(sim) if v.id == tid)
    check_storm("linear progress, never ends", [t - v.created for t in v.reads])


@pytest.mark.anyio
@pytest.mark.parametrize("level", [95, 99])
async def test_stuck_near_end_for_an_hour_fresh_client(level: int) -> None:
    sim, clock, client = make(seed=2, durations=Fixed(HOUR + 100), progress=StuckAt(level, 0.02))
    async with client:
        tid = await _wait_sim(sim, clock, client, HOUR)
    v = next(v for v in task_views(sim) if v.id == tid)
    check_storm(f"stuck at {level}% for an hour", [t - v.created for t in v.reads])


@pytest.mark.anyio
@pytest.mark.parametrize("batch_reads", [False, True])
async def test_stuck_at_99_after_a_learned_record(batch_reads: bool) -> None:
    """A record learned on linear 60-120 s tasks (sharp: half-second reads near the end),
    then 30 waits on tasks of the same model stuck at 99 % for 20 minutes."""
    prog = Switch()
    durs = SwitchDurations(Uniform(60, 120))
    sim, clock, client = make(seed=7, durations=durs, progress=prog)
    async with client:
        await run_batch(sim, clock, client, 150, 30, batch_reads=batch_reads, prefix="train")
        prog.current = StuckAt(99, 0.05)
        durs.current = Fixed(1300)
        before = set(sim.tasks)
        await run_batch(sim, clock, client, 30, 30, batch_reads=batch_reads, prefix="stuck")
    views = [v for v in task_views(sim) if v.id not in before]
    problems = []
    for v in views:
        ages = [t - v.created for t in v.reads]
        near = sum(1 for a, b in itertools.pairwise(ages) if b - a < 0.02 * a - 1e-6)
        if near > NEAR_FLOOR_POINTS:
            problems.append(f"{near} reads under 2 % of the age apart")
        problems += floor_violations(ages, deadline=900.0)
        problems += bound_violations(ages, slack=0.5 if batch_reads else 0.0, trusted=True)
    total = sum(len(v.reads) for v in views)
    assert not problems, f"{total} reads of 30 stuck tasks; " + "; ".join(problems[:6])


@pytest.mark.anyio
async def test_hurried_last_task_stuck_at_99() -> None:
    """A batch's last task (hurried) stuck at 99 % for nearly an hour."""
    sim, clock, client = make(seed=2, durations=Fixed(3500), progress=StuckAt(99, 0.03))
    async with client:
        r = await run_batch(sim, clock, client, 1, 30)
    v = r.views[0]
    ages = [t - v.created for t in v.reads]
    problems: list[str] = []
    # hurried reads: at least once a second, or a twentieth of the age apart past 20 s;
    # never closer than the storm floor either.
    problems += floor_violations(ages)
    in120 = sum(1 for a in ages if a < 120)
    in300 = sum(1 for a in ages if a < 300)
    if in120 >= 60:
        problems.append(f"{in120} reads in the first 120 s (docs: under 60)")
    if in300 >= 100:
        problems.append(f"{in300} reads in the first 300 s (docs: under 100)")
    assert r.report.outcomes[0].kind.value in ("completed", "abandoned")
    assert not problems, f"{len(ages)} reads in {ages[-1]:.0f}s; " + "; ".join(problems)


def _hostile_client(srv: HostileServer, clock: VirtualClock) -> AsyncEvolink:
    return AsyncEvolink(
        api_key=TEST_API_KEY,
        transport=srv.transport(),
        clock=clock,
        base_url="https://api.evolink.invalid",
    )


HOSTILE_HINTS = {
    # the estimate always says the task ends a second from now
    "estimate-one-more-second, progress 0": (lambda a: 0, lambda a: math.ceil(a) + 1),
    "estimate-one-more-second, progress 99": (lambda a: 99, lambda a: math.ceil(a) + 1),
    # progress creeping towards 99 as if the end were always a second away
    "progress age/(age+1), estimate age+1": (
        lambda a: min(99, int(100 * a / (a + 1))),
        lambda a: math.ceil(a) + 1,
    ),
    "estimate doubling with age": (lambda a: 0, lambda a: max(1, math.ceil(2 * a))),
}


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(HOSTILE_HINTS))
async def test_hostile_server_hints_never_storm(name: str) -> None:
    progress, estimate = HOSTILE_HINTS[name]
    clock = VirtualClock()
    srv = HostileServer(clock, lambda i: ends_at(1e9, progress, estimate))
    async with _hostile_client(srv, clock) as client:
        async with clock.running():
            task = await client.images.generate("never")
            with pytest.raises(WaitTimeoutError):
                await client.tasks.wait(task, timeout=HOUR)
    check_storm(name, srv.ages(srv.order[0]))


@pytest.mark.anyio
@pytest.mark.parametrize("batch_reads", [False, True])
async def test_hostile_batch_with_never_ending_tasks_one_outcome_each(batch_reads: bool) -> None:
    """30 tasks: a third never end (estimate always one more second, progress 99), the rest
    end at 60-600 s. Every input ends in exactly one outcome; the stuck ones are given up
    at the task deadline; no read storm on any task."""
    clock = VirtualClock()

    def behaviour(i: int):  # type: ignore[no-untyped-def]
        if i % 3 == 0:
            return ends_at(1e9, lambda a: 99, lambda a: math.ceil(a) + 1)
        d = 60 + (i * 37) % 540
        return ends_at(d, lambda a, d=d: min(99, int(100 * a / d)), lambda a, d=d: round(d))

    srv = HostileServer(clock, behaviour, batch_endpoint=batch_reads)
    async with _hostile_client(srv, clock) as client:
        async with clock.running():
            report = await client.images.generate_many(
                [f"p{i}" for i in range(30)],
                max_in_flight=10,
                batch_reads=batch_reads,
                task_deadline=900,
            )
    assert len(report.outcomes) == 30
    assert [o.index for o in report.outcomes] == list(range(30))
    kinds = [o.kind.value for o in report.outcomes]
    assert kinds == ["abandoned" if i % 3 == 0 else "completed" for i in range(30)], kinds
    problems = []
    for tid in srv.order:
        ages = srv.ages(tid)
        problems += floor_violations(ages, deadline=900.0)
        problems += bound_violations(ages, slack=0.5 if batch_reads else 0.0, trusted=True)
    assert not problems, "; ".join(problems[:6])
