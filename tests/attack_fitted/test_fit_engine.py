"""The engine's plans (`ReadPlan` + one `ModelTiming`) against servers of our own
(`_fitted_sim`): the bar is waiting.md's (never slower than a 1 s loop where a hint says
where to read; every task seen done; never a storm), and the engine before the fitted
record (`before_fit`) for comparison."""

from __future__ import annotations

import math
import random

import pytest
from _fitted_sim import before_fit, honest, linear, no_progress, run

from evolink import _timing


def _uniform(seed: int, n: int, low: float, high: float) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(low, high) for _ in range(n)]


def test_exact_estimates_on_long_tasks_within_the_loop() -> None:
    """No progress, estimates exact to the second (120 s; tasks 120-121 s), 300 tasks on
    30 slots, GETs. waiting.md: "Never slower than a 1 s loop, where a hint says where to
    read" (the out-of-reach cases it names are estimates of +-15 % and coarse steps; this
    estimate is within 0.8 %).

    DEFECT (made worse by the fitted record): wall 1.0130x the oracle, mean delay 1.39 s,
    against the loop's 1.0024x / 0.51 s (before the fitted record: 1.0035x / 0.40 s). Over
    three seeds and 90-180 s, the fitted engine is 1.009-1.021x against the loop's
    1.0016-1.0039x, every time slower than before. Each task is read at 120.03 s (running)
    and next at 122.44 s. Cause: the fitted normal's width is floored by
    `_censored_normal.MIN_SIGMA` (0.004: 10-90 % width 0.0103), wider than the raw
    durations' Turnbull record (0.0091), so `ModelTiming.best` picks DURATION, whose schedule
    is not held to the loop (`ReadPlan._held_to_loop`): the estimate's record, which was,
    loses to it only because of the floor."""
    rng = random.Random(1)
    durations = [120 + rng.uniform(0, 1) for _ in range(300)]
    estimates: list[float | None] = [120.0] * 300
    after = run(durations, estimates, in_flight=30)
    with before_fit():
        before = run(durations, estimates, in_flight=30)
    figures = (
        f"after {after.ratio:.4f}x / {after.mean_delay():.2f} s, before {before.ratio:.4f}x / "
        f"{before.mean_delay():.2f} s, loop {after.loop_ratio:.4f}x / {after.loop_delay():.2f} s"
    )
    assert not after.storms()
    assert after.wall <= after.loop_wall, figures
    assert after.mean_delay() <= after.loop_delay(), figures


def _scenarios() -> dict[str, tuple[list[float], list[float | None]]]:
    out: dict[str, tuple[list[float], list[float | None]]] = {}
    n = 600
    rng = random.Random(21)
    d = [rng.uniform(2, 6) for _ in range(n)]
    draws = [rng.random() for _ in d]
    out["honest"] = (d, list(honest(d, draws)))
    out["x2"] = (d, list(honest(d, draws, 2.0)))
    out["x3"] = (d, list(honest(d, draws, 3.0)))
    out["x0.5"] = (d, list(honest(d, draws, 0.5)))
    out["bimodal"] = (
        [rng.uniform(2, 4) if rng.random() < 0.5 else rng.uniform(20, 30) for _ in range(n)],
        [60.0] * n,
    )
    lognormal = [min(60, 3.5 * math.exp(0.8 * rng.gauss(0, 1))) for _ in range(n)]
    out["lognormal"] = (lognormal, [4.0] * n)
    out["discrete"] = ([float(rng.choice([2, 3, 4])) + 0.3 for _ in range(n)], [3.0] * n)
    out["point"] = ([float(rng.choice([2, 3, 4, 5, 6])) for _ in range(n)], [])
    out["point"] = (out["point"][0], list(out["point"][0]))
    some = [e if u < 0.7 else None for e, u in zip(honest(d, draws), draws, strict=True)]
    out["some-missing"] = (d, some)
    out["tiny"] = ([rng.uniform(0.05, 0.2) for _ in range(n)], [1.0] * n)
    return out


