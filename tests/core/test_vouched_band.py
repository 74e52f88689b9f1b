"""A progress band whose record is narrow is trusted past the age bound (`VOUCHED_WIDTH`).

Without it, a task first read at a quarter of its duration was read again at half of it
(within its age), then at its end: a read that the band's record, which had predicted
every end within a percent or two, did not need (estimates missing: 2.53 reads a task).
"""

from __future__ import annotations

import random

from evolink._estimate import AGE_SHARE, GET_COSTS, ReadPlan
from evolink._models import Task, TaskStatus
from evolink._timing import Hint, ModelTiming


def _task(status: str, progress: int) -> Task:
    return Task.from_dict({"id": "task-unified-1-abc", "status": status, "progress": progress})


def _learned(spread_of_progress: float) -> ModelTiming:
    """A model whose tasks, read at a quarter of their duration, showed progress that
    predicted their end within `spread_of_progress` (a share of it)."""
    rng = random.Random(3)
    timing = ModelTiming()
    for _ in range(60):
        duration = rng.uniform(8, 12)
        actual = duration * (1 + rng.uniform(-spread_of_progress, spread_of_progress))
        plan = ReadPlan(started=0.0, timing=timing, costs=GET_COSTS)
        plan.observe(_task("pending", 0), 0.0)
        plan.observe(_task("processing", 25), 0.25 * duration)
        plan.observe(_task("processing", 97), actual * 0.98)
        plan.observe(_task("completed", 100), actual * 1.01)
    return timing


def _next_wait(timing: ModelTiming) -> tuple[float, ReadPlan]:
    plan = ReadPlan(started=0.0, timing=timing, costs=GET_COSTS)
    plan.observe(_task("pending", 0), 0.0)
    plan.observe(_task("processing", 25), 2.5)  # a task of about 10 s
    return plan.next_read_at(2.5, TaskStatus.PROCESSING) - 2.5, plan


def test_a_narrow_band_plans_the_next_read_at_the_end_it_predicts():
    timing = _learned(0.01)
    spread = timing.spread(Hint.progress(25))
    assert spread is not None
    assert spread.width() < 0.1
    wait, plan = _next_wait(timing)
    assert 11.5 <= plan.vouched_until() <= 13.0  # the model's longest task, about 12 s
    assert wait > AGE_SHARE * 2.5  # past the age bound: at the end, about 10 s
    assert 9.5 <= 2.5 + wait <= 10.6


def test_a_wide_band_is_held_to_the_age_bound():
    timing = _learned(0.4)
    wait, plan = _next_wait(timing)
    assert plan.vouched_until() == 0.0
    assert wait <= AGE_SHARE * 2.5 + 1e-9


def test_stalled_progress_is_not_trusted_whatever_the_record():
    timing = _learned(0.01)
    plan = ReadPlan(started=0.0, timing=timing, costs=GET_COSTS)
    plan.observe(_task("pending", 0), 0.0)
    plan.observe(_task("processing", 25), 2.5)
    plan.next_read_at(2.5, TaskStatus.PROCESSING)
    plan.observe(_task("processing", 25), 5.0)  # no further: stalled
    wait = plan.next_read_at(5.0, TaskStatus.PROCESSING) - 5.0
    assert plan.vouched_until() == 0.0
    assert wait <= AGE_SHARE * 5.0 + 1e-9


def test_a_reading_off_the_curve_is_read_no_later_than_the_longest_task():
    """A reading far behind (progress gone back): the narrow band's record puts the end
    at 40 s, the model's tasks have all ended by about 12 s."""
    timing = _learned(0.01)
    plan = ReadPlan(started=0.0, timing=timing, costs=GET_COSTS)
    plan.observe(_task("pending", 0), 0.0)
    plan.observe(_task("processing", 25), 10.0)
    wait = plan.next_read_at(10.0, TaskStatus.PROCESSING) - 10.0
    assert 10.0 + wait <= max(2 * 10.0, plan.vouched_until()) + 1e-9
    assert 10.0 + wait <= 20.0 + 1e-9
