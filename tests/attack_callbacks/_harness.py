"""Wiring for the callback tests: the SDK's client and FastAPI integration over `_server`.

Everything runs on one `VirtualClock` (the fake server's reads, the SDK's waits and the
callbacks the tests send), so a test's timeline is exact and takes no real time; every
scenario is also bounded in *real* time (`anyio.fail_after`), so a hang fails instead of
blocking the suite.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.abc
import httpx
from fastapi import FastAPI

from evolink import AsyncEvolink
from evolink.fastapi import EvolinkIntegration
from evolink.testing import VirtualClock

from ._server import API, KEY, FakeEvolink, FakeTask

PUBLIC = "https://app.example"
SECRET = "cb-secret-token-attack-callbacks-0123456789"
#: Real seconds a scenario may take before it counts as hung.
REAL_LIMIT = 8.0

T = TypeVar("T")


@dataclass
class Delivery:
    at: float
    task_id: str
    status: int
    body_status: str


@dataclass
class Env:
    """A running scenario: the clock, the fake server, the client (and maybe the app)."""

    clock: VirtualClock
    server: FakeEvolink
    client: AsyncEvolink
    tg: anyio.abc.TaskGroup
    integration: EvolinkIntegration | None = None
    hook: httpx.AsyncClient | None = None
    deliveries: list[Delivery] = field(default_factory=list)

    def now(self) -> float:
        return self.clock.monotonic()

    async def sleep_until(self, t: float) -> None:
        if t > self.now():
            await self.clock.sleep(t - self.now())

    # -- callbacks -----------------------------------------------------------------------------

    async def post(
        self, payload: Mapping[str, Any] | bytes, *, token: str = SECRET
    ) -> httpx.Response:
        """Deliver a callback to the app's receiver, as Evolink would (over ASGI)."""
        assert self.hook is not None
        assert self.integration is not None
        url = f"{self.integration.path}/{token}"
        if isinstance(payload, bytes):
            response = await self.hook.post(
                url, content=payload, headers={"content-type": "application/json"}
            )
        else:
            response = await self.hook.post(url, json=dict(payload))
        if not isinstance(payload, bytes):
            self.deliveries.append(
                Delivery(
                    self.now(),
                    str(payload.get("id")),
                    response.status_code,
                    str(payload.get("status")),
                )
            )
        return response

    def post_at(
        self, t: float, payload: Mapping[str, Any] | Callable[[], Mapping[str, Any]]
    ) -> None:
        """Deliver a callback at clock time `t` (a body, or a function making it then)."""

        async def later() -> None:
            await self.sleep_until(t)
            body = payload() if callable(payload) else payload
            await self.post(body)

        self.tg.start_soon(later)

    def genuine_callbacks(
        self, *, delay: float = 0.05, copies: int = 1, spacing: float = 0.01
    ) -> None:
        """From now on, each task created sends its genuine callback `delay` after its end."""

        def on_create(task: FakeTask) -> None:
            if task.ended_at is None:
                return
            for k in range(copies):
                self.post_at(
                    task.ended_at + delay + k * spacing,
                    lambda task=task: self.server.final_body(task.id),
                )

        self.server.on_create.append(on_create)

    async def timed(self, awaitable: Awaitable[T]) -> tuple[T, float]:
        """Await it; return its result and the clock time it returned at."""
        result = await awaitable
        return result, self.now()

    async def timed_outcome(self, awaitable: Awaitable[T]) -> tuple[T | BaseException, float]:
        """Like `timed`, but an exception is returned (for a wait that may raise)."""
        try:
            result: T | BaseException = await awaitable
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            result = exc
        return result, self.now()


def make_client(server: FakeEvolink, **kwargs: Any) -> AsyncEvolink:
    return AsyncEvolink(api_key=KEY, base_url=API, transport=server, clock=server.clock, **kwargs)


@asynccontextmanager
async def plain(server: FakeEvolink, *, limit: float = REAL_LIMIT) -> AsyncIterator[Env]:
    """The client alone (no app), on the server's virtual clock."""
    with anyio.fail_after(limit):
        async with server.clock.running(), make_client(server) as client:
            async with anyio.create_task_group() as tg:
                yield Env(clock=server.clock, server=server, client=client, tg=tg)
                tg.cancel_scope.cancel()


@asynccontextmanager
async def app(
    server: FakeEvolink, *, grace: float = 5.0, limit: float = REAL_LIMIT
) -> AsyncIterator[Env]:
    """A FastAPI app with the integration, its lifespan running, callbacks over ASGI."""
    integration = EvolinkIntegration(
        public_url=PUBLIC,
        secret=SECRET,
        client_factory=lambda: make_client(server),
        callback_grace=grace,
    )
    fastapi_app = FastAPI(lifespan=integration.lifespan)
    fastapi_app.include_router(integration.callback_router)
    with anyio.fail_after(limit):
        async with server.clock.running(), integration.lifespan(fastapi_app):
            transport = httpx.ASGITransport(app=fastapi_app)
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as hook:
                async with anyio.create_task_group() as tg:
                    yield Env(
                        clock=server.clock,
                        server=server,
                        client=integration.client(),
                        tg=tg,
                        integration=integration,
                        hook=hook,
                    )
                    tg.cancel_scope.cancel()


@contextmanager
def captured_logs() -> Iterator[list[logging.LogRecord]]:
    """Every log record of every logger (root at DEBUG), for the key checks."""
    records: list[logging.LogRecord] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = _Keep(level=logging.DEBUG)
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def render(record: logging.LogRecord) -> str:
    """A record as a handler would print it, traceback included."""
    text = record.getMessage()
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    if record.stack_info:
        text += "\n" + record.stack_info
    return text
