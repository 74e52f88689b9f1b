"""A record that has seen only a cohort's fastest is passed over (`_recent_tasks`).

waiting.md, "A record that moves with the clock": with a thousand waits started together,
the model's last ends are its fastest tasks, and a task still running sat in that record's
body read after read. Of the tasks that reached the record's body, most still run where
the record foresaw none would: it is passed over for the next narrowest.
"""

from __future__ import annotations

import gc
import math
import random

import pytest

from evolink import _estimate
from evolink._estimate import BATCH_COSTS, GET_COSTS, ReadCosts, ReadPlan
from evolink._models import Task, TaskStatus
from evolink._recent_tasks import Recent
from evolink._timing import DURATION, ESTIMATE, Ending, Hint, ModelTiming


def _after(tail: float):  # a record's survival: uniform durations on [1, tail] (log)
    return lambda y: min(1.0, max(0.0, (tail - math.exp(y)) / (tail - 1.0)))


class _Task:
    def __init__(self, started: float) -> None:
        self.started, self.estimated_time = started, None


def _recent(starts: list[float]) -> tuple[Recent[str], list[_Task]]:
    recent: Recent[str] = Recent(lambda _key, _runner: 1.0)
    tasks = [_Task(start) for start in starts]
    for task in tasks:
        task.number = recent.enter(task)  # type: ignore[attr-defined]
    return recent, tasks


def test_a_steady_stream_runs_as_its_record_foresees():
    """Tasks of 1-5 s started every 0.05 s, ended as they do: at 100 s, those that
    reached 2 s and still run are as many as the true durations foresee."""
    rng = random.Random(2)
    starts = [0.05 * k for k in range(2000)]
    durations = [rng.uniform(1.0, 5.0) for _ in starts]
    recent, tasks = _recent(starts)
    for task, duration in zip(tasks, durations, strict=True):
        if task.started + duration <= 100.0:
            recent.end(task.number, duration, {"d": 1.0})  # type: ignore[attr-defined]
    share = recent.unforeseen("d", math.log(2.0), math.log(7.0), 100.0, _after(5.0))
    assert abs(share) < 0.1


def test_a_cohort_runs_past_a_record_of_its_fastest():
    """1,000 started within 0.7 s, the fastest fifth ended by 2.5 s: a record of those
    foresees none running past 2.5 s; most are."""
    rng = random.Random(3)
    recent, tasks = _recent([0.7 * rng.random() for _ in range(1000)])
    for task in tasks[:200]:
        recent.end(task.number, 2.5 - task.started, {"d": 1.0})  # type: ignore[attr-defined]
    share = recent.unforeseen("d", math.log(2.0), math.log(3.3), 3.0, _after(2.5))
    assert share > 0.7
    # The true durations (1-7 s, say) foresee them running: no gap.
    assert recent.unforeseen("d", math.log(2.0), math.log(9.0), 3.0, _after(7.0)) < 0.2


def test_tasks_far_past_the_record_are_no_cohort():
    """Stuck tasks, far older than any the record holds, are left out (`cap`)."""
    recent, tasks = _recent([0.0] * 50 + [90.0 + 0.01 * k for k in range(100)])
    for task in tasks[50:]:
        recent.end(task.number, 3.0, {"d": 1.0})  # type: ignore[attr-defined]
    assert recent.unforeseen("d", math.log(2.0), math.log(6.0), 100.0, _after(4.0)) == 0.0


def _task(status: str) -> Task:
    return Task.from_dict({"id": "task-unified-1-abc", "status": status, "progress": 0})


def _ending(duration: float, estimate: float, plan: ReadPlan) -> Ending:
    predicted = ((DURATION, 1.0), (ESTIMATE, estimate), (Hint.estimate(estimate), estimate))
    return Ending(low=0.98 * duration, high=duration, predicted=predicted, task=plan._number)


def _cohort_reads(costs: ReadCosts, *, gate: bool) -> list[tuple[float, Hint | None]]:
    """The reads of one task of 5 s among 1,000 started within 0.7 s with honest
    estimates and no progress (a thousand handlers' waits), the others ending as they
    do: (age, the record that planned the read)."""
    rng = random.Random(5)
    timing = ModelTiming()
    plans, ends = [], []
    for k in range(1000):
        start, duration = 0.7 * rng.random(), rng.uniform(2, 6)
        if k == 500:
            start, duration = 0.6, 5.0
        estimate = float(max(1, round(duration * rng.uniform(0.87, 1.15))))
        plan = ReadPlan(started=start, estimated_time=estimate, timing=timing, costs=costs)
        plans.append(plan)
        ends.append((start + duration, duration, estimate, plan))
    ends.sort(key=lambda end: end[0])
    me = plans[500]
    with pytest.MonkeyPatch.context() as patch:
        if not gate:
            patch.setattr(_estimate, "UNFORESEEN", math.inf)
        me.observe(_task("pending"), me.started)
        at = me.next_read_at(me.started, TaskStatus.PENDING)
        reads: list[tuple[float, Hint | None]] = []
        ended = 0
        while at < me.started + 5.0:
            while ended < len(ends) and ends[ended][0] <= at:
                _, duration, estimate, plan = ends[ended]
                if plan is not me:
                    timing.learn(_ending(duration, estimate, plan))
                ended += 1
            reads.append((at - me.started, me._on))
            me.observe(_task("processing"), at)
            at = me.next_read_at(at, TaskStatus.PROCESSING)
    return reads


@pytest.mark.parametrize("costs", [BATCH_COSTS, GET_COSTS], ids=["batch", "get"])
def test_a_cohort_s_first_ends_do_not_plan_the_rest(costs: ReadCosts):
    before = _cohort_reads(costs, gate=False)
    after = _cohort_reads(costs, gate=True)
    # Before: the raw durations' record (the cohort's fastest) planned reads a few
    # hundredths of a second apart, from under 3 s on.
    assert sum(on == DURATION for _, on in before) >= 8
    # After: it is passed over while most of the cohort runs; the estimates plan.
    assert all(on != DURATION for age, on in after if age < 4.0)
    assert len(after) * 2 <= len(before)


def test_a_plan_dropped_unended_leaves_the_running_tasks():
    timing = ModelTiming()
    kept = ReadPlan(started=0.0, timing=timing)
    ReadPlan(started=0.0, timing=timing)  # a wait given up: nothing holds its plan
    gc.collect()
    assert list(timing._recent._running.values()) == [kept]
    timing.learn(Ending(low=1.0, high=2.0, predicted=((DURATION, 1.0),), task=kept._number))
    assert not timing._recent._running
