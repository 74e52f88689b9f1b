"""A task holds its estimate's record against a progress band's that is not much narrower,
and the estimates' records may be fitted where tasks are seen done on them.

waiting.md, "Holding the estimate's record": each record's schedule spends its read budget
from its own start, so a task that moves to another record starts spending again; on
progress in steps of 25 % the band of a reading of 75 is about two thirds of the
estimates' width, and moving to it cost reads for a few milliseconds of delay.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest

from evolink import AsyncEvolink
from evolink._estimate import GET_COSTS
from evolink._timing import (
    DURATION,
    ESTIMATE,
    MIN_SAMPLES,
    SWITCH_WIDTH,
    Ending,
    Hint,
    ModelTiming,
    Source,
)
from evolink.testing import Estimates, LinearProgress, ScaledClock, Simulator, Uniform

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from plans import simulate

KEY = "sk-evo-" + "h" * 40
BAND = Hint.progress(75)
ESTIMATE_BAND = Hint.estimate(4.0)


def _timing(
    band_width: float, estimate_width: float, *, planned_on: Source | None = None
) -> ModelTiming:
    """A model whose estimate's records and the 75 % band's hold ends spread over about
    the given widths (log space, uniform: the 10-90 % range is 0.8 of it)."""
    timing = ModelTiming()
    rng = random.Random(3)
    for _ in range(4 * MIN_SAMPLES):
        duration = 4.0 * math.exp(estimate_width * (rng.random() - 0.5))
        band_predicted = duration * math.exp(band_width * (rng.random() - 0.5))
        timing.learn(
            Ending(
                low=duration * 0.999,
                high=duration * 1.001,
                predicted=((DURATION, 1.0), (ESTIMATE, 4.0), (ESTIMATE_BAND, 4.0)),
                readings=((BAND, band_predicted, 0.0),),
                planned_on=planned_on,
            )
        )
    return timing


def _widths(timing: ModelTiming) -> tuple[float, float]:
    band, estimate = timing.spread(BAND), timing.spread(ESTIMATE_BAND)
    assert band is not None
    assert estimate is not None
    return band.width(), estimate.width()


def test_a_task_on_the_estimates_record_holds_it_against_a_band_not_under_half_its_width():
    timing = _timing(band_width=0.2, estimate_width=0.3)
    band, estimate = _widths(timing)
    assert SWITCH_WIDTH * estimate < band < estimate  # the band is the narrowest
    hints = [ESTIMATE, ESTIMATE_BAND, BAND]
    fresh = timing.best(hints)
    assert fresh is not None
    assert fresh[0] == BAND  # a task on no record takes the narrowest
    held = timing.best(hints, ESTIMATE_BAND)
    assert held is not None
    assert held[0] == ESTIMATE_BAND


def test_a_band_under_half_the_estimates_width_takes_the_task_over():
    timing = _timing(band_width=0.05, estimate_width=0.3)
    band, estimate = _widths(timing)
    assert band < SWITCH_WIDTH * estimate
    moved = timing.best([ESTIMATE, ESTIMATE_BAND, BAND], ESTIMATE_BAND)
    assert moved is not None
    assert moved[0] == BAND


def test_only_a_move_from_an_estimates_record_to_a_band_is_held():
    """Between the estimates' records (all, or the band of its size), from the raw
    durations', or once the record followed is no longer among the task's hints, the
    narrowest stands."""
    timing = _timing(band_width=0.2, estimate_width=0.3)
    narrowest = timing.best([ESTIMATE, ESTIMATE_BAND, BAND])
    assert narrowest is not None
    for following in (BAND, Hint.progress(50)):
        chosen = timing.best([ESTIMATE, ESTIMATE_BAND, BAND], following)
        assert chosen is not None
        assert chosen[0] == narrowest[0]
    # The estimates' records between themselves: the narrower one.
    pooled = timing.best([DURATION, ESTIMATE, ESTIMATE_BAND], ESTIMATE)
    plain = timing.best([DURATION, ESTIMATE, ESTIMATE_BAND])
    assert pooled is not None
    assert plain is not None
    assert pooled[0] == plain[0]
    # A record followed but no longer among the hints (the task's estimate changed).
    gone = timing.best([ESTIMATE, BAND], ESTIMATE_BAND)
    assert gone is not None
    assert gone[0] == BAND


@pytest.mark.parametrize(
    ("planned_on", "fitted"),
    [(Source.ESTIMATE, True), (Source.PROGRESS, False), (None, False)],
)
def test_the_estimates_records_are_fitted_where_tasks_are_seen_done_on_them(planned_on, fitted):
    """A model showing progress: where its tasks are seen done on reads the estimates'
    records planned, those records plan the reads around the end, and may be fitted;
    where the bands' records plan them, or only the hints did (no record yet), not."""
    timing = _timing(band_width=0.25, estimate_width=0.3, planned_on=planned_on)
    assert timing.shows_progress()
    assert timing.ends_on_estimates() is fitted
    for hint in (ESTIMATE, ESTIMATE_BAND):
        spread = timing.spread(hint)
        assert spread is not None
        assert spread.smooth is fitted


