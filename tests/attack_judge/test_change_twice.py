"""A model whose progress changes meaning twice (honest, then half the truth, then honest
again), and what the doubt of change 4 (`ModelTiming.progress_changed`) costs afterwards.

(Adapted: this suite first found the doubt kept for the client's life, at 14.21 reads a
task against 14.06 on a later batch of tasks of minutes, 16.53 against 13.78 after a later
fix; it now lapses `MAX_SAMPLES` ends after the last restart.)"""

from __future__ import annotations

import random

import pytest
from tests.attack_judge import _servers as servers
from tests.attack_judge._checks import GRID, mean_vs_loop, over_grid, summary
from tests.attack_judge._sim import Match, match, oracle, run_loop, run_ours, uniform_specs


def test_lies_then_honest_within_loop_and_seen() -> None:
    """Seeds 0-1: 0.949x and 0.934x the loop, 2-3 restarts (committed: 1.014x, 1.013x,
    no restart)."""
    runs = [match(servers.lies_then_honest(seed)) for seed in range(2)]
    assert all(sum(m.ours.changes.values()) for m in runs), summary(runs)
    assert not over_grid(runs), summary(runs)
    assert mean_vs_loop(runs) <= 1.0, summary(runs)


def _long_batch_after(history: list, long: list) -> tuple[Match, bool | None]:
    timings: dict = {}
    if history:
        run_ours(history, timings=timings)
    changed = timings["m"].progress_changed() if timings else None
    ours = run_ours(long, in_flight=30, timings=timings)
    return Match(ours, run_loop(long, in_flight=30), oracle(long, in_flight=30)), changed


@pytest.mark.soak
def test_trust_of_agreement_comes_back_after_the_lie() -> None:
    """After the lie, 300 honest tasks and then 1,000 more: the doubt has lapsed, and on a
    later batch of 150 tasks of 200-600 s (30 slots, linear progress, no estimates) the
    client reads about as one whose model never lied, at the same wall. Seeds 0-3: 16.53
    reads a task against 13.78, then 13.68/13.37, 13.82/13.42, 13.67/13.59 (seed 0's
    low-progress bands, reached only by long tasks, still hold ends of the lie: no short
    task's reading turns them over)."""
    ratios, texts = [], []
    for seed in range(4):
        rng = random.Random(seed)
        lied = servers.lies_then_honest(seed) + uniform_specs(rng, 1000, 2, 6)
        never = uniform_specs(rng, 1300, 2, 6) + uniform_specs(rng, 1000, 2, 6)
        long = uniform_specs(rng, 150, 200, 600)
        after_lie, latched = _long_batch_after(lied, long)
        clean, clean_latched = _long_batch_after(never, long)
        assert latched is False, latched
        assert clean_latched is False, clean_latched
        ratios.append(after_lie.ours.reads_per_task / clean.ours.reads_per_task)
        text = f"seed {seed}: after the lie: {after_lie.line()}\nnever lied: {clean.line()}"
        texts.append(text)
        assert after_lie.ours.wall <= after_lie.loop.wall + GRID, text
        assert after_lie.ours.mean_delay <= clean.ours.mean_delay + 0.1, text
    mean = sum(ratios) / len(ratios)
    assert mean <= 1.10, f"reads {mean:.3f}x a never-lied client's\n" + "\n".join(texts)
