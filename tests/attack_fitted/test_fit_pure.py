"""`_censored_normal` alone: the maximum-likelihood fit of a normal to censored values,
its record (knots and CDF as a `Spread` keeps them) and its scoring."""

from __future__ import annotations

import itertools
import math
import random
from statistics import NormalDist

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evolink import _censored_normal as cn
from evolink._timing import PLAN_LEVELS, Schedule, _cdf_on


def _censor(values: list[float], points: list[float]) -> list[tuple[float, float]]:
    """Each value known only between the two shared read points around it."""
    out = []
    for v in values:
        low = max(p for p in points if p < v)
        high = min(p for p in points if p >= v)
        out.append((low, high))
    return out


def _grid_best(intervals: list[tuple[float, float]]) -> float:
    return max(
        cn.log_likelihood(NormalDist(m / 100, s / 200).cdf, intervals)
        for m in range(-60, 61, 2)
        for s in range(2, 200, 3)
    )


def test_exact_values_give_the_sample_mean_and_sd() -> None:
    rng = random.Random(1)
    values = [rng.gauss(0.3, 0.2) for _ in range(500)]
    fit = cn.fit([(v, v) for v in values])
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    assert fit.mean == pytest.approx(mean, abs=1e-9)
    assert fit.stdev == pytest.approx(sd, rel=1e-6)


@pytest.mark.parametrize(
    ("points", "truth"),
    [
        ([-2.3, -0.3, 0.0, 0.2, 0.4, 1.5], NormalDist(0.05, 0.15)),
        ([-2.3, -0.05, 0.05, 1.5], NormalDist(0.1, 0.2)),
        ([-2.3, -0.6, 0.01, 1.5], NormalDist(-0.1, 0.1)),
    ],
)
def test_recovers_a_normal_censored_at_shared_read_points(
    points: list[float], truth: NormalDist
) -> None:
    """A few shared read points (as a band's schedule makes them): the fit lands on the
    truth within sampling error, and its likelihood is (within 1 nat over 2,000
    intervals) the best a fine grid of normals finds: it is the MLE, not a guess."""
    rng = random.Random(5)
    values = [min(max(truth.inv_cdf(rng.random()), -2.2), 1.4) for _ in range(2000)]
    intervals = _censor(values, points)
    fit = cn.fit(intervals)
    assert fit.mean == pytest.approx(truth.mean, abs=0.05)
    assert fit.stdev == pytest.approx(truth.stdev, rel=0.4)
    # (A cold fit stops at `ROUNDS`: on the third case 0.8 nats short of the MLE over
    # 2,000 intervals, -0.145 against -0.124; rebuilds warm-start, so it converges.)
    assert cn.log_likelihood(fit.cdf, intervals) >= _grid_best(intervals) - 1.0


def test_one_interval_and_identical_intervals_are_finite() -> None:
    for intervals in ([(0.1, 0.5)], [(-0.6, 0.01)] * 40, [(0.0, 0.0)] * 3):
        fit = cn.fit(intervals)
        assert math.isfinite(fit.mean)
        assert fit.stdev >= cn.MIN_SIGMA - 1e-12


def test_warm_start_far_from_the_intervals_still_finds_them() -> None:
    """A rebuild warm-starts from the last fit: after the model changed 10x (log 2.3,
    hundreds of the old fit's sigmas away) the fit must still move onto the new ends."""
    rng = random.Random(3)
    values = [rng.gauss(-2.3, 0.1) for _ in range(160)]
    intervals = _censor(values, [-5.0, -2.4, -2.3, -2.2, 0.0])
    fit = cn.fit(intervals, NormalDist(0.0, 0.004))
    assert fit.mean == pytest.approx(-2.3, abs=0.05)
    assert 0.03 < fit.stdev < 0.3


_finite = st.floats(min_value=-30, max_value=30, allow_nan=False, allow_infinity=False)


@st.composite
def _intervals(draw: st.DrawFn) -> list[tuple[float, float]]:
    pairs = draw(st.lists(st.tuples(_finite, st.floats(0, 5)), min_size=1, max_size=60))
    return [(a, a + w) for a, w in pairs]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_intervals(), st.one_of(st.none(), st.tuples(_finite, st.floats(0.0001, 10))))
def test_any_bounded_intervals_give_a_usable_record(
    intervals: list[tuple[float, float]], start: tuple[float, float] | None
) -> None:
    """Whatever (finite, bounded) intervals and warm start: a finite fit, a record whose
    knots strictly increase, a CDF in [0, 1] that does not fall, and a schedule that
    solves to finite numbers on it."""
    normal = cn.fit(intervals, None if start is None else NormalDist(*start))
    assert math.isfinite(normal.mean)
    assert math.isfinite(normal.stdev)
    assert normal.stdev >= cn.MIN_SIGMA - 1e-12
    knots, cdf = cn.record(normal)
    assert all(b > a for a, b in itertools.pairwise(knots))
    assert cdf[0] == 0.0
    assert cdf[-1] == 1.0
    assert all(b >= a for a, b in itertools.pairwise(cdf))
    ll = cn.log_likelihood(normal.cdf, intervals)
    assert math.isfinite(ll)
    assert ll <= 0.0
    points = []
    for level in PLAN_LEVELS:
        # the record's quantile at each level, by inverting the piecewise CDF
        i = min(max(next(k for k, c in enumerate(cdf) if c >= level) - 1, 0), len(knots) - 2)
        step = cdf[i + 1] - cdf[i]
        share = 0.0 if step <= 0 else (level - cdf[i]) / step
        points.append(knots[i] + share * (knots[i + 1] - knots[i]))
        assert 0.0 <= _cdf_on(knots, cdf, points[-1]) <= 1.0
    schedule = Schedule.solve(points, 0.008, PLAN_LEVELS)
    assert math.isfinite(schedule.reads())
    assert math.isfinite(schedule.delay())


def test_fit_stops_within_its_rounds() -> None:
    """An operation count, not a timing: one `fit` makes at most `ROUNDS` passes over the
    intervals (a rebuild fits three times: each half, then the whole)."""
    calls = 0
    original = cn._moments

    def counting(*args: object) -> tuple[float, float]:
        nonlocal calls
        calls += 1
        return original(*args)  # type: ignore[arg-type]

    cn._moments = counting  # type: ignore[assignment]
    try:
        rng = random.Random(9)
        values = [rng.gauss(0.0, 0.3) for _ in range(160)]
        intervals = _censor(values, [-3.0, -0.5, -0.1, 0.2, 3.0])
        first = cn.fit(intervals)
        cold = calls
        calls = 0
        cn.fit(intervals, first)
        warm = calls
    finally:
        cn._moments = original  # type: ignore[assignment]
    assert cold <= cn.ROUNDS
    assert warm <= 5  # warm-started from its own fit: settled at once
