"""A task that outlives what its record told it, read by read, stops planning on it.

waiting.md, "A record that moves with the clock": with many tasks started together (a
thousand request handlers' waits), the record of the model's recent ends holds durations
just above each running task's age, read after read. Its schedule then said "ends within
a moment" at every read, and each task was read 2 % of its age apart, 12-14 times.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest

from evolink._estimate import BATCH_COSTS, TOP, ReadPlan
from evolink._models import Task, TaskStatus
from evolink._timing import DURATION, Ending, Hint, ModelTiming


def _task(status: str) -> Task:
    return Task.from_dict({"id": "task-unified-1-abc", "status": status, "progress": 0})


def _record_of(durations: list[float]) -> ModelTiming:
    timing = ModelTiming()
    for duration in durations:
        timing.learn(_ending(duration))
    return timing


def _ending(duration: float) -> Ending:
    return Ending(low=duration * 0.98, high=duration, predicted=((DURATION, 1.0),))


def test_on_a_record_that_stays_put_the_task_outlives_it_only_past_its_top():
    rng = random.Random(1)
    timing = _record_of([rng.uniform(2, 6) for _ in range(200)])
    spread = timing.spread(DURATION)
    assert spread is not None
    plan = ReadPlan(started=0.0, timing=timing, costs=BATCH_COSTS)
    seen = 1.0
    while True:
        x = math.log(seen)
        done = spread.cdf(x)
        outlived = plan._outlived(DURATION, spread, seen)
        if done >= TOP:
            break
        assert not outlived, seen
        # The product of each read's step is the record's own survival at the age.
        assert plan._told[DURATION][1] == pytest.approx(1.0 - done, abs=1e-9)
        seen += 0.07


def _cohort_reads(*, outlives: bool) -> list[tuple[float, Hint | None]]:
    """One task's reads among 1,000 started within 0.7 s (as a thousand handlers' waits
    are; no hints), the model's record fed with each end as it comes: its planned reads,
    as (age, the record that planned it)."""
    rng = random.Random(5)
    starts = [(0.7 * rng.random(), rng.uniform(2, 6)) for _ in range(1000)]
    ends = sorted((start + duration, duration) for start, duration in starts)
    timing = ModelTiming()
    plan = ReadPlan(started=0.6, timing=timing, costs=BATCH_COSTS)
    with pytest.MonkeyPatch.context() as patch:
        if not outlives:  # as before: a record is outlived only past its top
            patch.setattr(ReadPlan, "_outlived", lambda *_: False)
        return _read_on(plan, ends)


def _read_on(plan: ReadPlan, ends: list[tuple[float, float]]) -> list[tuple[float, Hint | None]]:
    timing, started, duration = plan.timing, plan.started, 5.0
    assert timing is not None
    plan.observe(_task("pending"), started)
    at = plan.next_read_at(started, TaskStatus.PENDING)
    reads: list[tuple[float, Hint | None]] = []
    ended = 0
    while at < started + duration:
        while ended < len(ends) and ends[ended][0] <= at:
            timing.learn(_ending(ends[ended][1]))
            ended += 1
        reads.append((at - started, plan._on))
        plan.observe(_task("processing"), at)
        at = plan.next_read_at(at, TaskStatus.PROCESSING)
    return reads


def test_on_a_record_that_moves_with_the_clock_the_task_stops_following_it():
    before = _cohort_reads(outlives=False)
    after = _cohort_reads(outlives=True)
    assert all(on == DURATION for _, on in before[4:])  # the only record there is
    # Before: read 2-3 % of the age apart to the end, on the recent ends' record.
    apart = [b - a for (a, _), (b, _) in itertools.pairwise(before) if a > 3.0]
    assert max(apart) < 0.05 * 4.0
    # After: once it outlived the record, a tenth of its age apart (the batch's tail).
    assert len(after) <= len(before) - 10
    apart = [b - a for (a, _), (b, _) in itertools.pairwise(after) if a > 3.7]
    assert apart
    assert min(apart) >= BATCH_COSTS.tail_share * 3.7
