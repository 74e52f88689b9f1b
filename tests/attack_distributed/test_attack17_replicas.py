"""App replicas sharing callbacks through PostgreSQL (in-process apps, real database)."""

from __future__ import annotations

import contextlib
import time

import anyio
import httpx
import psycopg
import pytest
from fastapi import FastAPI

from evolink import AsyncEvolink, ConfigurationError
from evolink.fastapi import EvolinkIntegration
from evolink.testing import Faults, Fixed, Simulator

pytestmark = pytest.mark.anyio

KEY = "sk-evo-" + "Rp7" * 11
PASSWORD = "Db-" + "pw9Kq2Lx"


def _replica(db: str, sim: Simulator, *, grace: float = 60.0) -> tuple[EvolinkIntegration, FastAPI]:
    integration = EvolinkIntegration(
        public_url="https://my.app",
        journal=db,
        callback_grace=grace,
        client_factory=lambda: AsyncEvolink(api_key=KEY, transport=sim.transport()),
    )
    app = FastAPI(lifespan=integration.lifespan)
    app.include_router(integration.callback_router)
    return integration, app


class Router(httpx.AsyncBaseTransport):
    """The simulator's callbacks go to the replica chosen by `target`."""

    def __init__(self) -> None:
        self.apps: list[FastAPI] = []
        self.target = 0
        self.sent: dict[str, float] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        import json  # noqa: PLC0415

        task_id = json.loads(body)["id"]
        self.sent[task_id] = time.monotonic()
        transport = httpx.ASGITransport(app=self.apps[self.target])
        return await transport.handle_async_request(request)


def _with_password(db: str) -> str:
    user_host = db.split("://", 1)[1]
    user, host = user_host.split("@", 1)
    return f"postgresql://{user}:{PASSWORD}@{host}"


async def test_callback_on_one_replica_wakes_waiter_on_another(db: str) -> None:
    """Promise (issue 17 part 4 and 'Done when'; docs/how-to/app-replicas.md): 'a callback
    received by any replica wakes the waiter on the replica that holds it' -- 'every waiter
    wakes within a second of its callback'. The waiters' own reads are pushed out of the
    way (callback_grace 60 s), so only the shared callback can wake them. Also: 'the
    notification holds the task id and the sending replica's id only: never the API key,
    the token or the database password'."""
    url = _with_password(db)
    router = Router()
    sim = Simulator(durations=Fixed(1.5), seed=8, callback_transport=router)
    payloads: list[str] = []
    a, app_a = _replica(url, sim)
    b, app_b = _replica(url, sim)
    c, app_c = _replica(url, sim)
    router.apps = [app_a, app_b, app_c]
    router.target = 1  # every callback goes to replica b
    listener = await psycopg.AsyncConnection.connect(db, autocommit=True)
    await listener.execute("LISTEN evolink_callbacks")

    async def collect() -> None:
        async for note in listener.notifies():
            payloads.append(note.payload)

    woke: dict[str, float] = {}
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(a.lifespan(app_a))
        await stack.enter_async_context(b.lifespan(app_b))
        await stack.enter_async_context(c.lifespan(app_c))
        assert a.callback_url() == b.callback_url() == c.callback_url()
        await stack.enter_async_context(sim)
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect)

            async def one(integration: EvolinkIntegration, i: int) -> None:
                task = await integration.client().images.generate(
                    f"a comet over hills {i}", callback_url=integration.callback_url()
                )
                done = await integration.wait(task.id, timeout=30)
                woke[done.id] = time.monotonic()

            with anyio.fail_after(40):
                async with anyio.create_task_group() as waiters:
                    for i in range(6):
                        waiters.start_soon(one, a if i % 2 else c, i)
            await anyio.sleep(0.3)
            tg.cancel_scope.cancel()
    await listener.close()
    assert len(woke) == 6
    late = {t: round(woke[t] - router.sent[t], 3) for t in woke if woke[t] - router.sent[t] > 1.0}
    assert not late, f"waiters woke more than a second after their callback: {late}"
    assert payloads, "no notification seen"
    token = a.callback_url().rsplit("/", 1)[1]
    for payload in payloads:
        for secret in (KEY, token, PASSWORD):
            assert secret not in payload, payload


