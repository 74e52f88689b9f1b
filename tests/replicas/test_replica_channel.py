"""App replicas over a real PostgreSQL: a callback heard by one wakes the waiter on another."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import httpx
import pytest
from fastapi import FastAPI

from _held_read import HeldFirstRead
from _postgres import fresh_database
from evolink import AsyncEvolink, ConfigurationError, GenerationRequest
from evolink import _replicas as replicas
from evolink._postgres import SCHEMA_VERSION
from evolink.fastapi import EvolinkIntegration
from evolink.testing import TEST_API_KEY, Fixed, Simulator

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.anyio

#: Trust authentication ignores it; it must never show in a log line or an error.
PASSWORD = "hunter2-db-password"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # psycopg's async connections run on asyncio only


@pytest.fixture
def database(postgres_url: str) -> str:
    """The test server's URL, with a password in it (to prove it is never shown)."""
    return postgres_url.replace("evolink@", f"evolink:{PASSWORD}@")


@pytest.fixture
def sim() -> Simulator:
    # Callbacks are posted by the tests themselves (no `async with sim`): to the replica
    # each test chooses, at the moment it chooses.
    return Simulator(durations=Fixed(1.0), pending_time=0.1, seed=5)


def replica(sim: Simulator, database: str, **options: object) -> EvolinkIntegration:
    return EvolinkIntegration(
        public_url="https://my.app",
        journal=database,
        client_factory=lambda: AsyncEvolink(
            api_key=TEST_API_KEY, base_url="https://sim.test", transport=sim.transport()
        ),
        **options,  # type: ignore[arg-type]
    )


@asynccontextmanager
async def running(*integrations: EvolinkIntegration) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Start each replica's lifespan; yield an HTTP client into each app."""
    async with AsyncExitStack() as stack:
        webs = []
        for integration in integrations:
            app = FastAPI(lifespan=integration.lifespan)
            app.include_router(integration.callback_router)
            await stack.enter_async_context(integration.lifespan(app))
            webs.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=app), base_url="https://my.app"
                    )
                )
            )
        yield webs


async def deliver(web: httpx.AsyncClient, url: str, task_id: str) -> int:
    """POST the callback Evolink would send for `task_id` to `url` (on one replica)."""
    path = httpx.URL(url).path
    answer = await web.post(path, json={"id": task_id, "status": "completed"})
    return answer.status_code


async def until(condition: object, timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():  # type: ignore[operator]
            await anyio.sleep(0.01)


async def test_a_callback_to_one_replica_wakes_the_waiter_on_another(sim, database):
    """The replica that holds the waiter wakes within a second of a callback that
    reached another replica; only it reads the task (the receiver has no waiter)."""
    a, b = replica(sim, database), replica(sim, database, callback_grace=60.0)
    async with running(a, b) as (web_a, _):
        task = await a.client().images.generate("a fox", callback_url=a.callback_url())
        woke: list[float] = []

        async def waiter() -> None:
            done = await b.wait(task.id)
            woke.append(time.monotonic())
            assert done.is_success

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(sim.task(task.id).duration + 0.1)
            sent = time.monotonic()
            assert 202 == await deliver(web_a, a.callback_url(), task.id)
        assert b._replicas is not None
        heard = b._replicas.heard
    assert woke[0] - sent < 1.0  # with a grace of 60 s, only the notification explains it
    assert 1 == heard
    assert task.id not in a._done  # the receiver, holding no waiter, read nothing


async def test_replicas_share_the_callback_secret_from_the_database(sim, database, caplog):
    """Without `secret=`, every replica takes the one the first wrote to the database: a
    callback URL made by one is accepted by all, a wrong token by none; the NOTIFY payload
    holds the task id and the replica's id, never the key, the token or the password."""
    caplog.set_level(logging.DEBUG)
    a, b = replica(sim, database), replica(sim, database)
    payloads: list[str] = []
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as spy:
        await spy.execute(f"LISTEN {replicas.CHANNEL}")
        async with running(a, b) as (web_a, web_b):
            url = b.callback_url()
            assert a.callback_url() == url
            assert a._replicas is not None
            a_id = a._replicas.replica_id
            task = await a.client().images.generate("an owl", callback_url=url)
            assert 202 == await deliver(web_a, url, task.id)
            wrong = url[:-4] + "AAAA"
            assert (404, 404) == (
                await deliver(web_a, wrong, task.id),
                await deliver(web_b, wrong, task.id),
            )
            async for notify in spy.notifies(timeout=5, stop_after=1):
                payloads.append(notify.payload)
        later = replica(sim, database)  # restarted: the same secret, so old URLs still work
        async with running(later):
            assert url == later.callback_url()
    token = url.rsplit("/", 1)[1]
    [payload] = payloads
    assert {"task": task.id, "from": a_id} == json.loads(payload)
    logs = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("evolink"))
    for secret in (TEST_API_KEY, token, PASSWORD):
        assert secret not in payload
        assert secret not in logs
    assert (1, 1) == (a.rejected, b.rejected)


