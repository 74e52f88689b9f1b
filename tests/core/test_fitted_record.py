"""Where a model's tasks show no progress, a fitted normal may stand for the estimate's record.

waiting.md, "A fitted record": the estimate's record then plans every read of a task, and
its schedule's own reads censor the ends; a censored normal fit, kept where it predicts
held-out ends as well as Turnbull's estimate, spends the reads better, needs no probes,
and a task's first read comes at its estimate's end, not part-way (it would only see 0).
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_read_policy import seen

from evolink import _censored_normal
from evolink._estimate import END_MARGIN, GET_COSTS, PROBE_FRACTION, STILL_FROM, ReadPlan
from evolink._timing import (
    DURATION,
    EARLY,
    ESTIMATE,
    MIN_SAMPLES,
    STILL,
    Ending,
    Hint,
    ModelTiming,
    Spread,
)


def _censor(x: float, reads: list[float]) -> tuple[float, float]:
    """The interval a value is known within, read at `reads` (sorted): between the last
    read below it and the first at or above it."""
    low, high = reads[0] - 1.0, reads[-1] + 1.0
    for read in reads:
        if read < x:
            low = read
        else:
            high = read
            break
    return low, high


@settings(max_examples=40, deadline=None)
@given(
    mu=st.floats(-1.0, 1.0),
    sigma=st.floats(0.05, 0.5),
    seed=st.integers(0, 10_000),
)
def test_the_fit_recovers_a_normal_from_values_censored_by_reads(mu, sigma, seed):
    """Values read only at a few shared points (as one schedule's tasks are), each known
    between two of them: the fit finds the normal they came from, where the middles of
    the intervals would not (they sit on a few points)."""
    rng = random.Random(seed)
    reads = sorted(mu + sigma * z for z in (-1.6, -0.9, -0.3, 0.2, 0.8, 1.5))
    intervals = [_censor(rng.gauss(mu, sigma), reads) for _ in range(600)]
    fitted = _censored_normal.fit(intervals)
    assert fitted.mean == pytest.approx(mu, abs=0.25 * sigma)
    assert fitted.stdev == pytest.approx(sigma, rel=0.25)


def test_values_known_exactly_fit_their_mean_and_spread():
    values = [0.1, 0.3, -0.2, 0.05, 0.15]
    fitted = _censored_normal.fit([(v, v) for v in values])
    mean = sum(values) / len(values)
    assert fitted.mean == pytest.approx(mean, abs=1e-4)
    assert fitted.variance == pytest.approx(
        sum((v - mean) ** 2 for v in values) / len(values), rel=1e-3
    )


def test_a_fit_has_no_intervals_to_be_fitted_to():
    with pytest.raises(ValueError, match="no intervals"):
        _censored_normal.fit([])


def test_a_fitted_record_is_a_distribution():
    knots, cdf = _censored_normal.record(NormalDist(0.2, 0.1))
    assert knots == sorted(knots)
    assert cdf[0] == 0.0
    assert cdf[-1] == 1.0
    assert cdf == sorted(cdf)
    # Its middle is the normal's.
    assert knots[len(knots) // 2] == pytest.approx(0.2, abs=1e-9)


def _honest_band(rng: random.Random, n: int = 160) -> list[tuple[float, float]]:
    """`log(D / E)` of tasks of 2-6 s, estimates within 15 % in whole seconds, read at
    the same few points (one schedule): a record whose every interval shares them."""
    reads = [-0.3, -0.12, 0.0, 0.08, 0.18, 0.4]
    out = []
    while len(out) < n:
        duration = rng.uniform(2, 6)
        estimate = max(1, round(duration * (1 + rng.uniform(-0.15, 0.15))))
        if estimate == 4:
            out.append(_censor(math.log(duration / estimate), reads))
    return out


def _two_clusters(rng: random.Random, n: int = 160) -> list[tuple[float, float]]:
    """`log(D / E)` of tasks of 2-4 s or 20-30 s, one estimate for all (60 s)."""
    out = []
    for _ in range(n):
        duration = rng.uniform(2, 4) if rng.random() < 0.5 else rng.uniform(20, 30)
        x = math.log(duration / 60.0)
        out.append((x - 0.05, x + 0.05))
    return out


def _spread(intervals: list[tuple[float, float]], *, smooth: bool) -> Spread:
    spread = Spread(anchored=True)
    spread.allow_fit(smooth)
    for low, high in intervals:
        spread.add(low, high)
    return spread


def test_a_normal_stands_for_a_record_it_describes():
    spread = _spread(_honest_band(random.Random(3)), smooth=True)
    assert spread.fitted()
    # The fitted record has mass inside the gaps between the shared reads.
    assert 0.02 < spread.cdf(-0.06) - spread.cdf(-0.12) < 0.4


def test_a_record_the_normal_does_not_describe_stays_turnbulls():
    """Ends in two clusters: a normal would put the reads between them, where no task
    ends; held out, Turnbull's estimate predicts them far better, and is kept."""
    spread = _spread(_two_clusters(random.Random(4)), smooth=True)
    assert not spread.fitted()
    # Nothing ends between the clusters, as the record has it.
    gap = spread.cdf(math.log(15 / 60)) - spread.cdf(math.log(5 / 60))
    assert gap < 0.02


def test_a_record_not_allowed_to_fit_stays_turnbulls_and_follows_its_permission():
    intervals = _honest_band(random.Random(5))
    spread = _spread(intervals, smooth=False)
    assert not spread.fitted()
    turnbull = spread.quantile(0.3)
    spread.allow_fit(True)
    assert spread.fitted()
    spread.allow_fit(False)
    assert not spread.fitted()
    assert spread.quantile(0.3) == turnbull


def _ended(timing: ModelTiming, duration: float, estimate: float, *, progress: bool) -> None:
    readings = ((Hint.progress(50), duration, 0.0),) if progress else ()
    timing.learn(
        Ending(
            low=duration * 0.97,
            high=duration * 1.01,
            predicted=((DURATION, 1.0), (ESTIMATE, estimate), (Hint.estimate(estimate), estimate)),
            readings=readings,
        )
    )


@pytest.mark.parametrize("progress", [False, True])
def test_an_estimates_record_may_fit_only_where_the_model_shows_no_progress(progress):
    """Where tasks show progress (and are seen done on their bands' records, or on the
    hints': no `planned_on` here), the estimate's record plans only a task's first read;
    its Turnbull estimate stays (test_record_hold: where they are seen done on it)."""
    timing = ModelTiming()
    rng = random.Random(6)
    for _ in range(2 * MIN_SAMPLES):
        duration = rng.uniform(3.5, 4.5)
        _ended(timing, duration, 4.0, progress=progress)
    estimates = timing.spread(Hint.estimate(4.0))
    assert estimates is not None
    assert estimates.smooth is (not progress)
    raw = timing.spread(DURATION)
    assert raw is not None
    assert not raw.smooth
    assert not raw.fitted()


def test_a_model_that_starts_showing_progress_leaves_the_fit():
    timing = ModelTiming()
    rng = random.Random(7)
    for _ in range(2 * MIN_SAMPLES):
        _ended(timing, rng.uniform(3.5, 4.5), 4.0, progress=False)
    record = timing.spread(ESTIMATE)
    assert record is not None
    assert record.fitted()
    for _ in range(4 * MIN_SAMPLES):
        _ended(timing, rng.uniform(3.5, 4.5), 4.0, progress=True)
    assert not record.fitted()


def _still_reads(timing: ModelTiming, count: int, *, at: float = STILL_FROM + 0.01) -> None:
    """`count` tasks of a 10 s estimate, each read first at `at` of it, running at 0."""
    for _ in range(count):
        plan = ReadPlan(started=0.0, timing=timing)
        plan.observe(seen("pending", 0, 10.0), 0.0)
        plan.observe(seen("processing", 0, 10.0), at * 10.0)


def _done_early(timing: ModelTiming, count: int) -> None:
    """`count` tasks of a 10 s estimate found done at their first read, at 5.5 s."""
    for _ in range(count):
        plan = ReadPlan(started=0.0, timing=timing)
        plan.observe(seen("pending", 0, 10.0), 0.0)
        plan.observe(seen("completed", 100, 10.0), 5.5)


def test_a_model_shows_no_progress_after_enough_reads_at_zero():
    """`STILL` reads at 0 well into their estimates, among `EARLY` first reads before
    their ends that found no task done."""
    timing = ModelTiming()
    _still_reads(timing, EARLY - 1)
    assert not timing.shows_none()  # too few first reads before the estimates' ends
    _still_reads(timing, 1)
    assert timing.shows_none()


def test_reads_at_zero_early_in_a_task_or_while_queued_do_not_count():
    timing = ModelTiming()
    _still_reads(timing, 2 * EARLY, at=STILL_FROM - 0.05)  # too early to say
    for _ in range(2 * STILL):
        plan = ReadPlan(started=0.0, timing=timing)
        plan.observe(seen("pending", 0, 10.0), 0.0)
        plan.observe(seen("pending", 0, 10.0), 9.0)  # queued
    assert not timing.shows_none()
    _still_reads(timing, STILL)
    assert timing.shows_none()


def test_a_model_whose_early_reads_find_tasks_done_keeps_its_part_way_read():
    """Estimates far too long for some tasks (noisy ones): the read part-way is what sees
    those tasks done in time, so it stays."""
    timing = ModelTiming()
    _still_reads(timing, EARLY)
    _done_early(timing, 2)
    assert not timing.shows_none()


def test_a_model_whose_ended_tasks_showed_progress_shows_some():
    timing = ModelTiming()
    _still_reads(timing, EARLY)
    _ended(timing, 4.0, 4.0, progress=True)
    assert not timing.shows_none()


@pytest.mark.parametrize("none", [False, True])
def test_the_first_read_comes_at_the_estimates_end_where_the_model_shows_no_progress(none):
    """Part-way, a read would only see 0: it comes just past the estimate's end instead."""
    timing = ModelTiming()
    if none:
        _still_reads(timing, EARLY)
    plan = ReadPlan(started=100.0, timing=timing, costs=GET_COSTS)
    plan.observe(seen("pending", 0, 10.0), 100.0)
    at = plan.next_read_at(100.0) - 100.0
    if none:
        assert at == pytest.approx(10.0 * (1 + END_MARGIN), abs=0.05)
    else:
        assert at == pytest.approx(PROBE_FRACTION * 10.0, abs=0.05)


def _fitted_timing() -> ModelTiming:
    timing = ModelTiming()
    rng = random.Random(8)
    for _ in range(160):
        duration = rng.uniform(8.5, 11.5)
        _ended(timing, duration, 10.0, progress=False)
    return timing


def _first_read(timing: ModelTiming, probe: float | None) -> float:
    plan = ReadPlan(started=0.0, timing=timing, costs=GET_COSTS)
    plan._probe = probe  # as `ModelTiming.probes` hands one task in `probe_every` a probe
    plan.observe(seen("pending", 0, 10.0), 0.0)
    return plan.next_read_at(0.0)


def test_tasks_on_a_fitted_record_do_not_probe_below_its_schedule():
    """Probes read below the schedule so that Turnbull's estimate learns where in its
    gaps tasks end; a fitted normal learns that from the intervals themselves."""
    timing = _fitted_timing()
    record = timing.spread(Hint.estimate(10.0))
    assert record is not None
    assert record.fitted()
    assert _first_read(timing, 0.0) == _first_read(timing, None)


def test_tasks_on_turnbulls_record_still_probe():
    timing = _fitted_timing()
    for spread in timing._spreads.values():
        spread.allow_fit(False)
    assert _first_read(timing, 0.0) < _first_read(timing, None)


def test_a_record_whose_intervals_all_share_a_point_is_not_fitted():
    """A young record's first wave, every task read at 55 % of its estimate and just past
    its end: any normal squeezed into `(0.55, 1.01]` explains every interval alike, and the
    fit would stop wherever EM started (a point at 75 %). Turnbull's, tied to the hint's
    word, says the estimate."""
    spread = _spread([(math.log(0.55), math.log(1.01))] * 40, smooth=True)
    assert not spread.fitted()
    assert spread.quantile(0.5) == pytest.approx(0.0, abs=0.01)
