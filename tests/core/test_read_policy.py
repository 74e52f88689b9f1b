"""The learning read plan: what it learns, and the bounds that hold whatever it learned."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolink._converter import parse_task
from evolink._estimate import (
    AGE_SHARE,
    BATCH_COSTS,
    GET_COSTS,
    HURRY_COSTS,
    MAX_DELAY,
    MAX_WAIT,
    MIN_AGE_SHARE,
    MIN_DELAY,
    NEAR_FLOOR,
    ReadPlan,
)
from evolink._models import Task
from evolink._timing import DURATION, EM_ROUNDS, ESTIMATE, Ending, Hint, ModelTiming, Spread

TASK_ID = "task-unified-1756817821-4x2tkbzq"


def seen(status: str, progress: int = 0, estimate: float | None = None) -> Task:
    data: dict[str, Any] = {
        "id": TASK_ID,
        "object": "image.generation.task",
        "status": status,
        "progress": progress,
        "model": "gpt-4o-image",
    }
    if estimate is not None:
        data["task_info"] = {"estimated_time": estimate}
    if status == "completed":
        data["results"] = ["https://r.test/1.png"]
    return parse_task(data)


def ended(timing: ModelTiming, low: float, high: float, **predicted: float) -> None:
    hints = {"estimate": ESTIMATE, "duration": DURATION}
    pairs = tuple((hints[name], value) for name, value in predicted.items())
    timing.learn(Ending(low=low, high=high, predicted=pairs))


# -- the record ----------------------------------------------------------------------------


@given(
    intervals=st.lists(st.tuples(st.floats(-3, 3), st.floats(0.001, 2)), min_size=1, max_size=60),
    p=st.floats(0, 1),
    x=st.floats(-6, 6),
)
def test_a_record_is_a_distribution(intervals, p, x):
    """Its CDF runs from 0 to 1 without falling; its quantiles invert it."""
    spread = Spread()
    for low, width in intervals:
        spread.add(low, low + width)
    assert 0.0 <= spread.cdf(x) <= 1.0
    assert spread.cdf(x) <= spread.cdf(x + 0.5)
    assert spread.cdf(spread.quantile(p)) == pytest.approx(p, abs=1e-6)


def self_consistent(intervals: list[tuple[float, float]], rounds: int) -> list[float]:
    """Turnbull's self-consistency written out cell by cell: each interval's mass shared
    among the cells it covers in proportion to their mass; the cells' masses, normalised."""
    knots = sorted({x for interval in intervals for x in interval})
    cells = [(knots[i], knots[i + 1]) for i in range(len(knots) - 1)]
    covers = [[low <= a and b <= high for a, b in cells] for low, high in intervals]
    mass = [0.0] * len(cells)
    for (low, high), covered in zip(intervals, covers, strict=True):
        for cell, (a, b) in enumerate(cells):
            if covered[cell]:
                mass[cell] += (b - a) / (high - low) ** 2
    for _ in range(rounds):
        shared = [0.0] * len(cells)
        for covered in covers:
            total = sum(m for m, c in zip(mass, covered, strict=True) if c)
            for cell, c in enumerate(covered):
                if c and total > 0:
                    shared[cell] += mass[cell] / total
        mass = shared
    total = sum(mass)
    return [m / total for m in mass]


@settings(max_examples=50, deadline=None)
@given(
    intervals=st.lists(
        st.tuples(st.integers(-40, 40), st.integers(1, 30)), min_size=2, max_size=40
    ).map(lambda pairs: [(low / 10, (low + width) / 10) for low, width in pairs])
)
def test_the_record_is_turnbulls_estimate(intervals):
    """The record's fast rounds (prefix sums, a difference array) give the estimate the
    rounds written out cell by cell give."""
    spread = Spread()
    for low, high in intervals:
        spread.add(low, high)
    # Past 32 ends, `add` reads the record (is the end a surprise?), and the record is
    # rebuilt only when an eighth of it is new: compare the estimate of every end.
    spread._build()
    mass = self_consistent(intervals, EM_ROUNDS)
    knots = sorted({x for interval in intervals for x in interval})
    below = 0.0
    for knot, cell_mass in zip(knots[1:], mass, strict=True):
        below += cell_mass
        assert spread.cdf(knot) == pytest.approx(below, abs=1e-9)


def test_the_record_finds_the_end_in_wide_reads():
    """Wide intervals overlapping narrow ones put their mass where the narrow ones are."""
    spread = Spread()
    for _ in range(20):
        spread.add(math.log(0.5), math.log(1.02))  # probe at half, found done just after
    for _ in range(5):
        spread.add(math.log(0.99), math.log(1.01))  # read just before and just after
    assert spread.quantile(0.1) > math.log(0.9)


def test_the_hint_that_predicted_best_is_chosen():
    """Estimates that were twice the truth but consistent beat raw durations of 2-6 s."""
    timing = ModelTiming()
    for index in range(40):
        duration = 2 + 4 * index / 39
        ended(timing, duration * 0.98, duration * 1.01, estimate=2 * duration, duration=1.0)
    hint, spread = timing.best([DURATION, ESTIMATE]) or (None, None)
    assert ESTIMATE == hint
    assert spread is not None
    assert math.exp(spread.quantile(0.5)) == pytest.approx(0.5, rel=0.05)


def test_nothing_is_judged_on_too_few_ends():
    """A record of a handful of ends is not used."""
    timing = ModelTiming()
    for _ in range(3):
        ended(timing, 3.9, 4.0, duration=1.0)
    assert timing.best([DURATION]) is None


# -- the plan ------------------------------------------------------------------------------


