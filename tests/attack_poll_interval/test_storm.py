"""Promise 2: a ceiling, not a storm. Where the plan reads sooner its reads are the plan's,
and the option adds at most about one read of a task an interval.

Each test runs the same server (deterministic: same durations, same hints) with and
without the option and compares what our server saw.
"""

from __future__ import annotations

import itertools
import math

import anyio
import pytest

from evolink import AsyncEvolink

from . import _server as s
from ._harness import EPS, batch, describe, fresh, run, waits
from ._server import API_KEY


def _signature(server: s.FakeServer) -> list[tuple[float, str, str, tuple[str, ...]]]:
    return [(round(r.at, 9), r.method, r.path, r.ids) for r in server.log]


def _run(server: s.FakeServer, mode: str, interval: float | None, count: int) -> None:
    if mode == "batch":
        batch(server, interval, count, max_in_flight=12)
    else:
        server.batch_endpoint = mode != "waits-get"
        waits(server, interval, count, stagger=0.37)


@pytest.mark.parametrize("mode", ["waits-get", "waits-batch-reads", "batch"])
def test_an_interval_longer_than_any_plan_changes_nothing(mode: str) -> None:
    """1e6 s: never binds, so every request is the plan's, at the plan's time."""
    runs = []
    for interval in (None, 1e6):
        server = fresh(durations=s.spread(5, 40, 13), progress=s.share(0.4))
        _run(server, mode, interval, 16)
        runs.append(_signature(server))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("batch_endpoint", [False, True])
def test_none_is_the_default(batch_endpoint: bool) -> None:
    """`max_poll_interval=None` and no argument at all: the same requests, at the same times."""
    runs = []
    for options in ({"max_poll_interval": None}, {}):
        server = fresh(
            durations=s.spread(5, 40, 13), progress=s.jumping, batch_endpoint=batch_endpoint
        )

        async def main(server: s.FakeServer = server, options: dict = options) -> None:
            client = AsyncEvolink(
                api_key=API_KEY, transport=server.transport(), clock=server.clock, **options
            )
            async with client, server.clock.running():

                async def one(i: int) -> None:
                    await server.clock.sleep(0.37 * i)
                    await client.tasks.wait(await client.images.generate(f"prompt {i}"))

                async with anyio.create_task_group() as tg:
                    for i in range(10):
                        tg.start_soon(one, i)

        run(main)
        runs.append(_signature(server))
    assert runs[0] == runs[1]


def test_short_tasks_read_by_their_plan_alone() -> None:
    """Honest tasks with honest estimates, all shorter than the interval, read by GET: the
    plan sees each done well within it, so the option must change no read at all."""
    runs = []
    for interval in (None, 10.0):
        server = fresh(
            durations=s.spread(2, 6, 7),
            progress=s.honest,
            estimate=s.true_estimate,
            batch_endpoint=False,
        )
        waits(server, interval, 12, stagger=0.37)
        runs.append(_signature(server))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("interval", [0.1, 0.3, 1.1, 0.5, 1.0])
def test_a_held_read_is_not_read_again_at_once(interval: float) -> None:
    """A task held to the grid of the interval (batch reads, a lying server) is read once a
    tick: never a second time a moment after a read on the grid.

    Reads on the grid exist only because of the option (the plan knows no grid), so a read
    within a quarter interval after one of them is the option's doing."""
    duration = 60.0
    server = fresh(durations=s.fixed(duration), progress=s.share(0.4))
    waits(server, interval, 2)
    doubled = []
    for task in server.tasks.values():
        times = task.read_times()
        for before, after in itertools.pairwise(times):
            on_grid = abs(before / interval - round(before / interval)) < 1e-6
            if on_grid and after - before < interval / 4:
                doubled.append((round(before, 4), round(after - before, 4)))
    assert not doubled, (
        f"{len(doubled)} reads came right after a read on the grid of {interval} s "
        f"(at, then gap): {doubled[:6]}; {describe(server)}"
    )
    # ...and so, over a 60 s task, about one read an interval beyond the plan's few.
    without = fresh(durations=s.fixed(duration), progress=s.share(0.4))
    waits(without, None, 2)
    for task, plain in zip(server.tasks.values(), without.tasks.values(), strict=True):
        budget = len(plain.read_times()) + math.ceil(duration / interval) + 2
        assert len(task.read_times()) <= budget, describe(server)


CALM = {
    # Hints on which the plan itself reads calmly (a few reads a task).
    "share40": (s.share(0.4), s.no_estimate),
    "honest-estimate": (s.honest, s.true_estimate),
}


@pytest.mark.parametrize("mode", ["waits-get", "waits-batch-reads", "batch"])
@pytest.mark.parametrize("hints", sorted(CALM))
def test_at_most_about_one_read_an_interval_more(hints: str, mode: str) -> None:
    """Reads of each task with the option <= its reads without + one a tick of its life
    (+1). A read that rides along in another task's batch request is a read too: the server
    queries the task's state for it (`_estimate`: every read of an unfinished task costs
    the service an upstream query)."""
    interval = 3.0
    progress, estimate = CALM[hints]
    servers = []
    for each in (None, interval):
        server = fresh(durations=s.spread(5, 40, 13), progress=progress, estimate=estimate)
        _run(server, mode, each, 24)
        servers.append(server)
    without, held = servers
    plain = without.total_reads()
    budget = plain + sum(math.ceil(t.duration / interval) + 1 for t in held.tasks.values())
    worst = max(held.tasks.values(), key=lambda t: len(t.read_times()) / t.duration)
    assert held.total_reads() <= budget, (
        f"{held.total_reads()} reads with max_poll_interval={interval} against {plain} "
        f"without: over the budget of {budget}; busiest task {worst.id} ({worst.duration:.1f} "
        f"s) read {len(worst.read_times())} times at "
        f"{[round(x - worst.created, 3) for x in worst.read_times()]}"
    )
    assert held.worst_gap() <= interval + EPS, describe(held)
