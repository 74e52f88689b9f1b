"""Seed sweeps (only with `-m soak`): the change's fix and its cost on ten seeds each.

Figures (seeds 0-9): a sixth of 60-300 s tasks reporting 40 % of the truth, no estimates,
mature client: mean wall new 1242.9 s, old 1244.0 s, loop 1235.4 s; mean delay new 1.19 s,
old 2.06 s. Honest 60-600 s tasks, no estimates: 7.93-8.47 reads a task new against
6.69-7.18 old (+12-24 %), walls within 1.2 s of each other and of the loop."""

from __future__ import annotations

import statistics

import pytest

from . import _sim as sim

SEEDS = range(10)


def _liars(seed: int) -> tuple[sim.Result, sim.Result, sim.Result]:
    warm = sim.mixed_jobs(300, 100 + seed, 60, 300, liar_share=1 / 6)
    jobs = sim.mixed_jobs(300, 200 + seed, 60, 300, liar_share=1 / 6)
    return sim.warmed("new", warm, jobs), sim.warmed("old", warm, jobs), sim.loop(jobs)


def _honest(seed: int) -> tuple[sim.Result, sim.Result, sim.Result]:
    warm = sim.jobs_of(300, 300 + seed, 60, 600)
    jobs = sim.jobs_of(300, 400 + seed, 60, 600)
    return sim.warmed("new", warm, jobs), sim.warmed("old", warm, jobs), sim.loop(jobs)


@pytest.mark.soak
def test_sixth_of_liars_better_seen_than_before() -> None:
    """Over ten seeds: a mean delay below the old rule's, no more wall on average, and
    no task seen later than its own duration after its end."""
    runs = [_liars(seed) for seed in SEEDS]
    figures = "; ".join(f"new: {n.describe()} old: {o.describe()}" for n, o, _ in runs)
    assert statistics.fmean(n.mean_delay for n, _, _ in runs) < statistics.fmean(
        o.mean_delay for _, o, _ in runs
    ), figures
    assert statistics.fmean(n.wall for n, _, _ in runs) <= statistics.fmean(
        o.wall for _, o, _ in runs
    ), figures
    assert max(n.worst_delay_share for n, _, _ in runs) <= 1.01, figures


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason=(
        "known limit, before and after alike: with a sixth of the tasks lying steadily, "
        "the engine ends more than a second after the 1 s loop on 5 of 10 seeds (new "
        "1244.2/1263.7/1222.9/1267.9/1255.1 s against 1224/1250/1214/1256/1235 s; the old "
        "rule on 6 of 10)"
    ),
)
def test_sixth_of_liars_never_slower_than_loop() -> None:
    runs = [_liars(seed) for seed in SEEDS]
    slower = [f"{n.wall:.1f} vs {lp.wall:.1f}" for n, _, lp in runs if n.wall > lp.wall + 1.0]
    assert not slower, slower


@pytest.mark.soak
def test_honest_long_tasks_same_wall_bounded_reads() -> None:
    """The cost, bounded: on every seed the wall within 2 s of the old rule's and never
    over the loop's (a second of grace: the loop's reads land on a grid), at most 30 %
    more reads a task."""
    for seed in SEEDS:
        new, old, loop = _honest(seed)
        figures = f"seed {seed}: new: {new.describe()}; old: {old.describe()}"
        assert abs(new.wall - old.wall) <= 2.0, figures
        assert new.wall <= loop.wall + 1.0, figures
        assert new.reads_per_task <= 1.30 * old.reads_per_task, figures
