"""A progress band's record weighs its first read of each task.

docs/explanation/waiting.md, "A progress band's first read": the first read a band's
record plans for a task (after the task's first) weighs on that record's CUSUM where it
gave the read under 5 %; at the threshold a band's record starts again only if most of
the ends held meanwhile are odd to it, from those ends, and alone.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from evolink._estimate import GET_COSTS, ReadPlan
from evolink._models import Task, TaskStatus
from evolink._timing import (
    CHANGE,
    MAX_SAMPLES,
    ODD_BELOW,
    ODD_MIN,
    Ending,
    Hint,
    ModelTiming,
    Source,
    Spread,
)

MODEL = "gpt-image-2"


def _task(progress: int, *, done: bool = False) -> Task:
    status = "completed" if done else "processing"
    return Task.from_dict(
        {"id": "task-unified-1-abc", "status": status, "model": MODEL, "progress": progress}
    )


def _wait(timing: ModelTiming, start: float, duration: float, share: float) -> tuple[float, int]:
    """One task of `duration` s whose progress reports `share` of the truth, read as the
    engine plans from `start` until it is seen done: its delay and its reads."""
    plan = ReadPlan(started=start, timing=timing, costs=GET_COSTS)
    plan.observe(_task(0), start)  # the create's answer
    now, reads = start, 0
    while True:
        now = plan.next_read_at(now, TaskStatus.PROCESSING)
        reads += 1
        age = now - start
        if age >= duration:
            plan.observe(_task(100, done=True), now)
            return age - duration, reads
        plan.observe(_task(math.floor(100 * share * age / duration)), now)


def _stream(timing: ModelTiming, tasks: list[tuple[float, float]]) -> list[float]:
    """The tasks one after another, each created as the one before is seen done: delays."""
    now, delays = 0.0, []
    for duration, share in tasks:
        delay, _ = _wait(timing, now, duration, share)
        delays.append(delay)
        now += duration + delay
    return delays


def _honest(rng: random.Random, n: int, low: float = 2.0, high: float = 6.0) -> list:
    return [(rng.uniform(low, high), 1.0) for _ in range(n)]


def _unweighed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine as it was: no band weighs any read but a task's first."""
    monkeypatch.setattr(ReadPlan, "_judged_by", lambda *_: None)


