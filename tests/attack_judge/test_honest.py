"""Servers that never change: the new weighing of progress bands' reads must raise no
false alarm (no record starts again), and no batch may be slower than a 1 s loop's by
more than its one-second grid."""

from __future__ import annotations

import pytest
from tests.attack_judge import _servers as servers
from tests.attack_judge._checks import GRID, life, mean_vs_loop, over_grid, summary
from tests.attack_judge._sim import match

HONEST = [
    servers.honest_linear,
    servers.honest_with_estimates,
    servers.rate_noise,
    servers.read_noise,
    servers.coarse_steps,
    servers.steps_of_ten,
    servers.slow_then_fast,
    servers.fast_then_slow,
    servers.noisy_estimates,
]


@pytest.mark.parametrize("server", [*HONEST, servers.speed_bursts], ids=lambda s: s.__name__)
def test_unchanging_server_no_restart_and_within_loop(server) -> None:
    m = match(server(0))
    assert not any(m.ours.changes.values()), f"false alarm on {server.__name__}: {m.line()}"
    assert m.ours.wall <= m.loop.wall + GRID, f"{server.__name__}: {m.line()}"


def test_progress_shape_in_bursts_within_loop() -> None:
    """Linear and t^2 progress in bursts of 100 (honest estimates): a change of curve
    each burst, so a restart is no false alarm; 0.949x the loop."""
    m = match(servers.shape_bursts(0))
    assert m.ours.wall <= m.loop.wall, m.line()


def test_speed_bursts_false_alarm_costs_nothing() -> None:
    """Honest linear progress, no estimates, bursts of 2-6 s and 20-40 s tasks, a client's
    third batch (seeds 30-32): no record starts again. (Found: a progress band's record
    started again there, and that batch ran 1.0152x the loop, +2.9 s, where the committed
    engine ran 1.0013x; gone once a band's read is judged on the record as it planned it.)"""
    runs = life([servers.speed_bursts(30 + b) for b in range(3)])
    restarts = [sum(m.ours.changes.values()) for m in runs]
    assert restarts == [0, 0, 0], f"restarts {restarts}\n{summary(runs)}"
    assert runs[2].ours.wall <= runs[2].loop.wall + GRID, summary(runs)


def test_tasks_of_minutes_no_restart_and_warm_batch_within_loop() -> None:
    runs = life([servers.minutes(0), servers.minutes(1)], in_flight=30)
    restarts = [sum(m.ours.changes.values()) for m in runs]
    assert restarts == [0, 0], f"restarts {restarts}\n{summary(runs)}"
    assert runs[1].ours.wall <= runs[1].loop.wall + GRID, summary(runs)


def test_many_models_no_restart_and_within_loop() -> None:
    m = match(servers.many_models(0))
    assert not any(m.ours.changes.values()), m.line()
    assert m.ours.wall <= m.loop.wall + GRID, m.line()


@pytest.mark.soak
@pytest.mark.parametrize("server", HONEST, ids=lambda s: s.__name__)
def test_soak_unchanging_server_client_life(server) -> None:
    """Six clients, each three batches of 1,000: never a restart, never over the grid."""
    failures, restarts = [], []
    for seed in range(6):
        runs = life([server(10 * seed + b) for b in range(3)])
        restarts.append([sum(m.ours.changes.values()) for m in runs])
        failures += [f"client {seed} {line}" for line in over_grid(runs)]
        if mean_vs_loop(runs) > 1.0:
            failures.append(f"client {seed} batches vs loop {[round(m.vs_loop, 4) for m in runs]}")
    assert not any(map(any, restarts)), f"{server.__name__}: restarts per batch {restarts}"
    assert not failures, f"{server.__name__}: {failures}"


@pytest.mark.soak
def test_soak_many_models_and_minutes() -> None:
    runs = [match(servers.many_models(seed)) for seed in range(4)]
    assert not any(any(m.ours.changes.values()) for m in runs), summary(runs)
    assert not over_grid(runs), summary(runs)
    assert mean_vs_loop(runs) <= 1.0, summary(runs)
    for seed in range(3):
        minutes = life([servers.minutes(10 * seed + b) for b in range(4)], in_flight=30)
        assert not any(any(m.ours.changes.values()) for m in minutes), summary(minutes)
        assert not over_grid(minutes[1:]), summary(minutes)
