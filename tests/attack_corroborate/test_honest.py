"""Honest servers against the age bound now holding (issue 14): what the change costs
where progress tells the truth. Same tasks and seeds, new vs old (`_corroborated` always
true). Reads a task may rise by at most `READS_SLACK` of the old count; the wall stays
within 1.05x the oracle and never above the 1 s loop."""

from __future__ import annotations

import pytest

from . import _sim as sim

#: The known cost of `_corroborated`, chosen (docs/explanation/waiting.md): agreeing
#: readings no longer take a task of minutes with no estimate from its first read (within
#: 30 s) to its end; the age bound doubles the waits, a read or two more a task, at the
#: same wall. Trusted, a slow sixth of lying tasks had cost 1.47x the 1 s loop.
COST = pytest.mark.xfail(
    strict=True,
    reason=(
        "known cost, chosen: honest tasks of 60-600 s with no estimate read 8.19 times "
        "against 6.86 (GETs, +19 %), 11.72 against 8.93 (single waits, +31 %), 8.89 "
        "against 7.45 (batch reads, +19 %), at the same wall (2257.0 s against 2259.2, "
        "loop 2260.0)"
    ),
)

#: New reads a task within 10 % of the old where the server is honest (the engine's own
#: tuning moved reads by 2-4 % for a change: docs/explanation/waiting.md).
READS_SLACK = 1.10


def _figures(results: dict[str, sim.Result]) -> str:
    return "; ".join(f"{name}: {result.describe()}" for name, result in results.items())


def _run(warm: list[sim.Job], jobs: list[sim.Job], **kwargs: object) -> dict[str, sim.Result]:
    slots = int(kwargs.get("slots", 50))  # type: ignore[arg-type]
    return {
        "new": sim.warmed("new", warm, jobs, **kwargs),
        "old": sim.warmed("old", warm, jobs, **kwargs),
        "loop": sim.loop(jobs, slots=slots),
        "oracle": sim.oracle(jobs, slots=slots),
    }


def _promises(results: dict[str, sim.Result]) -> None:
    new, old = results["new"], results["old"]
    figures = _figures(results)
    assert new.wall <= results["loop"].wall + 1.0, figures
    assert new.wall <= 1.05 * results["oracle"].wall, figures
    assert new.worst_delay_share <= 1.0, figures
    assert new.reads_per_task <= READS_SLACK * old.reads_per_task, figures


@pytest.mark.soak
@COST
def test_long_linear_no_estimates_batch_of_gets() -> None:
    """60-600 s, linear, no estimates, 50 slots, mature. Figures (seed 21/22): new 8.19
    reads a task vs old 6.86 (+19 %), wall 2257.0 vs 2259.2 (loop 2260.0)."""
    warm = sim.jobs_of(300, 21, 60, 600)
    jobs = sim.jobs_of(300, 22, 60, 600)
    _promises(_run(warm, jobs))


def test_long_linear_noisy_estimates() -> None:
    """60-300 s, linear, estimates with lognormal noise 0.5 (rarely within 25 %)."""
    noisy = sim.noisy_estimate(0.5)
    warm = sim.jobs_of(300, 23, 60, 300, estimate=noisy)
    jobs = sim.jobs_of(300, 24, 60, 300, estimate=noisy)
    _promises(_run(warm, jobs))


def test_long_linear_honest_estimates() -> None:
    """60-300 s, linear, honest estimates (+-15 %: within `CORROBORATE`): the change
    should cost nothing here."""
    est = sim.factor_estimate(1.0)
    warm = sim.jobs_of(300, 25, 60, 300, estimate=est)
    jobs = sim.jobs_of(300, 26, 60, 300, estimate=est)
    _promises(_run(warm, jobs))


@pytest.mark.soak
@COST
def test_single_waits_mature_client() -> None:
    """`tasks.wait`-like: one task at a time (one slot, GETs) on a client that has seen
    300 tasks; 60-600 s, linear, no estimates. Figures: new 11.7 reads a task vs old 8.9
    (+31 %), worst delay 0.5 s vs 1.3 s: reads bought with no wall to show."""
    warm = sim.jobs_of(300, 9, 60, 600)
    jobs = sim.jobs_of(40, 10, 60, 600)
    _promises(_run(warm, jobs, slots=1))


@pytest.mark.soak
@COST
def test_batch_reads_mature_client() -> None:
    """Batch reads (`BATCH_COSTS`), 60-600 s, linear, no estimates. Figures: new 8.9 task
    reads a task vs old 7.5 (+19 %)."""
    warm = sim.jobs_of(300, 11, 60, 600)
    jobs = sim.jobs_of(300, 12, 60, 600)
    _promises(_run(warm, jobs, mode="batch"))


@pytest.mark.soak
def test_short_tasks_unchanged() -> None:
    # (A strict known limit until 2026-12-05: 300 tasks of 8-30 s on 50 slots, linear, no
    # estimates, ended 131.4 s against the loop's 130.0 s; it passes since the progress
    # bands judge their first read of each task.)
    """The default simulator's 8-30 s, linear, no estimates: within the tuning's 2.5
    reads a task, and the change moves nothing much."""
    warm = sim.jobs_of(300, 27, 8, 30)
    jobs = sim.jobs_of(300, 28, 8, 30)
    results = _run(warm, jobs)
    _promises(results)
    assert results["new"].reads_per_task <= 2.5, _figures(results)
