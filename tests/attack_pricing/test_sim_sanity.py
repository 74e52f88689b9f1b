"""The harness itself: on a friendly server the engine keeps its promises, and the 1 s
loop and the oracle come out as they must (so that the attacks below measure the plan,
not the harness)."""

from __future__ import annotations

import math

import attrs

from evolink._estimate import GET_COSTS

from . import _servers as servers
from . import _sim as sim


def test_friendly_server_keeps_the_promises() -> None:
    """Honest linear progress and estimates, 1,000 tasks of 2-6 s, 100 in flight: within
    1.05x the oracle, at most 2.5 GETs a task, faster than the 1 s loop."""
    new = servers.run("honest-linear", 1, "new")
    oracle = servers.run("honest-linear", 1, "oracle")
    loop = servers.run("honest-linear", 1, "loop")
    assert new.wall / oracle <= 1.05, new.row()
    assert new.reads <= 2.5, new.row()
    assert new.wall < loop.wall, (new.row(), loop.row())


def test_loop_and_oracle_are_what_they_say() -> None:
    specs = sim.make(50, 3, lambda r: r.uniform(2, 6))
    loop = sim.loop(specs, in_flight=50)
    # Every task read at 1 s, 2 s, ... from its start: seen at ceil(D) (and latencies).
    assert loop.reads == sum(math.ceil(s.duration + 0.0075) for s in specs) / 50
    assert 0.0 <= min(loop.delays)
    assert max(loop.delays) <= 1.01
    assert sim.oracle(specs, in_flight=50) == max(s.duration for s in specs) + 0.0025


def test_the_old_code_is_built_in_process() -> None:
    """The band price is undone as the brief says, and nothing else."""
    assert GET_COSTS.band_cost == 0.024
    assert sim.OLD_GET_COSTS.band_cost is None
    assert attrs.evolve(sim.OLD_GET_COSTS, band_cost=0.024) == GET_COSTS
