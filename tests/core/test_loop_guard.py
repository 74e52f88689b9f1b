"""Where a hint says where to read, the learned schedule is never slower than a 1 s loop.

waiting.md, "Never slower than a 1 s loop": a read budget is the least delay for so many
reads, and on tasks of minutes that delay is seconds where a loop's is half of one. Where
the record says so, the schedule reads more (never more often than the loop, nor more
than three times the budget), and near a hinted end its reads may come half a second
apart (under 2 % of an age past 25 s).
"""

from __future__ import annotations

import math
import random

import pytest
from test_read_policy import seen as _seen

from evolink._estimate import (
    GET_COSTS,
    LOOP_DELAY,
    LOOP_READS,
    LOOP_STEP,
    NEAR_FLOOR,
    ReadPlan,
)
from evolink._timing import DURATION, PLAN_LEVELS, Ending, Hint, ModelTiming, Schedule, Spread


def _record(rng: random.Random, low: float, high: float, n: int = 160) -> Spread:
    spread = Spread()
    for _ in range(n):
        x = math.log(rng.uniform(low, high))
        spread.add(x - 0.005, x + 0.005)
    return spread


def _sampled_delay(schedule: Schedule, spread: Spread, rng: random.Random) -> float:
    """The mean delay of the schedule's reads for ends drawn from the record itself."""
    total, n = 0.0, 4000
    for _ in range(n):
        end = spread.quantile(rng.random())
        x, share, moment = -math.inf, 0.0, 0.0
        while True:
            at = schedule.next_read(x, share, moment)
            if at >= end or at <= x:
                break
            x, share, moment = at, spread.cdf(at), schedule.moment(at)
        total += math.exp(max(at, end)) - math.exp(end)
    return total / n


def test_a_schedule_knows_its_delay() -> None:
    """`Schedule.delay` is what following it costs ends drawn from its record."""
    rng = random.Random(5)
    spread = _record(rng, 60.0, 120.0)
    points = [spread.quantile(level) for level in PLAN_LEVELS]
    schedule = Schedule.solve(points, 0.5, PLAN_LEVELS)
    assert schedule.delay() == pytest.approx(_sampled_delay(schedule, spread, rng), rel=0.1)


def test_a_wide_record_of_long_tasks_reads_more_to_stay_within_the_loop() -> None:
    """Tasks of 90-100 s (`D̂` = 1 s): the budget's schedule sees them done seconds late;
    held to the loop, within its 0.4 s, at more reads but fewer than the loop's (about
    95). On 60-120 s, as close as the record's 57 points allow (a second apart)."""
    spread = _record(random.Random(1), 90.0, 100.0)
    budget = spread.schedule(GET_COSTS.read_cost, GET_COSTS.reads, 0.5)
    assert budget.delay() > 1.0
    most = LOOP_READS * 100.0
    held = spread.within_loop(budget, LOOP_DELAY, LOOP_STEP, most)
    assert held.delay() <= LOOP_DELAY
    assert budget.reads() < held.reads() < spread.schedule(1e-9).moments[-1] + 0.5
    wide = _record(random.Random(1), 60.0, 120.0)
    budget = wide.schedule(GET_COSTS.read_cost, GET_COSTS.reads, 0.5)
    assert wide.within_loop(budget, LOOP_DELAY, LOOP_STEP, most).delay() < budget.delay() / 4
    # Capped: at most `most` reads, even where the loop's delay is then out of reach.
    capped = wide.within_loop(budget, LOOP_DELAY, LOOP_STEP, LOOP_READS * GET_COSTS.reads)
    assert budget.reads() < capped.reads() <= LOOP_READS * GET_COSTS.reads
    assert LOOP_DELAY < capped.delay() < budget.delay()


def test_a_schedule_already_within_the_loop_is_kept() -> None:
    """Tasks of 3.6-4.4 s: the budget's schedule is within the loop's delay; unchanged."""
    spread = _record(random.Random(2), 3.6, 4.4)
    budget = spread.schedule(GET_COSTS.read_cost, GET_COSTS.reads, 0.5)
    assert budget.delay() <= LOOP_DELAY
    assert spread.within_loop(budget, LOOP_DELAY, LOOP_STEP, 7.0) is budget


