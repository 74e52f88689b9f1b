"""Runs the client against `FakeServer` on a virtual clock, in the ways a user waits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from evolink import AsyncEvolink
from evolink.testing import VirtualClock

from ._server import API_KEY, FakeServer

#: Slack for float arithmetic on the clock (no real time is measured anywhere).
EPS = 1e-6


def client_for(server: FakeServer, interval: float | None, **kwargs: Any) -> AsyncEvolink:
    return AsyncEvolink(
        api_key=API_KEY,
        base_url="https://fake.evolink.test",
        transport=server.transport(),
        clock=server.clock,
        max_poll_interval=interval,
        **kwargs,
    )


def run(main: Callable[[], Awaitable[Any]], backend: str = "asyncio") -> Any:
    return anyio.run(main, backend=backend)


def waits(
    server: FakeServer,
    interval: float | None,
    count: int = 1,
    *,
    stagger: float = 0.0,
    timeout: float | None = None,
    backend: str = "asyncio",
) -> list[Any]:
    """`count` handlers, each creating one task and waiting for it (`tasks.wait`),
    started `stagger` seconds apart; returns each handler's result (task or error)."""

    async def main() -> list[Any]:
        results: list[Any] = [None] * count
        async with client_for(server, interval) as client, server.clock.running():

            async def handler(i: int) -> None:
                await server.clock.sleep(i * stagger)
                task = await client.images.generate(f"prompt {i}")
                try:
                    results[i] = await client.tasks.wait(task, timeout=timeout)
                except Exception as exc:  # noqa: BLE001 - the test looks at it
                    results[i] = exc

            async with anyio.create_task_group() as tg:
                for i in range(count):
                    tg.start_soon(handler, i)
        return results

    return run(main, backend)


def batch(
    server: FakeServer,
    interval: float | None,
    count: int,
    *,
    max_in_flight: int = 32,
    batch_reads: bool = True,
    backend: str = "asyncio",
) -> Any:
    """One `client.batch(...)` of `count` prompts; returns its report."""

    async def main() -> Any:
        async with client_for(server, interval) as client, server.clock.running():
            async with client.batch(max_in_flight=max_in_flight, batch_reads=batch_reads) as b:
                await b.submit_all([f"prompt {i}" for i in range(count)])
            return b.report()

    return run(main, backend)


def generate_many(
    server: FakeServer,
    interval: float | None,
    count: int,
    *,
    videos: bool = False,
    max_in_flight: int = 32,
    backend: str = "asyncio",
) -> Any:
    async def main() -> Any:
        async with client_for(server, interval) as client, server.clock.running():
            resource = client.videos if videos else client.images
            options: dict[str, Any] = {"max_in_flight": max_in_flight}
            if videos:
                options["model"] = "veo3.1-fast"
            return await resource.generate_many([f"prompt {i}" for i in range(count)], **options)

    return run(main, backend)


def fresh(**server_options: Any) -> FakeServer:
    return FakeServer(clock=VirtualClock(), **server_options)


def describe(server: FakeServer) -> str:
    """Figures for a failure message."""
    worst = max(server.tasks.values(), key=lambda t: t.max_gap())
    late = max(server.tasks.values(), key=lambda t: t.lateness())
    return (
        f"{len(server.tasks)} tasks, {server.total_reads()} reads, "
        f"{len(server.read_requests())} read requests; worst gap {worst.max_gap():.3f} s "
        f"({worst.id}, duration {worst.duration:.1f}, reads at "
        f"{[round(t - worst.created, 3) for t in worst.read_times()][:40]}); "
        f"worst lateness {late.lateness():.3f} s ({late.id}, duration {late.duration:.1f})"
    )