@pytest.mark.parametrize("weighed", [True, False])
def test_a_model_whose_progress_comes_to_mean_half_is_seen_to_change(
    weighed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 honest tasks of 2-6 s, then the model runs 3x slower and its progress reports
    half the truth (no estimates), one task at a time. Weighed, the bands' records start
    again within the first 50 tasks after the change, and the next 50 are seen within a
    1 s loop's delay (0.18 s late on average); unweighed, 1.19 s (the records keep the
    old word until new ends push it out, the reads meanwhile up to the age apart)."""
    if not weighed:
        _unweighed(monkeypatch)
    rng = random.Random(7)
    timing = ModelTiming()
    _stream(timing, _honest(rng, 300))
    assert timing.changes == 0
    after = _stream(timing, [(rng.uniform(6.0, 18.0), 0.5) for _ in range(200)])
    late = statistics.fmean(after[50:100])
    if weighed:
        assert any(hint.source is Source.PROGRESS for hint in timing.news()[0])
        assert late < 0.5, f"{late:.2f} s late on average after the change"
    else:
        assert not any(hint.source is Source.PROGRESS for hint in timing.news()[0])
        assert late > 1.0, f"{late:.2f} s: the unweighed engine was not slow here"


@pytest.mark.parametrize(
    ("low", "high", "n"), [(2.0, 6.0, 1000), (60.0, 120.0, 300), (0.5, 40.0, 600)]
)
def test_honest_progress_starts_no_band_again(low: float, high: float, n: int) -> None:
    """Linear progress that tells the truth, tasks of seconds or minutes: the band's reads
    come at the end it predicts, where it gives a done more than 5 %, so none weighs, and
    no record starts again."""
    timing = ModelTiming()
    _stream(timing, _honest(random.Random(11), n, low, high))
    assert timing.changes == 0
    assert timing.news()[0] == frozenset()


def _band_record(ends: int = MAX_SAMPLES) -> Spread:
    """A progress band's record of honest ends: within 2 % of the band's word."""
    spread = Spread(anchored=True, minorities=True)
    rng = random.Random(5)
    for _ in range(ends):
        x = rng.uniform(-0.02, 0.02)
        spread.add(x - 0.01, x)
    return spread


def _odd_read(spread: Spread) -> float:
    """Where the record gives a done nothing: a task found done there is odd to it."""
    x = spread.quantile(0.0) - 0.5
    assert spread.cdf(x) < ODD_BELOW
    return x


def test_a_minority_the_band_had_not_met_is_taken_in_not_a_change() -> None:
    """Odd dones push the sum past the threshold, but most of the ends held meanwhile are
    honest ones: the record takes them all in (the liars' ends among them) and starts its
    sum afresh, instead of starting again."""
    spread = _band_record()
    x = _odd_read(spread)
    held = 0
    for _ in range(50):
        if spread._evidence + math.log(0.99 / 0.01) >= CHANGE:
            break
        spread.weigh(x, done=True)
        spread.add(-0.9, -0.7)  # the liar's own end: odd
        spread.add(-0.02, 0.0)  # honest ends between: not odd
        spread.add(-0.01, 0.01)
        held += 3
    before = len(spread)
    spread.weigh(x, done=True)
    assert spread.changes == 0
    assert spread._evidence == 0.0
    assert len(spread) == min(MAX_SAMPLES, before + held)
    assert any(high <= -0.7 for _, high, _ in spread._intervals)  # the liars' ends are in


def test_a_change_starts_the_band_again_from_the_ends_held_meanwhile() -> None:
    """Most held ends are odd: the record starts again, from those ends only (not empty:
    they are of the model as it is now)."""
    spread = _band_record()
    x = _odd_read(spread)
    held = []
    for _ in range(50):
        spread.weigh(x, done=True)
        if spread.changes:
            break
        end = -0.69 + 0.01 * len(held)
        spread.add(end - 0.3, end)
        held.append(end)
    assert spread.changes == 1
    assert len(held) >= ODD_MIN  # it waited for enough ends to judge
    assert len(spread) == len(held)
    assert spread.quantile(0.99) <= max(held) + 1e-9  # the old honest ends are gone


def _change(timing: ModelTiming, band: Hint) -> None:
    """Odd dones on `band`'s record, each task's own end odd to it too, until it starts
    again (at most a few dozen: a CUSUM of 4.6 a read)."""
    spread = timing.spread(band)
    assert spread is not None
    x = spread.quantile(0.0) - 0.7
    for _ in range(50):
        timing.weigh(band, x, done=True)
        if timing.changes:
            return
        end = 3.0 * math.exp(x)
        readings = ((band, 3.0, 0.0),)
        timing.learn(Ending(low=end * 0.5, high=end, predicted=(), readings=readings))
    raise AssertionError("the band's record never started again")


def _readings_timing() -> tuple[ModelTiming, Hint, Hint]:
    """A model whose tasks were read in two progress bands, honest in both."""
    timing = ModelTiming()
    low, high = Hint.progress(10), Hint.progress(50)
    rng = random.Random(3)
    for _ in range(MAX_SAMPLES):
        end = rng.uniform(2.0, 6.0)
        readings = ((low, end, 0.0), (high, end, 0.0))
        timing.learn(
            Ending(
                low=end - 0.05, high=end, predicted=((Hint.estimate(1.0), 1.0),), readings=readings
            )
        )
    return timing, low, high


def test_a_band_starts_again_alone() -> None:
    """A band's change is its own: the other bands keep their records."""
    timing, low, high = _readings_timing()
    _change(timing, low)
    restarted, _ = timing.news()
    assert restarted == {low}
    assert timing.spread(high) is not None
    assert len(timing._spreads[high]) == MAX_SAMPLES
