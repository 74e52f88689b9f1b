"""waiting.md's figures for the fitted record, reproduced with the plan simulator
(`benchmarks/plans.py`, 12 seeds, one GET per read, 1,000 tasks on 100 slots)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _fitted_sim import before_fit

from evolink._estimate import GET_COSTS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from plans import simulate


def _mean(behaviour: str, seeds: range) -> tuple[float, float, float]:
    runs = [simulate(behaviour, GET_COSTS, seed=seed) for seed in seeds]
    n = len(runs)
    return (
        sum(r["ratio"] for r in runs) / n,
        sum(r["reads_per_task"] for r in runs) / n,
        sum(r["mean_delay"] for r in runs) / n,
    )


def test_no_progress_figures() -> None:
    """waiting.md: no progress, 12 seeds: 1.0461x at 2.39 reads, 0.202 s (fitted), against
    1.0505x at 2.62, 0.217 s before. (Written against the first version's 1.0459 / 2.46 /
    0.202; updated with the doc after this suite's fixes: a record whose intervals nearly
    all share a point is not fitted, waiting tasks' part-way reads are skipped, and only
    once 32 first reads before estimates' ends found (almost) no task done.)"""
    ratio, reads, delay = _mean("no-progress", range(1, 13))
    assert ratio == pytest.approx(1.0461, abs=0.001)
    assert reads == pytest.approx(2.39, abs=0.02)
    assert delay == pytest.approx(0.202, abs=0.003)
    with before_fit():
        ratio0, reads0, _delay0 = _mean("no-progress", range(1, 13))
    assert ratio0 == pytest.approx(1.0505, abs=0.001)
    assert reads0 == pytest.approx(2.62, abs=0.02)
    assert ratio < ratio0
    assert reads < reads0


@pytest.mark.soak
@pytest.mark.parametrize(
    "behaviour",
    [
        "honest-linear",
        "estimates-missing",
        "noisy-estimates",
        "blind",
    ],
)
def test_other_behaviours_unchanged(behaviour: str) -> None:
    """waiting.md: the other behaviours of the matrix are unchanged within 0.001 (their
    models show progress, or have no estimates), but estimates x2, and those whose tasks
    end on the estimates' records (below)."""
    after = _mean(behaviour, range(1, 7))
    with before_fit():
        before = _mean(behaviour, range(1, 7))
    assert after[0] == pytest.approx(before[0], abs=0.001)


@pytest.mark.soak
@pytest.mark.parametrize("behaviour", ["coarse-steps", "heavy-tailed", "slow-then-fast"])
def test_fitted_where_tasks_end_on_the_estimates_record(behaviour: str) -> None:
    """waiting.md: where most tasks are seen done on the estimates' records (they hold
    them against progress bands not under half their width), those records are fitted
    too: fewer reads, and no slower by more than 0.002 of the oracle."""
    after = _mean(behaviour, range(1, 7))
    with before_fit():
        before = _mean(behaviour, range(1, 7))
    assert after[0] <= before[0] + 0.002
    assert after[1] < before[1]
