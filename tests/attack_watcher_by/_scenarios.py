"""Deterministic client workloads against `FakeServer` on a `VirtualClock`.

Each scenario returns the server (its request log) after running to the end; `extra` is
passed to `AsyncEvolink` (the new code's `max_poll_interval`, say). Importable outside
pytest, so that /tmp scripts can run them on the code before the change too.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from evolink import AsyncEvolink, EvolinkError
from evolink.testing import VirtualClock

from ._server import API, FakeServer, rate_limited, server_error

#: Virtual seconds a fuzz run may last.
HORIZON = 3000.0

Scenario = Callable[[dict[str, Any]], Awaitable[FakeServer]]


def _client(server: FakeServer, clock: VirtualClock, extra: dict[str, Any]) -> AsyncEvolink:
    return AsyncEvolink(
        api_key="sk-evo-attack",
        base_url=API,
        transport=server.transport(),
        clock=clock,
        max_retries=0,
        **extra,
    )


def _spread(i: int, low: float, span: float) -> float:
    """A deterministic scatter in [low, low + span)."""
    return low + ((i * 7919) % 97) / 97 * span


async def gen_many(extra: dict[str, Any], *, batch: bool = True) -> FakeServer:
    clock = VirtualClock()
    server = FakeServer(
        clock,
        duration=lambda i: _spread(i, 8, 25),
        estimate=lambda i: 15 if i % 2 else None,
        batch=batch,
    )
    async with _client(server, clock, extra) as client, clock.running():
        await client.images.generate_many([f"p{i}" for i in range(40)], max_in_flight=10)
    return server


async def gen_many_get(extra: dict[str, Any]) -> FakeServer:
    return await gen_many(extra, batch=False)


async def batch_hurry(extra: dict[str, Any]) -> FakeServer:
    clock = VirtualClock()
    server = FakeServer(clock, duration=lambda i: _spread(i, 5, 60), progress="none")
    async with _client(server, clock, extra) as client, clock.running():
        async with client.batch(max_in_flight=6) as batch:
            for i in range(14):
                await batch.submit(f"p{i}")
    return server


async def _waits(client: AsyncEvolink, tasks: list[Any], *, timeout: float | None = None) -> None:
    async def one(task: Any) -> None:
        with contextlib.suppress(EvolinkError):
            await client.tasks.wait(task, timeout=timeout)

    async with anyio.create_task_group() as tg:
        for task in tasks:
            tg.start_soon(one, task)


async def many_waits(extra: dict[str, Any], *, batch: bool = True) -> FakeServer:
    clock = VirtualClock()
    server = FakeServer(
        clock, duration=lambda i: _spread(i, 10, 40), estimate=lambda i: 30, batch=batch
    )
    async with _client(server, clock, extra) as client, clock.running():
        tasks = []
        for i in range(24):
            tasks.append(await client.images.generate(f"p{i}"))
            await clock.sleep(0.37)
        await _waits(client, tasks)
    return server


async def many_waits_get(extra: dict[str, Any]) -> FakeServer:
    return await many_waits(extra, batch=False)


async def waits_by_id(extra: dict[str, Any]) -> FakeServer:
    clock = VirtualClock()
    server = FakeServer(clock, duration=lambda i: _spread(i, 6, 30), progress="share")
    async with _client(server, clock, extra) as client, clock.running():
        ids = []
        for i in range(12):
            ids.append((await client.images.generate(f"p{i}")).id)
        await clock.sleep(2.0)
        await _waits(client, ids)
    return server


async def mixed(extra: dict[str, Any]) -> FakeServer:
    clock = VirtualClock()
    server = FakeServer(clock, duration=lambda i: _spread(i, 8, 30), estimate=lambda i: 20)
    async with _client(server, clock, extra) as client, clock.running():

        async def run_batch() -> None:
            async with client.batch(max_in_flight=5, batch_reads=False) as batch:
                for i in range(10):
                    await batch.submit(f"b{i}")

        async def run_waits() -> None:
            tasks = []
            for i in range(10):
                tasks.append(await client.images.generate(f"w{i}"))
                await clock.sleep(1.1)
            await _waits(client, tasks)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run_batch)
            tg.start_soon(run_waits)
    return server


def _limited(start: float, stop: float, retry_after: float, *, get_too: bool = True) -> Any:
    def fault(
        _server: FakeServer, method: str, path: str, ids: tuple[str, ...], now: float
    ) -> httpx.Response | None:
        if not path.startswith("/v1/tasks/") or not start <= now < stop:
            return None
        if method == "POST" or (get_too and ids and int(ids[0][13:18]) % 3 == 0):
            return rate_limited(retry_after)
        return None

    return fault


async def rate_limits(extra: dict[str, Any]) -> FakeServer:
    clock = VirtualClock()
    server = FakeServer(
        clock,
        duration=lambda i: _spread(i, 10, 30),
        estimate=lambda i: 18,
        fault=_limited(12.0, 30.0, 4.0),
    )
    async with _client(server, clock, extra) as client, clock.running():
        await client.images.generate_many([f"p{i}" for i in range(30)], max_in_flight=12)
    return server


async def rate_limits_waits(extra: dict[str, Any]) -> FakeServer:
    clock = VirtualClock()
    server = FakeServer(
        clock,
        duration=lambda i: _spread(i, 10, 30),
        estimate=lambda i: 14,
        fault=_limited(10.0, 26.0, 7.0),
    )
    async with _client(server, clock, extra) as client, clock.running():
        tasks = []
        for i in range(16):
            tasks.append(await client.images.generate(f"p{i}"))
            await clock.sleep(0.6)
        await _waits(client, tasks)
    return server


def _errors(start: float, stop: float) -> Any:
    def fault(
        _server: FakeServer, method: str, path: str, ids: tuple[str, ...], now: float
    ) -> httpx.Response | None:
        if not path.startswith("/v1/tasks/") or not start <= now < stop:
            return None
        if method == "POST" and int(now) % 2 == 0:
            return server_error()
        if method == "GET" and ids and int(ids[0][13:18]) % 4 == 1:
            return server_error()
        return None

    return fault


async def server_errors(extra: dict[str, Any]) -> FakeServer:
    clock = VirtualClock()
    server = FakeServer(clock, duration=lambda i: _spread(i, 10, 30), fault=_errors(8.0, 40.0))
    async with _client(server, clock, extra) as client, clock.running():
        await client.images.generate_many([f"p{i}" for i in range(30)], max_in_flight=12)
    return server


async def timeouts(extra: dict[str, Any]) -> FakeServer:
    clock = VirtualClock()
    server = FakeServer(clock, duration=lambda i: 25.0 if i % 3 == 0 else _spread(i, 5, 15))
    async with _client(server, clock, extra) as client, clock.running():
        tasks = []
        for i in range(15):
            tasks.append(await client.images.generate(f"p{i}"))
            await clock.sleep(0.45)
        await _waits(client, tasks, timeout=12.0)
    return server


async def never_ending(extra: dict[str, Any]) -> FakeServer:
    clock = VirtualClock()
    server = FakeServer(clock, duration=lambda i: math.inf if i % 4 == 0 else _spread(i, 20, 60))
    async with _client(server, clock, extra) as client, clock.running():
        await client.images.generate_many(
            [f"p{i}" for i in range(16)], max_in_flight=16, task_deadline=120.0
        )
    return server


async def fastapi_callbacks(extra: dict[str, Any]) -> FakeServer:
    from fastapi import FastAPI  # noqa: PLC0415 - the extra

    from evolink.fastapi import EvolinkIntegration  # noqa: PLC0415

    clock = VirtualClock()
    server = FakeServer(clock, duration=lambda i: _spread(i, 10, 30), estimate=lambda i: 20)
    integration = EvolinkIntegration(
        public_url="https://my.app",
        secret="s" * 32,
        client_factory=lambda: _client(server, clock, extra),
    )
    app = FastAPI(lifespan=integration.lifespan)
    app.include_router(integration.callback_router)
    delivered: set[str] = set()

    async def deliver(hook: httpx.AsyncClient) -> None:
        # Callbacks of even tasks come 0.3 s after their end; odd tasks' are lost.
        while True:
            pending = [
                (server.end_of(t.id) + 0.3, t.id)
                for t in server.tasks.values()
                if t.callback_url and t.id not in delivered and t.index % 2 == 0
            ]
            if not pending:
                await clock.sleep(1.0)
                continue
            at, task_id = min(pending)
            now = clock.monotonic()
            if at > now:
                await clock.sleep(min(at - now, 1.0))
                continue
            delivered.add(task_id)
            task = server.tasks[task_id]
            url = httpx.URL(task.callback_url)
            await hook.post(url.path, json=server.view(task))

    async with integration.lifespan(app), clock.running():
        client = integration.client()
        hook = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://my.app")
        async with hook, anyio.create_task_group() as tg:
            tg.start_soon(deliver, hook)
            tasks = []
            for i in range(12):
                tasks.append(
                    await client.images.generate(f"p{i}", callback_url=integration.callback_url())
                )
                await clock.sleep(0.5)

            async def one(task: Any) -> None:
                with contextlib.suppress(EvolinkError):
                    await integration.wait(task.id, timeout=80)

            async with anyio.create_task_group() as waits:
                for task in tasks:
                    waits.start_soon(one, task)
            tg.cancel_scope.cancel()
    return server


SCENARIOS: dict[str, Scenario] = {
    "gen_many": gen_many,
    "gen_many_get": gen_many_get,
    "batch_hurry": batch_hurry,
    "many_waits": many_waits,
    "many_waits_get": many_waits_get,
    "waits_by_id": waits_by_id,
    "mixed": mixed,
    "rate_limits": rate_limits,
    "rate_limits_waits": rate_limits_waits,
    "server_errors": server_errors,
    "timeouts": timeouts,
    "never_ending": never_ending,
    "fastapi_callbacks": fastapi_callbacks,
}


def _fuzz_fault(rng_seed: int, p429: float, p5xx: float, retry_after: float) -> Any:
    import random  # noqa: PLC0415

    rng = random.Random(rng_seed)

    def fault(
        _server: FakeServer, _method: str, path: str, _ids: tuple[str, ...], _now: float
    ) -> httpx.Response | None:
        if not path.startswith("/v1/tasks/"):
            return None
        roll = rng.random()
        if roll < p429:
            return rate_limited(retry_after)
        if roll < p429 + p5xx:
            return server_error()
        return None

    return fault


async def fuzz(extra: dict[str, Any], seed: int) -> FakeServer:
    """A random (by `seed`) mix of batches, waits, faults and servers."""
    import random  # noqa: PLC0415

    rng = random.Random(seed)
    clock = VirtualClock()
    low, span = rng.choice([(3, 10), (8, 30), (20, 80)])
    never = rng.random() < 0.3
    progress = rng.choice(["linear", "none", "share"])
    estimates = rng.random() < 0.5
    faults = rng.random() < 0.6
    server = FakeServer(
        clock,
        duration=lambda i: math.inf if never and i % 5 == 2 else _spread(i * 3 + seed, low, span),
        estimate=(lambda i: int(low + span / 2)) if estimates else (lambda _i: None),
        progress=progress,
        batch=rng.random() < 0.7,
        latency=rng.choice([0.0, 0.0, 0.05]),
        fault=_fuzz_fault(
            seed, rng.choice([0.05, 0.2]), rng.choice([0.0, 0.1]), rng.choice([1, 3, 10, 25])
        )
        if faults
        else None,
    )
    server.retry_after = 30.0 if faults else 0.0  # the longest a 429 brakes (a bound)
    n_batch = rng.randint(0, 20)
    n_waits = rng.randint(0 if n_batch else 2, 15)
    batch_reads = rng.random() < 0.7
    by_id = rng.random() < 0.4
    timeout = rng.choice([None, None, low * 0.8, low + span / 2])
    deadline = rng.choice([None, (low + span) * 1.5])
    hurry_sizes = rng.choice([3, 8, 32])

    async with _client(server, clock, extra) as client, clock.running():

        async def run_batch() -> None:
            async with client.batch(
                max_in_flight=hurry_sizes, batch_reads=batch_reads, task_deadline=deadline
            ) as batch:
                for i in range(n_batch):
                    await batch.submit(f"b{i}")

        async def run_waits() -> None:
            tasks: list[Any] = []
            for i in range(n_waits):
                task = await client.images.generate(f"w{i}")
                tasks.append(task.id if by_id else task)
                await clock.sleep(rng.choice([0.0, 0.3, 1.7]))
            await _waits(client, tasks, timeout=timeout)

        async def horizon(scope: anyio.CancelScope) -> None:
            await clock.sleep(HORIZON)
            server.log.append((clock.monotonic(), "HORIZON", "", (), 0))
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(horizon, tg.cancel_scope)
            async with anyio.create_task_group() as work:
                if n_batch:
                    work.start_soon(run_batch)
                if n_waits:
                    work.start_soon(run_waits)
            tg.cancel_scope.cancel()
    return server


async def liar(extra: dict[str, Any], *, batch: bool = True, n: int = 20) -> FakeServer:
    """Progress reporting 40 % of the truth, no estimates: the plan reads late."""
    clock = VirtualClock()
    server = FakeServer(clock, duration=lambda i: _spread(i, 20, 40), progress="share", batch=batch)
    async with _client(server, clock, extra) as client, clock.running():
        await client.images.generate_many([f"p{i}" for i in range(n)], max_in_flight=n)
    return server


async def liar_get(extra: dict[str, Any]) -> FakeServer:
    return await liar(extra, batch=False, n=12)


SCENARIOS.update({"liar": liar, "liar_get": liar_get})