SCENARIOS = _scenarios()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_task_seen_and_no_storm(name: str) -> None:
    """Every task seen done, once; after a task's first read, reads at least
    max(20 ms, min(2 % of its age, 0.5 s)) apart (waiting.md, "never a storm"); no read
    planned further than the bound (a task seen done by twice its duration, plus the
    first read's 30 s cap)."""
    durations, estimates = SCENARIOS[name]
    result = run(durations, estimates, in_flight=50)
    assert all(math.isfinite(s) for s in result.seen)
    assert result.storms() == []
    for i, d in enumerate(durations):
        assert result.delay(i) <= max(d, 0.02) + 30.0 + 0.1, (name, i, d, result.delay(i))


def test_pending_tasks_do_not_make_a_model_show_none() -> None:
    """Queued (pending) tasks show 0 too: they must not count towards "shows none"
    (linear progress once running, queues of up to 6 s on 2-6 s tasks)."""
    rng = random.Random(5)
    durations = [rng.uniform(2, 6) for _ in range(400)]
    queue = [rng.uniform(0, 6) for _ in range(400)]
    total = [d + q for d, q in zip(durations, queue, strict=True)]
    estimates = honest(total, [rng.random() for _ in total])
    result = run(total, list(estimates), pending=queue, progress=linear)
    assert not result.timing.shows_none()
    assert result.timing.shows_progress()


def test_slow_start_progress_does_not_make_a_model_show_none() -> None:
    """Progress 100 (t/D)^5: 0 until a third of the task, then some. The first read at
    55 % shows 5 %: the model shows progress."""
    rng = random.Random(6)
    durations = [rng.uniform(2, 6) for _ in range(400)]
    estimates = honest(durations, [rng.random() for _ in durations])
    result = run(durations, list(estimates), progress=lambda _i, f, _a: math.floor(100 * f**5))
    assert not result.timing.shows_none()
    assert result.timing.shows_progress()


def test_no_progress_model_shows_none_and_fits() -> None:
    rng = random.Random(7)
    durations = [rng.uniform(2, 6) for _ in range(600)]
    estimates = honest(durations, [rng.random() for _ in durations])
    result = run(durations, list(estimates), progress=no_progress)
    assert result.timing.shows_none()
    spread = result.timing.spread(_timing.ESTIMATE)
    assert spread is not None
    assert spread.fitted()


def test_progress_appearing_turns_the_fit_off() -> None:
    """A model that showed none for 400 tasks, then shows linear progress: the estimate's
    records drop the fitted form once a quarter of its ended tasks showed progress
    (cumulative: about 400 / 3 tasks later), and tasks on it probe again."""
    rng = random.Random(8)
    n = 1000
    durations = [rng.uniform(2, 6) for _ in range(n)]
    estimates = honest(durations, [rng.random() for _ in durations])
    result = run(
        durations,
        list(estimates),
        progress=lambda i, f, _a: 0 if i < 400 else math.floor(100 * f),
    )
    assert result.timing.shows_progress()
    assert not result.timing.shows_none()
    spread = result.timing.spread(_timing.ESTIMATE)
    assert spread is not None
    assert not spread.fitted()
    assert result.storms() == []


def test_gradual_speed_up_is_followed_without_probes() -> None:
    """Tasks get 2x faster over 1,000 tasks (estimates keep the old size), no progress:
    on a fitted record (no probes) the last 800 must be seen about as soon as by a client
    that saw the faster model from the start (mean delay within 1.5x its own)."""
    rng = random.Random(4)
    n = 2000
    base = [rng.uniform(2, 6) for _ in range(n)]
    estimates = list(honest(base, [rng.random() for _ in base]))
    drifting = [b * (1 - 0.5 * min(i, 1000) / 1000) for i, b in enumerate(base)]
    result = run(drifting, estimates)
    fresh = run([b * 0.5 for b in base], estimates)
    tail = range(1200, n)
    assert result.mean_delay(tail) <= 1.5 * fresh.mean_delay(tail)
    assert result.reads_per_task(tail) <= fresh.reads_per_task(tail) + 0.5
