"""What the rule's running set holds on to, and what it must not break.

Blind tests (helper-48), from the docstrings of `_recent_tasks` and `_estimate.ReadPlan`, of
the rule's first version (a product-limit share past a record's last end); its unit tests
of that share went with it, these apply to the rule as it stands.
"""

from __future__ import annotations

import gc
import math
import random

from _sim import Sim, Spec, steady

from evolink._estimate import GET_COSTS, ReadPlan
from evolink._models import Task
from evolink._timing import Hint, ModelTiming


def _task(status: str, estimate: float | None = None, progress: int = 0) -> Task:
    data: dict[str, object] = {"id": "task-unified-1-abc", "status": status, "progress": progress}
    if estimate is not None:
        data["task_info"] = {"estimated_time": estimate}
    return Task.from_dict(data)


def _fill(timing: ModelTiming, n: int, *, estimate: float | None, start: float = 0.0) -> None:
    """`n` tasks of the model, each read once part-way and seen done just after 10 s."""
    for k in range(n):
        plan = ReadPlan(started=start, estimated_time=estimate, timing=timing)
        plan.observe(_task("pending", estimate), start)
        plan.next_read_at(start)
        plan.observe(_task("processing", estimate), start + 5.0)
        plan.next_read_at(start + 5.0)
        plan.observe(_task("completed", estimate), start + 10.0 + 0.01 * k)


def test_running_plans_count_in_and_leave_when_ended_or_dropped() -> None:
    timing = ModelTiming()
    _fill(timing, 20, estimate=None)
    assert len(timing._recent._running) == 0  # every ended task left
    plans = [ReadPlan(started=100.0, timing=timing) for _ in range(30)]
    assert len(timing._recent._running) == 30
    del plans
    gc.collect()
    assert len(timing._recent._running) == 0


def test_progress_bands_never_pass_over() -> None:
    timing = ModelTiming()
    _fill(timing, 20, estimate=10.0)
    keep = [ReadPlan(started=0.0, timing=timing) for _ in range(40)]
    assert timing.unforeseen(Hint.progress(50), 0.0, 1.0, 100.0) == 0.0
    assert len(keep) == 40


def test_memory_of_dropped_plans_is_released_at_once_with_gc_off() -> None:
    """A long-lived client whose waits are abandoned (plans dropped without an end): the
    model's running set holds only the plans alive, even with the cyclic collector off
    (a plan in a reference cycle would only leave at a collection).

    Measured: the running set tracked the live plans exactly (max 100 = in flight), after
    3,000 tasks of which about 40 % were given up part-way."""
    rng = random.Random(3)
    worst: list[int] = []

    def make(r: random.Random, _k: int) -> Spec:
        d = 20.0 * math.exp(r.gauss(0.0, 0.3))
        give_up = d * r.uniform(0.2, 0.9) if r.random() < 0.4 else None
        return Spec(duration=d, estimate=round(d, 1), abandon_at=give_up)

    gc.disable()
    try:
        sim = Sim(costs=GET_COSTS)
        timing = sim.timing("m")

        def check(s: Sim) -> None:
            worst.append(len(timing._recent._running) - s.alive)

        sim.watch = check
        steady(make, in_flight=100, total=3000, seed=rng.randint(0, 99), sim=sim)
    finally:
        gc.enable()
    assert sum(r.abandoned for r in sim.runs) > 800
    assert max(worst) == 0, f"running set held {max(worst)} plans no longer alive"
    assert len(timing._recent._running) == 0


def test_a_plan_given_a_bad_estimate_does_not_break_other_plans() -> None:
    """Failed on the rule's first version; passes now.

    one plan made with `estimated_time=0` (or negative) makes every other wait
    on the same model raise in `next_read_at`: the rule's first version took
    `log(age / 0)` (ZeroDivisionError) or `Hint.estimate(-1)` (ValueError) for it.
    Before the rule a plan's estimate was only ever used by that plan. (`observe` keeps
    such estimates out; the constructor, which the brief drives, does not.)"""
    failures = []
    for bad_estimate in (0.0, -1.0):
        timing = ModelTiming()
        for k in range(40):
            estimate = 5.0 + k
            plan = ReadPlan(started=0.0, timing=timing)
            plan.observe(_task("pending", estimate), 0.0)
            plan.next_read_at(0.0)
            plan.observe(_task("processing", estimate), 0.5 * estimate)
            plan.next_read_at(0.5 * estimate)
            plan.observe(_task("completed"), estimate * (1.02 + 0.001 * k))
        bad = ReadPlan(started=0.0, estimated_time=bad_estimate, timing=timing)
        other = ReadPlan(started=1.0, timing=timing)
        other.observe(_task("pending", 10.0), 1.0)
        other.next_read_at(1.0)
        other.observe(_task("processing", 10.0), 8.0)
        try:
            other.next_read_at(8.0)
        except (ZeroDivisionError, ValueError) as exc:
            failures.append(f"estimate {bad_estimate}: {type(exc).__name__}: {exc}")
        del bad
    assert not failures, failures
