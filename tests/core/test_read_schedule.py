"""The learned read schedule: a dynamic programme over the record, and how the record moves.

`_timing.Schedule` chooses read points to spend least on reads and delay together;
`Spread.schedule` makes reads dearer to meet a read budget; a hint's record believes the
hint where the reads cannot tell (`anchored`); a model that turns faster is learned again;
and one task in a few probes below the schedule so that the record does not drift late.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolink._estimate import GET_COSTS, PROBE_SPAN, PROBE_YOUNG, ReadPlan
from evolink._models import Task, TaskStatus
from evolink._timing import (
    ANCHOR_SHARE,
    ANCHOR_SOFT_FROM,
    DURATION,
    ESTIMATE,
    MIN_SAMPLES,
    Ending,
    Hint,
    ModelTiming,
    Schedule,
    Spread,
)


def _cost_of(schedule: Schedule, reads_at: list[int]) -> float:
    """Expected delay + cost x reads of reading at the points `reads_at` (indices, rising,
    ending at the top), from the start: by brute force over the cells."""
    n = len(schedule.points) - 1
    total, before = 0.0, 0
    for j in reads_at:
        total += schedule.cost * (1.0 - schedule.shares[before] if before else 1.0)
        late = math.exp(schedule.points[j]) * (schedule.shares[j] - schedule.shares[before])
        late -= schedule.moments[j] - schedule.moments[before]
        total += late
        before = j
    assert before == n
    return total


def _plan_from_start(schedule: Schedule) -> list[int]:
    x, share, moment, picks = -math.inf, 0.0, 0.0, []
    while share < 1.0:
        at = schedule.next_read(x, share, moment)
        k = schedule.points.index(at)
        picks.append(k)
        x, share, moment = at, schedule.shares[k], schedule.moments[k]
    return picks


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1.0, 1.0), min_size=6, max_size=6, unique=True),
    st.floats(0.001, 0.3),
    st.none() | st.lists(st.floats(0.05, 1.0), min_size=5, max_size=5),
)
def test_the_schedule_is_the_cheapest_of_all_read_plans(
    xs: list[float], cost: float, masses: list[float] | None
) -> None:
    """On a small record, no subset of the points costs less than the programme's plan,
    whether the points cut the record evenly or not (`masses`: between each two)."""
    points = sorted(xs)
    shares = None
    if masses is not None:
        shares = [sum(masses[:k]) / sum(masses) for k in range(len(masses) + 1)]
    schedule = Schedule.solve(points, cost, shares)
    chosen = _cost_of(schedule, _plan_from_start(schedule))
    n = len(points) - 1
    for size in range(n):
        for subset in itertools.combinations(range(1, n), size):
            assert chosen <= _cost_of(schedule, [*subset, n]) + 1e-9


def _record(samples: list[float], *, anchored: bool = False) -> Spread:
    spread = Spread(anchored=anchored)
    for x in samples:
        spread.add(x - 0.01, x + 0.01)
    return spread


def test_dearer_reads_mean_fewer_reads_and_a_budget_is_kept() -> None:
    rng = random.Random(3)
    spread = _record([rng.uniform(-0.4, 0.4) for _ in range(120)])
    cheap, dear = spread.schedule(0.001), spread.schedule(0.1)
    assert cheap.reads() > dear.reads() >= 1.0
    # Within a budget of 2 reads: each task follows one of two schedules, the one just
    # within the budget or the one just over it, in shares that spend it on average.
    draws = [k / 1000 for k in range(1000)]
    followed = [spread.schedule(0.001, reads=2.0, draw=draw) for draw in draws]
    kinds = {id(schedule): schedule for schedule in followed}
    assert len(kinds) == 2
    within, over = sorted(kinds.values(), key=Schedule.reads)
    assert within.reads() <= 2.0 < over.reads()
    spent = sum(schedule.reads() for schedule in followed) / len(followed)
    assert within.reads() < spent == pytest.approx(2.0, abs=0.01)
    # A budget the cheap schedule keeps anyway changes nothing.
    assert spread.schedule(0.001, reads=100.0) == cheap


def test_a_hint_is_believed_where_the_reads_cannot_tell() -> None:
    """Every task read at 55 % of its estimate and just after it: any spread of the ends
    within (0.55, 1.01] fits. A hint's record puts them where the hint said; the raw
    durations' record (no hint to believe) spreads them over the interval."""
    hint, raw = Spread(anchored=True), Spread()
    for _ in range(MIN_SAMPLES):
        hint.add(math.log(0.55), math.log(1.01))
        raw.add(math.log(0.55), math.log(1.01))
    assert abs(hint.quantile(0.5)) < 0.01
    assert hint.quantile(0.05) > -0.01
    assert raw.quantile(0.5) < -0.2
    # One read just past the end says nearly all: about one read is the whole schedule.
    assert hint.schedule(GET_COSTS.read_cost).reads() < 1.1


def test_a_mature_record_does_not_take_the_hints_word_for_granted() -> None:
    """The same reads, from `ANCHOR_SOFT_FROM` ends on: the hint keeps a share, but the
    ends may lie anywhere the reads allow, so the schedule reads before the end the hint
    predicts (and would see it done there if the hint had become wrong), within the
    read budget. While the record was young, one read just past the end was all."""
    spread = Spread(anchored=True)
    for _ in range(ANCHOR_SOFT_FROM - 1):
        spread.add(math.log(0.55), math.log(1.01))
    young = spread.schedule(GET_COSTS.read_cost, GET_COSTS.reads)
    assert young.next_read(-math.inf, 0.0, 0.0) > 0.0
    for _ in range(2 * ANCHOR_SOFT_FROM - 1):
        spread.add(math.log(0.55), math.log(1.01))
    assert spread.cdf(0.003) - spread.cdf(-0.003) > ANCHOR_SHARE  # the hint's share
    assert spread.quantile(0.5) < -0.2
    # (The draw of a task that follows the schedule within the budget, not the one over.)
    mature = spread.schedule(GET_COSTS.read_cost, GET_COSTS.reads, draw=0.999)
    assert mature.next_read(-math.inf, 0.0, 0.0) < -0.1
    assert 1.5 < mature.reads() <= GET_COSTS.reads


