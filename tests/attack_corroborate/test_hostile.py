"""Hostile servers against the corroboration rule (issue 14): where it still trusts
agreeing progress past the age bound, and where it no longer does.

Promises checked: never slower than a 1 s loop on the same tasks (wall), and every
wait's detection delay within the task's age, so the worst delay within its duration."""

from __future__ import annotations

import pytest

from . import _sim as sim

SLOTS = 50


def _figures(results: dict[str, sim.Result]) -> str:
    return "; ".join(f"{name}: {result.describe()}" for name, result in results.items())


def _compare(
    warm: list[sim.Job], jobs: list[sim.Job], *, slots: int = SLOTS
) -> dict[str, sim.Result]:
    return {
        "new": sim.warmed("new", warm, jobs, slots=slots),
        "old": sim.warmed("old", warm, jobs, slots=slots),
        "loop": sim.loop(jobs, slots=slots),
        "oracle": sim.oracle(jobs, slots=slots),
    }


def test_sixth_of_liars_no_hints_mature_client() -> None:
    """The case the change fixes: a sixth of 60-300 s tasks report 40 % of the truth, no
    estimates, on a client that has seen 300 such tasks. Figures (seed 3/4): new wall
    1285.2 vs loop 1285.0 (old 1298.9), worst delay x0.02 of duration (old x0.99)."""
    warm = sim.mixed_jobs(300, 3, 60, 300, liar_share=1 / 6)
    jobs = sim.mixed_jobs(300, 4, 60, 300, liar_share=1 / 6)
    results = _compare(warm, jobs)
    new, old, loop = results["new"], results["old"], results["loop"]
    assert new.worst_delay_share <= 1.0, _figures(results)
    assert new.mean_delay < old.mean_delay, _figures(results)
    # Never slower than the loop: 1 s of grace, a loop's own step (reads land on a grid).
    assert new.wall <= loop.wall + 1.0, _figures(results)


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason=(
        "broken before and after alike: estimates that lie as progress does (2.5x) pass "
        "(b); 60-300 s, 1/6 liars, mature: new=old wall 1240.2 vs loop 1212.0 (x1.023), "
        "oracle 1207.5; worst delay 231.2 s = x1.08 of its duration; 6.05 reads a task"
    ),
)
def test_estimates_lie_as_progress_does() -> None:
    warm = sim.mixed_jobs(
        300,
        3,
        60,
        300,
        liar_share=1 / 6,
        honest_estimate=sim.factor_estimate(1.0),
        liar_estimate=sim.factor_estimate(2.5),
    )
    jobs = sim.mixed_jobs(
        300,
        4,
        60,
        300,
        liar_share=1 / 6,
        honest_estimate=sim.factor_estimate(1.0),
        liar_estimate=sim.factor_estimate(2.5),
    )
    results = _compare(warm, jobs)
    new, loop = results["new"], results["loop"]
    assert new.wall <= loop.wall + 1.0, _figures(results)
    assert new.worst_delay_share <= 1.0, _figures(results)


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason=(
        "broken before and after alike: 8-30 s, 1/6 liars with 2.5x estimates, mature: "
        "new=old wall 132.4 vs loop 130.0, oracle 127.4; worst delay 22.8 s = x1.54 of "
        "its duration; 2.10 reads a task"
    ),
)
def test_estimates_lie_as_progress_does_short_tasks() -> None:
    warm = sim.mixed_jobs(
        300,
        3,
        8,
        30,
        liar_share=1 / 6,
        honest_estimate=sim.factor_estimate(1.0),
        liar_estimate=sim.factor_estimate(2.5),
    )
    jobs = sim.mixed_jobs(
        300,
        4,
        8,
        30,
        liar_share=1 / 6,
        honest_estimate=sim.factor_estimate(1.0),
        liar_estimate=sim.factor_estimate(2.5),
    )
    results = _compare(warm, jobs)
    assert results["new"].wall <= results["loop"].wall + 1.0, _figures(results)
    assert results["new"].worst_delay_share <= 1.0, _figures(results)


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason=(
        "known limit of (b): estimates with noise sigma 0.9 land some liars' within 25 % "
        "of the lie and corroborate it; new wall 1252.3 s against the loop's 1238.0 s "
        "(the old rule, trusting every agreement, 1248.8 s), worst delay 296.6 s (204.0)"
    ),
)
def test_estimates_corroborate_by_chance() -> None:
    """Estimates with lognormal noise sigma 0.9: some liars' estimates land within 25 %
    of the lie. Figures (seed 7/8): new wall 1252.3 vs loop 1238.0 (old 1248.8): new is
    slower than the loop AND than the old rule; worst delay 296.6 s (old 204.0)."""
    noisy = sim.noisy_estimate(0.9)
    warm = sim.mixed_jobs(
        300, 7, 60, 300, liar_share=1 / 6, honest_estimate=noisy, liar_estimate=noisy
    )
    jobs = sim.mixed_jobs(
        300, 8, 60, 300, liar_share=1 / 6, honest_estimate=noisy, liar_estimate=noisy
    )
    results = _compare(warm, jobs)
    new, loop = results["new"], results["loop"]
    assert new.wall <= loop.wall + 1.0, _figures(results)
    assert new.worst_delay_share <= 1.0, _figures(results)


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason=(
        "broken before and after alike: (a) trusts a fresh client's first cohort; 50 liars "
        "(40 % of the truth), 60-300 s, no estimates, all at once: new=old wall 350.6 vs "
        "loop 297.0 (x1.18); mean delay 129.1 s, worst 194.4 s = x1.79 of its duration"
    ),
)
def test_fresh_client_first_cohort_of_liars() -> None:
    jobs = sim.jobs_of(50, 13, 60, 300, progress=sim.share(2.5))
    new = sim.run(jobs, policy="new", slots=SLOTS)
    loop = sim.loop(jobs, slots=SLOTS)
    figures = f"new: {new.describe()}; loop: {loop.describe()}"
    assert new.wall <= loop.wall + 1.0, figures
    assert new.worst_delay_share <= 1.0, figures


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason=(
        "broken before and after alike (the change halves it): new wall 1146.0 vs loop "
        "1020.0 (x1.12), old 1707.0 (x1.67); mean delay new 22.1 s, old 114.5 s"
    ),
)
def test_model_changes_mid_run_stale_estimates() -> None:
    """300 honest 30-120 s tasks (estimates +-15 %), then the model runs 2x slower, its
    progress reports 40 % of the truth, its estimates stay the old ones. Figures (seed
    5/6): new wall 1146.0 vs loop 1020.0 (x1.12; old 1707.0, x1.67); mean delay 22.1 s
    (old 114.5). The change helps but the promise stays broken."""
    warm = sim.jobs_of(300, 5, 30, 120, estimate=sim.factor_estimate(1.0))
    fresh = sim.jobs_of(300, 6, 30, 120, estimate=sim.factor_estimate(1.0))
    after = [sim.Job(job.duration * 2, sim.share(2.5), job.estimate) for job in fresh]
    results = _compare(warm, after)
    new, old, loop = results["new"], results["old"], results["loop"]
    assert new.wall <= old.wall, _figures(results)
    assert new.wall <= loop.wall + 1.0, _figures(results)
