"""The two fixes to the default (no max_poll_interval): a timed wait with batch reads ends at its
timeout; a read backing off from a 429 does not ride along in another task's batch request
before its Retry-After; nor does a replanning (a batch's hurry) cut the back-off short."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import httpx
import pytest

from evolink import AsyncEvolink, EvolinkError, WaitTimeoutError
from evolink.testing import VirtualClock

from ._server import API, FakeServer, rate_limited

pytestmark = pytest.mark.anyio


def _client(server: FakeServer, clock: VirtualClock) -> AsyncEvolink:
    return AsyncEvolink(
        api_key="sk-evo-x",
        base_url=API,
        transport=server.transport(),
        clock=clock,
        max_retries=0,
    )


@pytest.mark.parametrize("timeout", [7.0, 12.3, 25.0])
async def test_timed_wait_ends_at_its_timeout(timeout: float) -> None:
    clock = VirtualClock()
    server = FakeServer(
        clock, duration=lambda i: 1000.0 if i == 0 else 100.0 + i, estimate=lambda _i: 100
    )
    async with _client(server, clock) as client, clock.running():
        tasks = [await client.images.generate(f"p{i}") for i in range(6)]
        ended: list[float] = []

        async def timed() -> None:
            with pytest.raises(WaitTimeoutError):
                await client.tasks.wait(tasks[0], timeout=timeout)
            ended.append(clock.monotonic())

        async def other(task: Any) -> None:
            with contextlib.suppress(EvolinkError):
                await client.tasks.wait(task, timeout=30)

        async with anyio.create_task_group() as tg:
            tg.start_soon(timed)
            for task in tasks[1:]:
                tg.start_soon(other, task)
    assert ended[0] == pytest.approx(timeout, abs=1e-6)


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "get"])
@pytest.mark.parametrize("retry_after", [5.0, 20.0])
async def test_backoff_not_cut_short(batch: bool, retry_after: float) -> None:
    """Task 0's read is refused with a 429 at its first read; its next read comes no sooner
    than the Retry-After, whatever rides along or replans (tasks ending around it, a batch
    hurrying for its last tasks)."""
    refused: list[float] = []

    def fault(
        _s: FakeServer, method: str, path: str, ids: tuple[str, ...], now: float
    ) -> httpx.Response | None:
        first = "task-unified-00000-fake"
        if first in ids and not refused and path.startswith("/v1/tasks/"):
            refused.append(now)
            return rate_limited(retry_after)
        return None

    clock = VirtualClock()
    server = FakeServer(
        clock, duration=lambda i: 4.0 + i * 0.7, estimate=lambda _i: 3, batch=batch, fault=fault
    )
    async with _client(server, clock) as client, clock.running():
        await client.images.generate_many(
            [f"p{i}" for i in range(12)], max_in_flight=12, batch_reads=batch
        )
    reads = [t for t, _m, ids, _s in server.reads() if "task-unified-00000-fake" in ids]
    assert refused
    assert len(reads) >= 2
    after = [t for t in reads if t > refused[0]]
    assert after[0] >= refused[0] + retry_after - 1e-6, (refused, reads)
