"""The watcher's loop neither spins (wakes that read nothing) nor hoards: its heaps stay about
the size of what it watches, with the option set or not."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import anyio
import pytest

from evolink import AsyncEvolink, EvolinkError
from evolink.testing import VirtualClock

from . import _check
from ._scenarios import SCENARIOS, fuzz
from ._server import API, FakeServer

pytestmark = pytest.mark.anyio


async def _never_ending(batch: bool, interval: float | None, n: int, seconds: float) -> Any:
    clock = VirtualClock()
    server = FakeServer(clock, duration=lambda _i: math.inf, batch=batch)
    extra = {} if interval is None else {"max_poll_interval": interval}
    async with (
        AsyncEvolink(
            api_key="sk-evo-x",
            base_url=API,
            transport=server.transport(),
            clock=clock,
            max_retries=0,
            **extra,
        ) as client,
        clock.running(),
    ):
        tasks = [await client.images.generate(f"p{i}") for i in range(n)]

        async def one(task: Any) -> None:
            with contextlib.suppress(EvolinkError):
                await client.tasks.wait(task, timeout=seconds)

        async with anyio.create_task_group() as tg:
            for task in tasks:
                tg.start_soon(one, task)
    return server


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "get"])
@pytest.mark.parametrize("interval", [2.0, pytest.param(0.5, marks=pytest.mark.soak)])
async def test_by_heap_stays_bounded(monkeypatch: Any, batch: bool, interval: float) -> None:
    """20 never-ending tasks held to the interval for 200 s: the watcher's `_direct` heap
    keeps about one entry per watched task, not one per read ever made."""
    with _check.counting_wakes(monkeypatch) as wakes:
        server = await _never_ending(batch, interval, 20, 200.0)
    assert len(server.reads()) > 50
    assert wakes.direct <= 4 * wakes.watched + 50, (
        f"_direct held {wakes.direct} entries for {wakes.watched} tasks "
        f"({len(server.reads())} read requests)"
    )
    assert wakes.heap <= 4 * wakes.watched + 50


@pytest.mark.parametrize(
    "name",
    [
        "gen_many",
        "many_waits",
        "mixed",
        "fastapi_callbacks",
        "rate_limits",
        "timeouts",
        "never_ending",
        "liar",
        "server_errors",
    ],
)
@pytest.mark.parametrize(
    "interval",
    [
        None,
        1.0,
        pytest.param(0.1, marks=pytest.mark.soak),
        pytest.param(5.0, marks=pytest.mark.soak),
    ],
)
async def test_no_empty_wakes(monkeypatch: Any, name: str, interval: float | None) -> None:
    """Each time the loop wakes to take reads, it takes some (a few misses at most: a task
    forgotten while the loop slept)."""
    extra = {} if interval is None else {"max_poll_interval": interval}
    with _check.counting_wakes(monkeypatch) as wakes:
        server = await SCENARIOS[name](extra)
    assert wakes.takes > 0
    assert wakes.empty <= 2 + wakes.takes // 50, (wakes, len(server.log))


@pytest.mark.parametrize(
    "seed", [30, 31, *(pytest.param(s, marks=pytest.mark.soak) for s in range(32, 42))]
)
async def test_fuzz_no_spin_no_stall(monkeypatch: Any, seed: int) -> None:
    """Random mixes, option 0.1-5 s: the run ends (no stall), within 30 s of real time as a
    spin detector (a loop that spins does not let the virtual clock move), with few empty
    wakes."""
    interval = [0.1, 0.3, 1.0, 2.0, 5.0][seed % 5]
    with _check.counting_wakes(monkeypatch) as wakes, anyio.fail_after(30):
        server = await fuzz({"max_poll_interval": interval}, seed)
    assert server.log[-1][1] != "HORIZON" or any(
        not math.isfinite(t.duration) for t in server.tasks.values()
    )
    assert wakes.empty <= 2 + wakes.takes // 50, wakes
