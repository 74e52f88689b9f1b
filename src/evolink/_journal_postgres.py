"""The networked journal store: PostgreSQL (psycopg 3, pooled), many runs, many writers.

Each write is one statement in autocommit: durable when it returns, and an upsert on the
record's key `(run, index)`, so workers writing different inputs never wait for each
other. The tables and their migrations are `_postgres`'s. The API key is never written.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from evolink._errors import JournalError
from evolink._journal import (
    FileRecord,
    InputRecord,
    JournalEntry,
    OutcomeRecord,
    UploadRecord,
    entry_from_row,
    upload_from_row,
)
from evolink._postgres import display_url, open_pool

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

#: Whether this writer still owns its inputs, asked inside the transaction that records a
#: create (it may lock what it reads until the create is recorded).
Fence = Callable[["AsyncConnection[Any]"], Awaitable[bool]]

_ENTRY_COLUMNS = (
    "idx, request, endpoint, model, idempotency_key, task_id, status, error_code,"
    " error_message, reserved, charged, results, sent_at, possible_duplicate"
)


class PostgresJournal:
    """A journal store in a PostgreSQL database; open with `await PostgresJournal.open(url)`.

    Use it as `async with await PostgresJournal.open(url) as journal:` or `aclose()` it.
    Several processes may write one run at once, each its own inputs (the workers of
    `evolink worker` do); `pool` is there for other shared state to use the same
    connections. Runs on asyncio (psycopg's async connections).
    """

    def __init__(
        self,
        pool: AsyncConnectionPool,
        url: str,
        *,
        first: int | None = None,
        last: int | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.pool = pool
        self.url = url
        self._fence = fence
        # A window's bounds: `entries` and `files` read only inputs first <= index < last.
        self._first = first
        self._last = last

    @classmethod
    async def open(cls, url: str, *, max_connections: int = 10) -> PostgresJournal:
        """Connect to `url` (`postgresql://...`), creating or migrating the SDK's tables.

        Args:
            url: a libpq URL; `postgres://` works too.
            max_connections: the pool's size.

        Raises:
            JournalError: the `postgres` extra is missing, the database is unreachable,
                or its schema is newer than this SDK's.
        """
        return cls(await open_pool(url, max_size=max_connections), url)

    def window(self, first: int, last: int, *, fence: Fence | None = None) -> PostgresJournal:
        """The same store, reading back only inputs `first` (included) to `last` (excluded).

        A worker's batch over one chunk of a large run reads its own inputs, not the run's
        every record. Writes are not restricted, but with a `fence` nothing is recorded
        unless the fence holds (the worker still owns its job): a worker that was thought
        dead, and whose job another took over, sends no create of its own (so no input is
        created under two keys) and overwrites nothing the new owner wrote. It shares this
        store's pool: close this store, not the window.
        """
        return PostgresJournal(self.pool, self.url, first=first, last=last, fence=fence)

    def whole(self) -> PostgresJournal:
        """The same store reading every input of a run (this one, if not a window).

        A resumed chunk matching its lost creates against the task listing must know the
        run's other inputs too: their tasks are not its own.
        """
        return (
            self if self._first is None else PostgresJournal(self.pool, self.url, fence=self._fence)
        )

    def _bounds(self) -> tuple[str, tuple[int, ...]]:
        if self._first is None or self._last is None:
            return "", ()
        return " AND idx >= %s AND idx < %s", (self._first, self._last)

    async def aclose(self) -> None:
        """Close the pool (every write is already committed)."""
        await self.pool.close()

    async def __aenter__(self) -> PostgresJournal:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"PostgresJournal({display_url(self.url)!r})"

    async def _execute(self, query: str, params: Sequence[Any] | Mapping[str, Any]) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(query, params)

    async def _write(self, query: str, params: Sequence[Any] | Mapping[str, Any]) -> None:
        if self._fence is None:
            await self._execute(query, params)
            return
        async with self.pool.connection() as conn, conn.transaction():
            await self._check_fence(conn)
            await conn.execute(query, params)

    async def _check_fence(self, conn: AsyncConnection[Any]) -> None:
        if self._fence is not None and not await self._fence(conn):
            raise JournalError(
                "this worker's job was taken over by another worker: it records nothing more"
            )

    async def _fetch(
        self, query: str, params: Sequence[Any] | Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    # -- JournalStore -----------------------------------------------------------------------

    async def bind_run(self, run: str, fingerprint: str) -> str | None:
        """Tie `run` to `fingerprint`; return the fingerprint it had before."""
        rows = await self._fetch(
            "WITH old AS (SELECT fingerprint FROM evolink_runs WHERE run = %(run)s),"
            " new AS (INSERT INTO evolink_runs VALUES (%(run)s, %(fingerprint)s)"
            " ON CONFLICT (run) DO UPDATE SET fingerprint = excluded.fingerprint)"
            " SELECT fingerprint FROM old",
            {"run": run, "fingerprint": fingerprint},
        )
        return str(rows[0][0]) if rows else None

    async def record_create(self, input: InputRecord, idempotency_key: str) -> None:  # noqa: A002
        """A create is about to be sent (a new key forgets the older key's task and end;
        the same key only moves the time it was sent).

        Raises:
            JournalError: the window's fence no longer holds (nothing recorded: the create
                must not be sent); every write is fenced alike.
        """
        async with self.pool.connection() as conn, conn.transaction():
            await self._check_fence(conn)
            await conn.execute(
                "INSERT INTO evolink_inputs (run, idx, request, endpoint, model, idempotency_key,"
                " sent_at, status) VALUES (%s, %s, %s, %s, %s, %s, %s, 'creating')"
                " ON CONFLICT (run, idx) DO UPDATE SET request = excluded.request,"
                " endpoint = excluded.endpoint, model = excluded.model,"
                " idempotency_key = excluded.idempotency_key, sent_at = excluded.sent_at,"
                " task_id = NULL, status = 'creating',"
                " error_code = NULL, error_message = NULL, reserved = NULL, charged = NULL,"
                " results = NULL"
                " WHERE evolink_inputs.idempotency_key IS DISTINCT FROM excluded.idempotency_key",
                (*_input_values(input), idempotency_key, input.sent_at),
            )
            if input.sent_at is not None:  # sent again under its key: the latest send counts
                await conn.execute(
                    "UPDATE evolink_inputs SET sent_at = %s"
                    " WHERE run = %s AND idx = %s AND idempotency_key = %s",
                    (input.sent_at, input.run, input.index, idempotency_key),
                )
            if input.possible_duplicate:
                await conn.execute(
                    "UPDATE evolink_inputs SET possible_duplicate = TRUE"
                    " WHERE run = %s AND idx = %s",
                    (input.run, input.index),
                )

    async def record_task(self, input: InputRecord, task_id: str) -> None:  # noqa: A002
        """The create answered with `task_id` (or the task was adopted)."""
        await self._write(
            "INSERT INTO evolink_inputs (run, idx, request, endpoint, model, task_id, status)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'created')"
            " ON CONFLICT (run, idx) DO UPDATE SET task_id = excluded.task_id,"
            " status = 'created'",
            (*_input_values(input), task_id),
        )

    async def record_outcome(self, input: InputRecord, outcome: OutcomeRecord) -> None:  # noqa: A002
        """How the input ended (no task id keeps the one written before)."""
        await self._write(
            "INSERT INTO evolink_inputs (run, idx, request, endpoint, model, task_id, status,"
            " error_code, error_message, reserved, charged, results, possible_duplicate)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (run, idx) DO UPDATE SET"
            " task_id = coalesce(excluded.task_id, evolink_inputs.task_id),"
            " status = excluded.status, error_code = excluded.error_code,"
            " error_message = excluded.error_message, reserved = excluded.reserved,"
            " charged = excluded.charged, results = excluded.results,"
            " possible_duplicate = excluded.possible_duplicate",
            (
                *_input_values(input),
                outcome.task_id,
                outcome.status.value,
                outcome.error_code,
                outcome.error_message,
                outcome.reserved,
                outcome.charged,
                json.dumps(list(outcome.results)),
                outcome.possible_duplicate,
            ),
        )

    async def record_file(self, run: str, file: FileRecord) -> None:
        """A result is saved under its final name."""
        await self._write(
            "INSERT INTO evolink_files VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (run, idx, number) DO UPDATE SET url = excluded.url,"
            " path = excluded.path, size = excluded.size",
            (run, file.index, file.number, file.url, file.path, file.size),
        )

    async def record_upload(self, run: str, upload: UploadRecord) -> None:
        """`run` uploaded a local file (once per file id)."""
        await self._execute(
            "INSERT INTO evolink_uploads (run, file_id, sha256, file_url, expires_at, size)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (run, file_id) DO NOTHING",
            (
                run,
                upload.file_id,
                upload.sha256,
                upload.file_url,
                upload.expires_at,
                upload.size,
            ),
        )

    async def entries(self, run: str) -> Mapping[int, JournalEntry]:
        """Every input of `run`, by index."""
        bounds, values = self._bounds()
        rows = await self._fetch(
            f"SELECT {_ENTRY_COLUMNS} FROM evolink_inputs WHERE run = %s{bounds}",  # noqa: S608 - constant columns
            (run, *values),
        )
        return {row[0]: entry_from_row(run, row) for row in rows}

    async def files(self, run: str) -> Mapping[int, Sequence[FileRecord]]:
        """Saved results of `run`, by input index, in result order."""
        found: dict[int, list[FileRecord]] = {}
        bounds, values = self._bounds()
        rows = await self._fetch(
            f"SELECT idx, number, url, path, size FROM evolink_files WHERE run = %s{bounds}"  # noqa: S608 - constant bounds
            " ORDER BY idx, number",
            (run, *values),
        )
        for idx, number, url, path, size in rows:
            found.setdefault(idx, []).append(
                FileRecord(index=idx, number=number, url=url, path=path, size=size)
            )
        return found

    async def uploads(self, run: str) -> Sequence[UploadRecord]:
        """Every upload of `run` (a window reads them all: they belong to the run)."""
        rows = await self._fetch(
            "SELECT file_id, sha256, file_url, expires_at, size FROM evolink_uploads"
            " WHERE run = %s",
            (run,),
        )
        return [upload_from_row(row) for row in rows]


def _input_values(input: InputRecord) -> tuple[Any, ...]:  # noqa: A002
    return (input.run, input.index, json.dumps(dict(input.body)), input.endpoint, input.model)