def test_a_hint_shown_wrong_weighs_nothing() -> None:
    """Ends that exclude the hint's word put no mass on it."""
    spread = Spread(anchored=True)
    for k in range(40):
        spread.add(math.log(0.45 + k * 0.001), math.log(0.5 + k * 0.001))
    assert spread.cdf(-0.01) == pytest.approx(1.0)


def test_late_ends_do_not_reset_a_record() -> None:
    """A young record is often surprised by late ends (the first ends of a batch are its
    fastest tasks): they never start it again."""
    spread = Spread()
    for k in range(40):
        x = math.log(2 + k * 0.01)
        spread.add(x - 0.05, x)
    for _ in range(20):
        spread.add(math.log(50), math.log(60))
    assert len(spread) == 60


def test_one_task_in_four_probes_below_the_schedule() -> None:
    """With a sharp record (every task ends at 10 s), a probing task reads first before
    the schedule's first read; the others read where the schedule says."""
    timing = ModelTiming()
    for _ in range(40):
        timing.learn(Ending(low=9.9, high=10.05, predicted=((DURATION, 1.0), (ESTIMATE, 10.0))))
    firsts = []
    for _ in range(8):
        plan = ReadPlan(started=0.0, timing=timing, costs=GET_COSTS)
        plan.observe(Task.from_dict({"id": "task-unified-1-abc", "status": "pending"}), 0.0)
        firsts.append(plan.next_read_at(0.0))
    usual = max(firsts)
    probes = [first for first in firsts if first < usual - 1e-9]
    assert len(probes) == 8 // GET_COSTS.probe_every
    assert all(usual > 9.0 for usual in [usual])


def test_a_task_near_the_top_of_a_bounded_record_is_read_at_its_last_end() -> None:
    """Every task has ended within 90-100 s of a 100 s estimate: one still running at
    99.96 s is read as soon as reads may come (2 % of its age on), not a quarter of its age
    later."""
    timing = ModelTiming()
    for k in range(101):
        end = 90.0 + k * 0.1
        timing.learn(Ending(low=end - 0.05, high=end, predicted=((ESTIMATE, 100.0),)))
    plan = ReadPlan(started=0.0, timing=timing, costs=GET_COSTS, estimated_time=100.0)
    running = Task.from_dict(
        {"id": "task-unified-1-abc", "status": "processing", "task_info": {"estimated_time": 100}}
    )
    for now in (0.0, 95.0, 99.96):
        plan.observe(running, now)
    assert plan.next_read_at(99.96, running.status) <= 99.96 * 1.02 + 1e-6


def _band_timing(ends: int) -> ModelTiming:
    """A model whose tasks (10 s estimates) all read 50 % at 5 s and ended just after the
    end that reading predicted: sharp records for the estimate and the 40-59 % band."""
    timing = ModelTiming()
    band = Hint.progress(50)
    for _ in range(ends):
        timing.learn(
            Ending(
                low=5.0,
                high=9.95,
                predicted=((ESTIMATE, 10.0),),
                readings=((band, 5.0 * 100 / 50.5, band.covariate(50)),),
            )
        )
    return timing


def _second_reads(timing: ModelTiming) -> list[float]:
    """Where each of 8 tasks reads after a first read that saw 50 % at 5 s."""
    estimate = {"task_info": {"estimated_time": 10}}
    seconds = []
    for _ in range(8):
        plan = ReadPlan(started=0.0, timing=timing, costs=GET_COSTS)
        plan.observe(
            Task.from_dict({"id": "task-unified-1-abc", "status": "pending", **estimate}), 0.0
        )
        plan.next_read_at(0.0)
        running = {"id": "task-unified-1-abc", "status": "processing", "progress": 50, **estimate}
        plan.observe(Task.from_dict(running), 5.0)
        seconds.append(plan.next_read_at(5.0, TaskStatus.PROCESSING))
    return seconds


@pytest.mark.parametrize(("ends", "probes"), [(40, 2), (PROBE_YOUNG, 0)])
def test_a_young_record_is_probed_where_a_task_first_plans_on_it(ends: int, probes: int) -> None:
    """A probing task (one in four) whose first read was its probe probes again where it
    first plans on a young progress band: unprobed, such a record settles on the hint's
    word (every task read just after the predicted end) even when the ends are earlier,
    as coarse progress steps make them. A record of `PROBE_YOUNG` ends is not probed so."""
    seconds = _second_reads(_band_timing(ends))
    usual = max(seconds)
    if ends < ANCHOR_SOFT_FROM:
        # Young, the record holds the hint's word: the usual read is just after 10 s.
        # (From `ANCHOR_SOFT_FROM` ends the word is a tie-breaker: the reads go inside the
        # intervals.)
        assert usual == pytest.approx(10.0, abs=0.2)
    early = [s for s in seconds if s < usual - 1e-9]
    assert len(early) == probes
    # Anywhere up to `PROBE_SPAN` below (in log), however sharp the record (this one's
    # 10-90 % range is about 0: the hint's word).
    assert all(usual * math.exp(-PROBE_SPAN) <= s < usual for s in early)
    assert not early or min(early) < usual * math.exp(-PROBE_SPAN / 2)
