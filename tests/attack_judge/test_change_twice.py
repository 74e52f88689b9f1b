"""A model whose progress changes meaning twice (honest, then half the truth, then honest
again).

(Adapted: this suite also measured the cost of change 4, agreeing readings held to the age
bound once a band's record started again. It was then found to buy nothing on any server
measured (helper-50's and this suite's, 8-12 seeds), and removed with its test.)"""

from __future__ import annotations

from tests.attack_judge import _servers as servers
from tests.attack_judge._checks import mean_vs_loop, over_grid, summary
from tests.attack_judge._sim import match


def test_lies_then_honest_within_loop_and_seen() -> None:
    """Seeds 0-1: 0.949x and 0.934x the loop, 2-3 restarts (committed: 1.014x, 1.013x,
    no restart)."""
    runs = [match(servers.lies_then_honest(seed)) for seed in range(2)]
    assert all(sum(m.ours.changes.values()) for m in runs), summary(runs)
    assert not over_grid(runs), summary(runs)
    assert mean_vs_loop(runs) <= 1.0, summary(runs)
