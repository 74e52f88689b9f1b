"""Callbacks shared by app replicas over PostgreSQL: LISTEN/NOTIFY and one callback secret.

Evolink sends a task's callback to whichever replica the load balancer picks; the waiter
may be on another. A replica that receives a callback publishes the task id on one
channel (`NOTIFY`); every replica listens on it (one connection each, reconnected when
lost) and wakes its own waiters. A notification is a hint, as the callback is: the replica
that holds a waiter reads the task before anything counts it, so a notification from
anyone with access to the database can cost a read, never a wrong answer. A notification
lost while a listener reconnects is covered by `wait`'s own reads of a late task.

The payload is the task id and the sending replica's id: never the API key, the callback
token or the database password. The callback token that every replica must accept is
either configured (`secret=`) or made once and kept in the database (the first replica to
start writes it; the others read it), so a replica that did not create a task can still
tell a real callback URL from a guess.

The pool (publishing, the secret) is `_postgres.open_pool`'s, so the secret's table is made
by the SDK's schema migrations like every other `evolink_*` table; the listener is one
connection of its own, held for as long as the replica runs. psycopg is imported only when
a PostgreSQL journal is named (the `postgres` extra); its async connections run on asyncio
only.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import sniffio

from evolink._errors import ConfigurationError, EvolinkError, JournalError
from evolink._extras import install_hint
from evolink._ids import TASK_ID_PREFIX, check_task_id
from evolink._postgres import display_url, open_pool

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger("evolink.fastapi")

#: The channel every replica listens on.
CHANNEL = "evolink_callbacks"
#: The table keeping the callback secret the replicas share (one row per callback path;
#: made by `_postgres.MIGRATIONS`).
SECRET_TABLE = "evolink_callback_secret"
#: `application_name` of each replica's listening connection (visible in pg_stat_activity).
LISTENER_NAME = "evolink-replica-listener"
#: Seconds between reconnection attempts of a lost listener (the last one repeats).
RECONNECT_DELAYS: Sequence[float] = (0.2, 0.5, 1.0, 2.0, 5.0)
#: A quiet listener checks its connection this often (a dead peer sends no error).
PING_EVERY = 30.0
#: Seconds to wait for a pooled connection to publish on.
PUBLISH_TIMEOUT = 5.0
#: Connections of a replica's pool (publishing and the secret's reads).
POOL_SIZE = 4
#: Longest task id a payload may name (a payload is at most 8000 bytes).
MAX_TASK_ID = 200


def safe_url(url: str) -> str:
    """`url` with its password hidden, for logs and errors."""
    return display_url(url)


def _psycopg() -> tuple[Any, Any]:
    try:
        import psycopg  # noqa: PLC0415 - optional: the `postgres` extra
        import psycopg_pool  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - the tests have the extra
        raise ConfigurationError(
            f"a PostgreSQL journal needs psycopg, {install_hint('postgres')}"
        ) from exc
    return psycopg, psycopg_pool


class ReplicaChannel:
    """One replica's part in sharing callbacks: a listener, a publisher, the shared secret.

    Made by `open_replica_channel`, which runs the listener for as long as it is open.
    `on_hint(task_id)` is called (on the listener's task) for each task another replica
    heard a callback for.

    Attributes:
        replica_id: this replica's id in payloads (its own notifications are skipped).
        heard: notifications from other replicas taken so far.
        published: notifications sent so far.
        listener_pid: the server process of the listening connection (None while lost).
    """

    def __init__(self, url: str, *, on_hint: Callable[[str], None]) -> None:
        self._url = url
        self._on_hint = on_hint
        self.replica_id = secrets.token_hex(8)
        self.heard = 0
        self.published = 0
        self.listener_pid: int | None = None
        self._pool: AsyncConnectionPool[Any] | None = None

    def __repr__(self) -> str:
        return f"ReplicaChannel({safe_url(self._url)!r}, replica_id={self.replica_id!r})"

    # -- the shared secret ------------------------------------------------------------------

    async def shared_secret(self, path: str) -> str:
        """The callback token for `path` every replica uses: made by the first to ask."""
        candidate = secrets.token_urlsafe(32)
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO {SECRET_TABLE} (path, secret) VALUES (%s, %s)"  # noqa: S608 - a constant
                " ON CONFLICT (path) DO NOTHING",
                (path, candidate),
            )
            cursor = await conn.execute(
                f"SELECT secret FROM {SECRET_TABLE} WHERE path = %s",  # noqa: S608 - a constant
                (path,),
            )
            row = await cursor.fetchone()
        if row is None:  # pragma: no cover - the row was just written or was there
            raise ConfigurationError("the shared callback secret could not be read")
        return str(row[0])

    # -- publishing -------------------------------------------------------------------------

    async def publish(self, task_id: str) -> None:
        """Tell every other replica a callback for `task_id` came here (best effort).

        A failure is logged, not raised: the waiter's own reads cover a lost notification.
        """
        payload = json.dumps({"task": task_id, "from": self.replica_id})
        psycopg, pool_module = _psycopg()
        try:
            async with self._connection() as conn:
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        except (psycopg.Error, pool_module.PoolTimeout) as exc:
            logger.warning(
                "could not tell the other replicas about %s: %s", task_id, type(exc).__name__
            )
            return
        self.published += 1

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        if self._pool is None:  # pragma: no cover - open while the channel is
            raise ConfigurationError("the replica channel is closed")
        async with self._pool.connection(timeout=PUBLISH_TIMEOUT) as conn:
            yield conn

    # -- listening --------------------------------------------------------------------------

    def _take(self, payload: str) -> None:
        """A notification: for another replica's callback, the task id goes to `on_hint`."""
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if not isinstance(data, dict) or data.get("from") == self.replica_id:
            return
        task_id = data.get("task")
        if not isinstance(task_id, str) or not task_id.startswith(TASK_ID_PREFIX):
            return
        if len(task_id) > MAX_TASK_ID:
            return
        try:
            check_task_id(task_id)
        except EvolinkError:
            return
        self.heard += 1
        self._on_hint(task_id)

    async def _connect(self) -> AsyncConnection[Any]:
        psycopg, _ = _psycopg()
        conn: AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, application_name=LISTENER_NAME
        )
        try:
            await conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:  # pragma: no cover - a connection lost in its first moment
            await conn.close()
            raise
        self.listener_pid = conn.info.backend_pid
        return conn

    async def listen(self, conn: AsyncConnection[Any]) -> None:
        """Listen on `conn` (made by `_connect`) until cancelled; reconnect when it is lost."""
        psycopg, _ = _psycopg()
        failures = 0
        while True:
            try:
                while True:
                    async for notify in conn.notifies(timeout=PING_EVERY):
                        self._take(notify.payload)
                    # Quiet for a while: is it still there? A notification that comes
                    # meanwhile waits for the next `notifies()` (psycopg >= 3.2.4).
                    await conn.execute("SELECT 1")
            except psycopg.Error as exc:
                logger.warning("lost the replica listener (%s); reconnecting", type(exc).__name__)
            finally:
                self.listener_pid = None
                with anyio.CancelScope(shield=True):
                    await conn.close()
            while True:
                await anyio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
                failures += 1
                try:
                    conn = await self._connect()
                except psycopg.Error as exc:
                    logger.warning("replica listener: reconnect failed (%s)", type(exc).__name__)
                    continue
                logger.info("replica listener reconnected")
                failures = 0
                break