def _long_progress_timing(rng: random.Random) -> ModelTiming:
    """A model of 60-120 s tasks with linear progress, each read at 30 s, 60 s, and
    then once more just after its end: the 40-59 % and 80-99 % bands' records."""
    timing = ModelTiming()
    for _ in range(200):
        duration = rng.uniform(60.0, 120.0)
        readings = []
        for age in (30.0, 60.0):
            percent = int(100 * age / duration)
            predicted = age * 100.0 / (percent + 0.5)
            for hint in Hint.progress_all(percent):
                readings.append((hint, predicted, hint.covariate(percent)))
        timing.learn(
            Ending(
                low=duration - 0.3,
                high=duration + 0.3,
                predicted=((DURATION, 1.0),),
                readings=tuple(readings),
            )
        )
    return timing


def test_a_long_task_near_its_hinted_end_is_read_within_the_loops_delay() -> None:
    """A 100 s task read at 98 % at 98 s: its end is within about a second. The age floor
    (2 %: 2 s) would let the next read come no sooner than 100 s, and the one after at
    102 s; near a hinted end the reads may come half a second apart."""
    timing = _long_progress_timing(random.Random(3))
    plan = ReadPlan(started=0.0, timing=timing, costs=GET_COSTS)
    plan.observe(_seen("pending"), 0.0)
    plan.observe(_seen("processing", 30), 30.0)
    plan.observe(_seen("processing", 60), 60.0)
    plan.observe(_seen("processing", 98), 98.0)
    first = plan.next_read_at(98.0, _seen("processing").status)
    assert 98.0 + NEAR_FLOOR - 1e-9 <= first < 98.0 + 0.02 * 98.0
    plan.observe(_seen("processing", 99), first)
    second = plan.next_read_at(first, _seen("processing").status)
    assert first + NEAR_FLOOR - 1e-9 <= second < first + 0.02 * first


def test_the_raw_durations_record_keeps_its_budget() -> None:
    """With no hint to aim by (a blind server), the loop's delay costs about the loop's
    reads: the schedule stays at its budget (waiting.md: blind is out of reach)."""
    rng = random.Random(4)
    timing = ModelTiming()
    for _ in range(200):
        duration = rng.uniform(60.0, 120.0)
        timing.learn(Ending(low=duration - 1, high=duration + 1, predicted=((DURATION, 1.0),)))
    plan = ReadPlan(started=0.0, timing=timing, costs=GET_COSTS)
    plan.observe(_seen("pending"), 0.0)
    reads, now, seen = 0, 0.0, _seen("processing")
    while now < 200.0:
        now = plan.next_read_at(now, seen.status)
        plan.observe(seen, now)
        reads += 1
        if now > 61.0:
            break
    spread = timing.spread(DURATION)
    assert spread is not None
    # The budget's schedule, not one held to the loop: its reads before 61 s are few.
    assert reads <= 3


def test_a_task_past_a_young_records_top_is_read_at_its_progress_end() -> None:
    """A young progress record whose ends all came early (its top below this task): past
    the top, a quarter of the age (27 s at 109 s) would be the next wait; the task's own
    progress (95 % at 109 s) says its end is 6 s away, and it is read there."""
    timing = ModelTiming()
    for _ in range(20):
        readings = tuple((hint, 100.0, hint.covariate(95)) for hint in Hint.progress_all(95))
        timing.learn(Ending(low=90.0, high=91.0, predicted=((DURATION, 1.0),), readings=readings))
    plan = ReadPlan(started=0.0, timing=timing, costs=GET_COSTS)
    plan.observe(_seen("pending"), 0.0)
    plan.observe(_seen("processing", 52), 60.0)
    plan.observe(_seen("processing", 95), 109.0)
    at = plan.next_read_at(109.0, _seen("processing").status)
    predicted = 109.0 * 100.0 / 95.5
    assert at <= predicted * 1.01 + 0.05
    assert at < 109.0 + 0.25 * 109.0
