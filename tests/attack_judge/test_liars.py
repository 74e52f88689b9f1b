"""Servers whose progress lies, or comes to lie: the change's own claims, and around them.

Figures are this suite's simulator's (GETs, 100 in flight); "committed" is the engine
before the change, on the same tasks.
"""

from __future__ import annotations

import pytest
from tests.attack_judge import _servers as servers
from tests.attack_judge._checks import GRID, mean_vs_loop, over_grid, summary
from tests.attack_judge._sim import match


def test_slowdown_liar_claim_on_average() -> None:
    """The first claim: 3x slower, progress reporting half the truth, no estimates, about
    1.00x the loop (committed: 1.058-1.072x in these seeds). Seeds 0-3 here: 1.0099x,
    1.0646x, 0.9683x, 0.9880x (1.0104x, 1.0307x, 0.9720x, 0.9978x before the band's read
    was judged on the record as it planned it; over 12 seeds 1.0028x: the soak test)."""
    runs = [match(servers.slowdown_liar(seed)) for seed in range(4)]
    assert mean_vs_loop(runs) <= 1.01, summary(runs)
    assert all(sum(m.ours.changes.values()) for m in runs), summary(runs)


@pytest.mark.soak
def test_slowdown_liar_claim_on_average_twelve_seeds() -> None:
    """Seeds 0-11: 1.0028x the loop on average (committed about 1.06x)."""
    runs = [match(servers.slowdown_liar(seed)) for seed in range(12)]
    assert mean_vs_loop(runs) <= 1.005, summary(runs)


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason="slowdown liar (2-6 s tasks turning 3x slower, progress half the truth): seed 1 "
    "1.0307x the loop (+3.2 s, tasks seen 0.83 s late on average against 0.51 s), seed 0 "
    "1.0104x (+1.1 s); committed engine 1.058x/1.072x/1.058x/1.065x in seeds 0-3",
)
def test_slowdown_liar_every_batch_within_grid() -> None:
    runs = [match(servers.slowdown_liar(seed)) for seed in range(4)]
    assert not over_grid(runs), f"{over_grid(runs)}\n{summary(runs)}"


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason="slowdown liar on tasks of 10-30 s (30-90 s after the change): 1.0200x the "
    "loop (+9.8 s) and 1.0370x (+18.7 s) in seeds 0-1, tasks seen 1.47 s and 2.48 s late "
    "on average against 0.51 s; committed engine 1.0876x and 1.1032x",
)
def test_slowdown_liar_longer_tasks_within_loop() -> None:
    runs = [match(servers.slowdown_liar(seed, 10, 30)) for seed in range(2)]
    assert not over_grid(runs), f"{over_grid(runs)}\n{summary(runs)}"


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason="slow lying sixth (15-30 s tasks reporting 40 % of the truth among honest "
    "2-6 s ones): seed 0 1.0488x the loop (+4.6 s, no restart: Spread._odd turned both "
    "crossings into commits, 3 of 8 and 2 of 9 held ends odd); committed engine 1.0436x; "
    "with the gate off 1.0162x",
)
def test_slow_lying_sixth_every_batch_within_grid() -> None:
    runs = [match(servers.slow_lying_sixth(seed)) for seed in range(3)]
    assert not over_grid(runs), f"{over_grid(runs)}\n{summary(runs)}"


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason="20-60 s tasks, no estimates, from task 400 progress reports 60 % of the truth "
    "(every task, no slowdown): 1.0525x (+22.9 s), 1.0222x (+9.9 s), 1.0421x (+18.6 s) "
    "the loop in seeds 0-2, no restart in seeds 0 and 2: in seed 0 the CUSUM crossed three "
    "times and Spread._odd took the held ends in each time (2 of 6, 9 of 32, 5 of 20 odd: "
    "tasks found done at the schedule's reads are never odd); with the gate off 1.0368x; "
    "committed engine 1.0485x, 1.0496x, 1.0391x",
)
def test_progress_coming_to_mean_less_on_longer_tasks_within_loop() -> None:
    runs = [match(servers.comes_to_mean_less(seed)) for seed in range(3)]
    assert not over_grid(runs), f"{over_grid(runs)}\n{summary(runs)}"


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason="20-60 s tasks, no estimates, from task 400 progress along t^3 (waiting.md's "
    "known limit, on 2-6 s tasks there): 1.0502x (+21.9 s) the loop in seed 0, tasks seen "
    "2.6 s late against 0.51 s, 4 restarts; committed engine 1.0689x, no restart",
)
def test_progress_turning_cubic_on_longer_tasks_within_loop() -> None:
    m = match(servers.turns_cubic(0))
    assert m.ours.wall <= m.loop.wall + GRID, m.line()


def test_lying_minority_in_bursts_within_loop() -> None:
    """A fifth of the tasks report half the truth, in bursts of 40: 0.94-0.95x."""
    runs = [match(servers.lying_bursts(seed)) for seed in range(2)]
    assert not over_grid(runs), summary(runs)
    assert mean_vs_loop(runs) <= 1.0, summary(runs)


@pytest.mark.parametrize("server", [servers.late_bands_lie, servers.early_bands_lie])
def test_progress_lying_in_some_bands_within_loop(server) -> None:
    m = match(server(0))
    assert m.ours.wall <= m.loop.wall, m.line()


@pytest.mark.soak
def test_soak_claims_on_twelve_seeds() -> None:
    """Both claims on average over 12 seeds: the slowdown liar 0.994x (committed
    1.062x), the slow lying sixth 0.997x (committed 1.016x)."""
    liar = [match(servers.slowdown_liar(seed)) for seed in range(12)]
    sixth = [match(servers.slow_lying_sixth(seed)) for seed in range(12)]
    assert mean_vs_loop(liar) <= 1.005, summary(liar)
    assert mean_vs_loop(sixth) <= 1.005, summary(sixth)


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason="12 seeds: slowdown liar over the grid in seed 1 (+3.2 s) and seed 0 (+1.1 s); "
    "slow lying sixth in seed 0 (+4.6 s); longer-task slowdown liar 1.016-1.042x in "
    "all of seeds 0-3 (+7.9 to +20.8 s)",
)
def test_soak_liars_every_batch_within_grid() -> None:
    runs = [match(servers.slowdown_liar(seed)) for seed in range(12)]
    runs += [match(servers.slow_lying_sixth(seed)) for seed in range(12)]
    runs += [match(servers.slowdown_liar(seed, 10, 30)) for seed in range(4)]
    runs += [match(servers.lying_bursts(seed)) for seed in range(6)]
    assert not over_grid(runs), f"{over_grid(runs)}\n{summary(runs)}"