def learned(durations: list[float], *, estimate_factor: float = 1.0) -> ModelTiming:
    timing = ModelTiming()
    for duration in durations:
        ended(
            timing,
            duration * 0.97,
            duration * 1.02,
            estimate=duration * estimate_factor,
            duration=1.0,
        )
    return timing


def test_a_learned_plan_reads_near_the_end_even_when_estimates_lie():
    """Estimates twice the truth, once learned, no longer put the first read past the end."""
    timing = learned([4.0] * 40, estimate_factor=2.0)
    plan = ReadPlan(started=0.0, timing=timing)
    plan.observe(seen("pending", estimate=8.0), 0.0)
    first = plan.next_read_at(0.0)
    assert 3.8 <= first <= 4.2


def test_without_any_hint_reads_come_a_bounded_share_of_the_age_apart():
    """Nothing known and no hint: the first read within a second, then at most 1.5x the age."""
    plan = ReadPlan(started=0.0, timing=ModelTiming(), costs=GET_COSTS)
    plan.observe(seen("pending"), 0.0)
    now = 0.0
    for _ in range(12):
        wake = plan.next_read_at(now)
        assert wake <= max(1.0, now * (1 + GET_COSTS.cold_share)) + 1e-9
        now = wake
        plan.observe(seen("processing"), now)


# -- bounds, whatever was learned and whatever the server says ---------------------------

_record = st.lists(
    st.tuples(st.floats(0.05, 500), st.floats(1.0, 1.5), st.floats(0.01, 20)),
    max_size=40,
)
_reads = st.lists(
    st.tuples(
        st.floats(0.0, 120.0),  # seconds since the previous read
        st.sampled_from(["pending", "processing"]),
        st.integers(-5, 150),  # progress, nonsense included
        st.one_of(st.none(), st.floats(0.0, 1e7)),  # estimate
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(record=_record, reads=_reads, costs=st.sampled_from([GET_COSTS, BATCH_COSTS, HURRY_COSTS]))
def test_reads_stay_within_their_bounds(record, reads, costs):
    """Never later than the bound, never sooner than the floor, whatever was learned;
    a batch's last few are read each second, or a twentieth of their age apart if longer."""
    timing = ModelTiming()
    for duration, stretch, estimate in record:
        ended(timing, duration, duration * stretch, estimate=estimate, duration=1.0)
    plan = ReadPlan(started=0.0, timing=timing, costs=costs)
    now = 0.0
    for index, (gap, status, progress, estimate) in enumerate(reads):
        now += gap
        task = seen(status, progress, estimate)
        plan.observe(task, now)
        wake = plan.next_read_at(now, task.status)
        age = now
        assert math.isfinite(wake)
        assert wake >= now + MIN_DELAY - 1e-9
        assert wake <= now + MAX_WAIT + 1e-9
        if index > 0:  # the first read has no floor but MIN_DELAY: it comes once
            assert wake >= now + min(MIN_AGE_SHARE * age, NEAR_FLOOR) - 1e-9
        if not plan._agreed:  # two readings agreeing on the end are trusted to it
            assert wake <= now + max(MAX_DELAY, AGE_SHARE * age) + 1e-9
        if costs is HURRY_COSTS:
            assert wake <= now + max(1.0, HURRY_COSTS.tail_share * age) + 1e-9


def test_a_batchs_last_task_is_read_each_second_then_a_twentieth_of_its_age():
    """Nothing known and no hint: in a hurry, the bounded-delay schedule would wait a tenth
    of the task's age; a 1 s loop reads it each second, and so do we, until a twentieth
    of its age is longer (20 s on): a stuck last task is then no storm."""
    plan = ReadPlan(started=0.0, timing=ModelTiming(), costs=HURRY_COSTS)
    plan.observe(seen("pending"), 0.0)
    now = 15.0
    plan.observe(seen("processing"), now)
    assert plan.next_read_at(now, seen("processing").status) == pytest.approx(now + 1.0)
    plan.costs = GET_COSTS  # priced as usual, the same task waits half its age
    assert plan.next_read_at(now, seen("processing").status) == pytest.approx(now + 7.5)
    now = 100.0
    plan.costs = HURRY_COSTS
    plan.observe(seen("processing"), now)
    assert plan.next_read_at(now, seen("processing").status) == pytest.approx(now + 5.0)


@settings(max_examples=100, deadline=None)
@given(record=_record, progress=st.integers(0, 99), estimate=st.floats(0.5, 100))
def test_a_task_that_never_ends_is_never_read_in_a_storm(record, progress, estimate):
    """An hour of a task that never ends costs a bounded number of reads."""
    timing = ModelTiming()
    for duration, stretch, est in record:
        ended(timing, duration, duration * stretch, estimate=est, duration=1.0)
    plan = ReadPlan(started=0.0, timing=timing)
    now, count = 0.0, 0
    task = seen("processing", progress, estimate)
    plan.observe(task, now)
    while now < 3600.0:
        now = plan.next_read_at(now, task.status)
        plan.observe(task, now)
        count += 1
    # After the first second, each read is at least 2% of the age after the one before.
    assert count <= math.log(3600.0) / math.log(1 + MIN_AGE_SHARE) + 1 / MIN_DELAY


def test_a_progress_hint_is_judged_by_how_far_along_it_was_read():
    """Readings at 10% and at 90% are different hints: slow-then-fast misleads only early."""
    assert Hint.progress(10) != Hint.progress(90)
    assert Hint.progress(1) != Hint.progress(19)  # finely where a percent says most
    assert Hint.progress(10) == Hint.progress(11)
    assert Hint.progress(85) == Hint.progress(99)