async def test_a_configured_secret_is_used_as_it_is(sim, database):
    """`secret=` wins over the database's: replicas configured alike agree."""
    a = replica(sim, database, secret="configured-secret-0123456789abcdef")  # noqa: S106
    async with running(a):
        assert a.callback_url().endswith("/configured-secret-0123456789abcdef")


async def test_a_notification_that_overtakes_the_first_read_wakes_the_waiter(database):
    """The waiter's first read says "running"; the callback, heard by another replica,
    reaches the waiter's replica while that answer is still on its way back. The waiter
    wakes at the notification, not at the grace (60 s) past the predicted end."""
    # Half way through a 6 s task, the late answer ("half done") extrapolates an end at
    # 12 s or later: the waiter would read again then, the grace added after that.
    sim = Simulator(durations=Fixed(6.0), pending_time=0.1, seed=5)
    held = HeldFirstRead(sim.transport())
    a = replica(sim, database)
    b = EvolinkIntegration(
        public_url="https://my.app",
        journal=database,
        callback_grace=60.0,
        client_factory=lambda: AsyncEvolink(
            api_key=TEST_API_KEY, base_url="https://sim.test", transport=held
        ),
    )
    async with running(a, b) as (web_a, _):
        task = await a.client().images.create(GenerationRequest(prompt="a fox"))
        woke: list[float] = []

        async def waiter() -> None:
            done = await b.wait(task.id)
            woke.append(time.monotonic())
            assert done.is_success

        await anyio.sleep(3.0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await held.held.wait()
            await anyio.sleep(3.2)  # the task ends
            sent = time.monotonic()
            assert 202 == await deliver(web_a, a.callback_url(), task.id)
            assert b._replicas is not None
            replica_b = b._replicas
            await until(lambda: replica_b.heard == 1)
            held.release.set()
    assert woke[0] - sent < 2.0


async def test_a_lost_notification_is_covered_by_polling(sim, database, monkeypatch, caplog):
    """The listener's connection is killed, the callback's notification is sent while it
    is down and lost: the waiter still ends, by reading the task once it is late. The
    listener reconnects, and the next callback wakes its waiter by notification again."""
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(replicas, "RECONNECT_DELAYS", (3.0,))
    a, b = replica(sim, database), replica(sim, database, callback_grace=0.3)
    async with running(a, b) as (web_a, _):
        assert b._replicas is not None
        channel = b._replicas
        first_pid = channel.listener_pid
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (first_pid,))
        await until(lambda: channel.listener_pid is None)
        task = await a.client().images.generate("a heron", callback_url=a.callback_url())
        results = []
        async with anyio.create_task_group() as tg:

            async def waiter() -> None:
                results.append(await b.wait(task.id, timeout=10))

            tg.start_soon(waiter)
            await anyio.sleep(sim.task(task.id).duration + 0.05)
            assert 202 == await deliver(web_a, a.callback_url(), task.id)
        assert results[0].is_success
        assert 0 == channel.heard  # the notification was lost: polling found the end
        assert a._replicas is not None
        assert 1 == a._replicas.published

        await until(lambda: channel.listener_pid is not None)
        assert first_pid != channel.listener_pid
        again = await a.client().images.generate("a crane", callback_url=a.callback_url())
        b.callback_grace = 60.0
        async with anyio.create_task_group() as tg:
            tg.start_soon(b.wait, again.id)
            await anyio.sleep(sim.task(again.id).duration + 0.05)
            assert 202 == await deliver(web_a, a.callback_url(), again.id)
        assert 1 == channel.heard
    assert any("reconnected" in r.getMessage() for r in caplog.records)
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