@asynccontextmanager
async def open_replica_channel(
    url: str, *, on_hint: Callable[[str], None]
) -> AsyncIterator[ReplicaChannel]:
    """Open the pool and the listener of one replica; close both on exit.

    Raises:
        ConfigurationError: psycopg is not installed, the event loop is not asyncio, or
            the database cannot be reached.
    """
    psycopg, _ = _psycopg()
    if sniffio.current_async_library() != "asyncio":
        raise ConfigurationError(
            "a PostgreSQL journal needs asyncio: psycopg's async connections do not run on trio"
        )
    channel = ReplicaChannel(url, on_hint=on_hint)
    try:
        # The listener first: a replica serves only once it hears the others.
        listener = await channel._connect()  # noqa: SLF001 - its own maker
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"cannot connect to {safe_url(url)}: {type(exc).__name__}"
        ) from None
    try:
        # Migrates the schema as well (the secret's table): any replica may be the first.
        pool = await open_pool(url, max_size=POOL_SIZE)
    except JournalError as exc:
        await listener.close()
        raise ConfigurationError(str(exc)) from None  # its URL shown without the password
    except BaseException:  # pragma: no cover - cancelled while connecting
        await listener.close()
        raise
    channel._pool = pool  # noqa: SLF001 - its own maker
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(channel.listen, listener)
            try:
                yield channel
            finally:
                tg.cancel_scope.cancel()
    finally:
        channel._pool = None  # noqa: SLF001
        with anyio.CancelScope(shield=True):
            await pool.close()