async def test_wrong_token_refused_on_every_replica(db: str) -> None:
    """Promise (docs/how-to/app-replicas.md 'The callback secret'): 'Every replica must accept
    the same token ... a delivery with another token is refused with 404.'"""
    sim = Simulator(durations=Fixed(1), seed=9)
    replicas = [_replica(db, sim) for _ in range(3)]
    async with contextlib.AsyncExitStack() as stack:
        for integration, app in replicas:
            await stack.enter_async_context(integration.lifespan(app))
        urls = {integration.callback_url() for integration, _ in replicas}
        assert len(urls) == 1
        good_path = "/" + urls.pop().split("/", 3)[3]
        body = {"id": "task-unified-1234567890-abcdefgh", "status": "completed"}
        for integration, app in replicas:  # noqa: B007
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://replica"
            ) as http:
                wrong = await http.post(good_path[:-3] + "xyz", json=body)
                empty = await http.post(good_path.rsplit("/", 1)[0] + "/", json=body)
                right = await http.post(good_path, json=body)
            assert wrong.status_code == 404
            assert empty.status_code in (404, 405)
            assert right.status_code == 202


async def test_lost_notification_covered_by_polling(db: str) -> None:
    """Promise (docs/how-to/app-replicas.md): 'A lost notification ... is covered by wait's
    own reads: a task whose callback is more than callback_grace seconds past its predicted
    end is read anyway.' Every callback is dropped by the server."""
    sim = Simulator(durations=Fixed(1), seed=10, faults=Faults(callback_drop=1.0))
    a, app_a = _replica(db, sim, grace=1.0)
    async with a.lifespan(app_a), sim:
        task = await a.client().images.generate("a tram at night", callback_url=a.callback_url())
        with anyio.fail_after(20):
            done = await a.wait(task.id)
    assert done.status.value == "completed"


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_replicas_on_trio_raise_configuration_error(db: str) -> None:
    """Promise (docs/how-to/app-replicas.md 'What it does not do'): 'It needs asyncio ... (the
    app's start raises ConfigurationError there).'"""
    sim = Simulator(durations=Fixed(1), seed=12)
    a, app_a = _replica(_with_password(db), sim)
    with pytest.raises(ConfigurationError) as caught:
        async with a.lifespan(app_a):
            pass
    assert PASSWORD not in str(caught.value)


def test_integration_refuses_non_postgres_journal() -> None:
    """Promise (EvolinkIntegration docstring): 'Raises: ConfigurationError: journal is not a
    PostgreSQL URL.'"""
    for bad in ("sqlite:///x.db", "runs.sqlite3", "mysql://db/x", ""):
        with pytest.raises(ConfigurationError):
            EvolinkIntegration(public_url="https://my.app", journal=bad)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://evolink:{PASSWORD}@127.0.0.1:1/nowhere",
        f"postgresql://evolink@127.0.0.1:1/nowhere?password={PASSWORD}",
    ],
    ids=["userinfo", "query"],
)
async def test_unreachable_database_stops_start_without_leaking_password(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Promise (docs/how-to/app-replicas.md): 'A database that cannot be reached when the app
    starts stops the start (ConfigurationError)' and 'never ... the database password, and
    neither do the log lines and errors (the database URL's password is shown as ***)'."""
    sim = Simulator(durations=Fixed(1), seed=16)
    a, app_a = _replica(url, sim)
    caplog.set_level("DEBUG")
    with pytest.raises(ConfigurationError) as caught:
        async with a.lifespan(app_a):
            pass
    text = str(caught.value) + repr(caught.value) + caplog.text + repr(a)
    assert PASSWORD not in text, text