async def test_an_unreachable_database_is_a_configuration_error(sim, postgres_url):
    """A database that does not answer stops the app's start, without its password."""
    closed = postgres_url.rsplit(":", 1)[0] + ":1/postgres"
    integration = replica(sim, closed.replace("evolink@", f"evolink:{PASSWORD}@"))
    with pytest.raises(ConfigurationError, match="cannot connect") as caught:
        async with running(integration):
            pass
    assert PASSWORD not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_is_refused_with_a_reason(sim, anyio_backend):
    """psycopg's async connections need asyncio: on trio the app does not start."""
    integration = replica(sim, "postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(ConfigurationError, match="asyncio"):
        async with running(integration):
            pass


def test_journal_takes_only_a_postgresql_url(sim):
    """A journal that is not a PostgreSQL URL is refused when the integration is made."""
    with pytest.raises(ConfigurationError, match="PostgreSQL URL"):
        replica(sim, "/tmp/journal.sqlite")  # noqa: S108 - never opened


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("{not json", id="not-json"),
        pytest.param("[1]", id="not-an-object"),
        pytest.param('{"task": "task-unified-1-a", "from": "me"}', id="its-own"),
        pytest.param('{"task": 7, "from": "other"}', id="task-not-a-string"),
        pytest.param('{"task": "other-1", "from": "other"}', id="not-a-task-id"),
        pytest.param('{"task": "task-unified-../x", "from": "other"}', id="path-in-id"),
        pytest.param(json.dumps({"task": "task-unified-" + "a" * 300}), id="too-long"),
    ],
)
def test_a_notification_that_is_not_a_hint_is_ignored(payload):
    """Anyone with the database can NOTIFY: only another replica's task id counts."""
    hints: list[str] = []
    channel = replicas.ReplicaChannel("postgresql://x@127.0.0.1/db", on_hint=hints.append)
    channel.replica_id = "me"
    channel._take(payload)
    channel._take('{"task": "task-unified-1757156493-abc", "from": "other"}')
    assert ["task-unified-1757156493-abc"] == hints
    assert 1 == channel.heard
    assert "x@127.0.0.1" in repr(channel)


def test_safe_url_hides_the_password():
    """Log lines and errors show the database URL with its password masked."""
    assert "postgresql://app:***@db:5432/x" == replicas.safe_url("postgresql://app:pw@db:5432/x")
    assert "postgresql://db/x" == replicas.safe_url("postgresql://db/x")


async def test_a_failed_publish_is_logged_and_covered(sim, database, monkeypatch, caplog):
    """A notification that cannot be sent is logged (without secrets), never raised: the
    callback is still answered 202, and the waiter's reads cover it."""
    a = replica(sim, database)
    async with running(a) as (web_a,):
        monkeypatch.setattr(replicas, "CHANNEL", "")  # pg_notify refuses an empty channel
        task = await a.client().images.generate("a wren", callback_url=a.callback_url())
        assert 202 == await deliver(web_a, a.callback_url(), task.id)
        await until(lambda: any("could not tell" in r.getMessage() for r in caplog.records))
        assert a._replicas is not None
        assert 0 == a._replicas.published
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


async def test_a_batch_on_another_replica_hears_the_callback(sim, database):
    """A batch started on one replica is fed a callback another replica received (the
    hint: the batch confirms it with a read of its own)."""
    a, b = replica(sim, database), replica(sim, database)
    async with running(a, b) as (web_a, _):
        batch = b.batch(b.start_batch(["a lark"]))
        await until(lambda: sim.tasks)
        [task_id] = list(sim.tasks)
        await anyio.sleep(sim.task(task_id).duration + 0.05)
        assert 202 == await deliver(web_a, a.callback_url(), task_id)
        assert b._replicas is not None
        channel = b._replicas
        # The batch reads its tasks on its own schedule too: it may end before the hint.
        await until(lambda: batch.finished and channel.heard == 1)
    assert ["completed"] == [o.kind.value for o in batch.report().outcomes]