def test_the_gate_follows_where_recent_tasks_end():
    """Half or more of the last tasks seen done on a record's read: the gate opens and
    closes as that share moves (a model whose progress turns useful leaves the fit)."""
    timing = _timing(band_width=0.25, estimate_width=0.3, planned_on=Source.ESTIMATE)
    assert timing.ends_on_estimates()
    for _ in range(200):
        timing.learn(
            Ending(
                low=3.99,
                high=4.01,
                predicted=((DURATION, 1.0), (ESTIMATE, 4.0), (ESTIMATE_BAND, 4.0)),
                readings=((BAND, 4.0, 0.0),),
                planned_on=Source.PROGRESS,
            )
        )
    assert not timing.ends_on_estimates()
    spread = timing.spread(ESTIMATE_BAND)
    assert spread is not None
    assert not spread.smooth


def test_coarse_steps_spend_fewer_reads_for_the_same_wall():
    """Plan simulator, six seeds, GETs: progress in steps of 25 % with honest estimates,
    the 1 s loop's promise kept, at most 2.5 reads a task (2.80 before the hold)."""
    runs = [simulate("coarse-steps", GET_COSTS, seed=seed) for seed in range(1, 7)]
    ratio = sum(r["ratio"] for r in runs) / len(runs)
    reads = sum(r["reads_per_task"] for r in runs) / len(runs)
    assert reads < 2.55
    assert ratio < 1.05


async def _first_gets(batch_endpoint: bool) -> list[float]:
    """Each task's first read by GET, as a share of its estimate after its create."""
    clock = ScaledClock(10)  # tasks of 2-12 s, run ten times as fast
    sim = Simulator(
        clock=clock,
        seed=11,
        durations=Uniform(2, 12),
        progress=LinearProgress(),
        estimates=Estimates(),
        batch_endpoint=batch_endpoint,
    )
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        await client.images.generate_many(
            [f"p{i}" for i in range(30)], max_in_flight=30, batch_reads=True
        )
    first: dict[str, float] = {}
    for request in sim.requests:
        if request.method == "GET" and request.path.startswith("/v1/tasks/"):
            first.setdefault(request.path.rsplit("/", 1)[-1], request.time)
    shares = []
    for task in sim.tasks.values():
        if task.id in first and task.estimated_time:
            shares.append((first[task.id] - task.created) / task.estimated_time)
    return shares


@pytest.mark.anyio
async def test_a_refused_batch_read_does_not_read_its_ride_alongs_early():
    """Against a server without the batch endpoint, the first batch request (refused)
    carried tasks due later: each is read by GET at its own time (about 55 % of its
    estimate), not with the first due (a task of 12 s read at a second)."""
    shares = await _first_gets(batch_endpoint=False)
    assert len(shares) == 30
    assert min(shares) > 0.45, sorted(shares)[:5]
