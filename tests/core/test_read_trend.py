"""A progress band's trend: progress that is not linear in time, learned as it is.

A reading of `p` percent extrapolates linearly to `t x 100 / p`. Progress slow at first
and fast at the end (`PowerProgress(3)`) makes that wrong by an amount that moves with
`p`, even within one band; `Spread` fits that trend (`Spread.trend`) from the tasks'
ends, and keeps it only where it is clearly there and narrows the record.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolink._estimate import GET_COSTS, ReadPlan
from evolink._models import Task, TaskStatus
from evolink._timing import TREND_MAX_SLOPE, Hint, ModelTiming, Source, Spread
from evolink.testing import LinearProgress, PowerProgress

TASK_ID = "task-unified-1756817821-4x2tkbzq"


def _seen(status: str, progress: int, estimate: int) -> Task:
    data = {
        "id": TASK_ID,
        "status": status,
        "progress": progress,
        "task_info": {"estimated_time": estimate},
    }
    if status == "completed":
        data["results"] = ["https://r.test/1.png"]
    return Task.from_dict(data)


def _run(
    timing: ModelTiming, progress: PowerProgress | LinearProgress, rng: random.Random
) -> tuple[int, float]:
    """One task of 2-6 s (estimate within 15 %, whole seconds) read as its plan says:
    its reads and how late (a share of its duration) it was seen done."""
    duration = rng.uniform(2, 6)
    estimate = max(1, round(duration * rng.uniform(0.85, 1.15)))
    plan = ReadPlan(started=0.0, timing=timing, costs=GET_COSTS)
    plan.observe(_seen("pending", 0, estimate), 0.0)
    now, status, reads = 0.0, TaskStatus.PENDING, 0
    while True:
        now = plan.next_read_at(now, status)
        reads += 1
        if now >= duration:
            plan.observe(_seen("completed", 100, estimate), now)
            return reads, (now - duration) / duration
        status = TaskStatus.PROCESSING
        plan.observe(_seen("processing", progress.percent(now / duration), estimate), now)


def _learned(progress: PowerProgress | LinearProgress) -> tuple[ModelTiming, float, float]:
    """A model's record after 300 tasks, and the reads and delay of the 200 after."""
    rng, timing = random.Random(8), ModelTiming()
    for _ in range(300):
        _run(timing, progress, rng)
    runs = [_run(timing, progress, rng) for _ in range(200)]
    return timing, sum(r for r, _ in runs) / 200, sum(d for _, d in runs) / 200


def test_progress_slow_at_first_is_read_as_it_runs() -> None:
    """With progress that reads 12 % half-way, each band learns that its linear
    extrapolation errs by `q^(2/3)` (`q` the share read), and a task is read about twice,
    under 2.5 % late on average. Without the trend a band's record is wider than the
    estimate's, and the reads follow the estimate: 2.5 reads, 3 % late."""
    timing, reads, late = _learned(PowerProgress(3))
    for percent in (30, 50):  # the bands most first readings fall in
        band = timing.spread(Hint.progress(percent))
        assert band is not None
        # log(D / D̂) = (2/3) log(q): at a reading 10 % above the band's middle, 2/3 of that.
        assert band.trend(math.log(1.1)) == pytest.approx(2 / 3 * math.log(1.1), rel=0.1)
    assert reads <= 2.3
    assert late < 0.025


def test_linear_progress_learns_no_trend() -> None:
    """Linear progress extrapolates right wherever it is read: no band keeps a trend, even
    the top one, where a reading's time and the read after it move together."""
    timing, reads, late = _learned(LinearProgress())
    for band in range(12):
        spread = timing.spread(Hint(Source.PROGRESS, band))
        if spread is not None:
            assert spread.trend(0.1) == 0.0, band
    assert reads <= 2.3
    assert late < 0.025


def test_a_trend_in_the_reads_alone_is_not_kept() -> None:
    """Every task's band reading was its last before the end (the interval's lower end is
    the reading's own time, so it moves with the covariate), and every end came exactly
    where the reading predicted: the fit is on the upper ends, which show no trend."""
    rng, spread = random.Random(2), Spread(anchored=True)
    for _ in range(120):
        u = rng.uniform(-0.2, 0.2)
        late = rng.uniform(0.005, 0.03)
        spread.add(u - 0.1, late, u)
    assert spread.trend(0.2) == 0.0


def test_a_clear_trend_is_kept_and_narrows_the_record() -> None:
    rng, plain, trended = random.Random(4), Spread(anchored=True), Spread(anchored=True)
    for _ in range(120):
        u = rng.uniform(-0.2, 0.2)
        x = 0.7 * u + rng.uniform(-0.01, 0.01)
        plain.add(x - 0.02, x + 0.01)
        trended.add(x - 0.02, x + 0.01, u)
    assert trended.trend(0.2) == pytest.approx(0.14, abs=0.01)
    assert trended.width() < plain.width() / 4


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-3, 3), st.floats(0.001, 2), st.floats(-3, 3)),
        min_size=1,
        max_size=60,
    ),
    st.floats(-3, 3),
)
def test_a_record_with_a_trend_is_still_a_distribution(
    samples: list[tuple[float, float, float]], u: float
) -> None:
    """Whatever the intervals and covariates: a CDF from 0 to 1, a bounded slope."""
    spread = Spread(anchored=True)
    for low, width, covariate in samples:
        spread.add(low, low + width, covariate)
    assert abs(spread.trend(u)) <= TREND_MAX_SLOPE * abs(u) + 1e-12
    levels = [spread.cdf(x / 4) for x in range(-40, 41)]
    assert levels == sorted(levels)
    assert levels[0] >= 0.0
    assert levels[-1] <= 1.0
    assert spread.cdf(1e9) == 1.0


def test_a_record_whose_sum_rounds_past_one_is_still_a_distribution() -> None:
    """Found by the property above: the running sum of the cells' mass rounded to
    1.0000000000000002 before the last knot, and the CDF fell back to 1.0 after it."""
    spread = Spread(anchored=True)
    for low, width, covariate in [(0.0, 0.5, 1.0), (-2.0, 1.0, 0.0), (-2.0, 0.5, 0.0)]:
        spread.add(low, low + width, covariate)
    levels = [spread.cdf(x / 4) for x in range(-40, 41)]
    assert levels == sorted(levels)
    assert max(levels) <= 1.0