async def test_the_listener_keeps_trying_and_checks_a_quiet_connection(
    sim, database, monkeypatch, caplog
):
    """A quiet listener checks its connection; a reconnection that fails is tried again
    until one succeeds, and the replica hears the others once more."""
    monkeypatch.setattr(replicas, "RECONNECT_DELAYS", (0.05,))
    monkeypatch.setattr(replicas, "PING_EVERY", 0.05)
    a, b = replica(sim, database), replica(sim, database, callback_grace=60.0)
    async with running(a, b) as (web_a, _):
        assert b._replicas is not None
        channel = b._replicas
        connect = channel._connect
        attempts: list[int] = []

        async def flaky() -> object:
            attempts.append(1)
            if len(attempts) < 3:
                raise psycopg.OperationalError("refused")
            return await connect()

        monkeypatch.setattr(channel, "_connect", flaky)
        await anyio.sleep(0.2)  # a few quiet checks
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (channel.listener_pid,))
        await until(lambda: len(attempts) == 3 and channel.listener_pid is not None)
        task = await a.client().images.generate("a finch", callback_url=a.callback_url())
        async with anyio.create_task_group() as tg:
            tg.start_soon(b.wait, task.id)
            await anyio.sleep(sim.task(task.id).duration + 0.05)
            assert 202 == await deliver(web_a, a.callback_url(), task.id)
        assert 1 == channel.heard
    assert 2 == sum("reconnect failed" in r.getMessage() for r in caplog.records)


def test_the_callback_url_waits_for_the_shared_secret(sim, database):
    """Without `secret=`, the callback URL exists once the lifespan has read the secret."""
    with pytest.raises(ConfigurationError, match="lifespan"):
        replica(sim, database).callback_url()


async def test_the_secret_an_earlier_replica_kept_survives_the_migration(sim, postgres_url):
    """A database whose secret table a replica of an earlier SDK made (no `evolink_schema`
    then): the SDK's migrations take the table over, and the secret in it stays the one
    every replica uses (callback URLs already given out keep working)."""
    database = fresh_database(postgres_url)
    kept = "kept-by-an-earlier-replica-0123456789"
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        await conn.execute(  # the table as earlier replicas made it
            "CREATE TABLE evolink_callback_secret (path text PRIMARY KEY,"
            " secret text NOT NULL, created timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute(
            "INSERT INTO evolink_callback_secret (path, secret) VALUES (%s, %s)",
            ("/evolink/callbacks", kept),
        )
    a = replica(sim, database)
    async with running(a):
        assert a.callback_url().endswith("/" + kept)
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        cursor = await conn.execute("SELECT version FROM evolink_schema")
        assert [(SCHEMA_VERSION,)] == await cursor.fetchall()


async def test_no_notification_is_lost_while_the_listener_checks_its_connection(
    database, monkeypatch
):
    """A listener that checks its connection between every wait (the check is a query,
    during which notifications arrive and, with psycopg before 3.2.4, were dropped) still
    hears every notification sent to it."""
    monkeypatch.setattr(replicas, "PING_EVERY", 0.0005)
    heard: list[str] = []
    sent = [f"task-unified-{i}" for i in range(300)]
    async with replicas.open_replica_channel(database, on_hint=heard.append) as channel:
        listener = channel.listener_pid
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as peer:
            for task_id in sent:
                payload = json.dumps({"task": task_id, "from": "another-replica"})
                await peer.execute("SELECT pg_notify(%s, %s)", (replicas.CHANNEL, payload))
                await anyio.sleep(0.0002 * (len(heard) % 3))
        await until(lambda: len(heard) == len(sent))
        assert listener == channel.listener_pid  # one connection throughout
    assert sent == heard
