"""Where `evolink batch` keeps a run's journal: its output folder, or a PostgreSQL database.

By default the journal is a SQLite file in `--out` (`_run_folder`), the run named
`DEFAULT_RUN`. With `--journal postgresql://...` (and no `--enqueue`) the run is the one
named `--run` in that database, run here, in this process, and resumed with `--resume` from
any machine that reaches the database; its images still land in `--out`.

Either way one run is written by one process at a time: the folder is held (no other run
sweeps its partial files), and a database run is held by a session advisory lock on its
name, which the server frees when the holding connection ends, however the process ends.
A run enqueued for workers is theirs and is refused here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from evolink._errors import JournalError
from evolink._journal import DEFAULT_RUN, JournalStore
from evolink._journal_postgres import PostgresJournal
from evolink._postgres import display_url
from evolink.cli._run_folder import (
    JOURNAL_NAME,
    FolderJournal,
    journal_exists,
    lock_folder,
    unlock_folder,
)

if TYPE_CHECKING:
    from psycopg import AsyncConnection

#: The first key of a run's advisory lock ("evol"); the second is the hash of its name.
#: Two-key locks never meet the one-key lock the schema's migrations take.
RUN_LOCK_CLASS = 0x65766F6C


class RunRefusedError(Exception):
    """The run cannot start as asked (a journal in the way, a changed input)."""


@attrs.frozen(kw_only=True)
class RunJournal:
    """An open journal, the run it is written under, and how messages name them.

    Attributes:
        store: the journal store.
        run: the run's name in it.
        place: what holds it, for messages ("out/", "run 'nightly' in postgresql://db/x").
        elsewhere: how to start a new run instead ("choose another --out").
    """

    store: JournalStore
    run: str
    place: str
    elsewhere: str


@asynccontextmanager
async def open_run_journal(
    out: Path, *, url: str | None, run: str, resume: bool
) -> AsyncIterator[RunJournal]:
    """Open and hold the journal of a run into `out`: the folder's, or `url`'s run `run`.

    Raises:
        RunRefusedError: `resume` with nothing to resume, the run is another process's
            (running, or enqueued for workers).
        JournalError: the folder is another run's, or the journal cannot be used.
    """
    if url is None:
        async with _folder_journal(out, resume=resume) as journal:
            yield journal
    else:
        async with _database_journal(out, url, run, resume=resume) as journal:
            yield journal


@asynccontextmanager
async def _folder_journal(out: Path, *, resume: bool) -> AsyncIterator[RunJournal]:
    if resume and not journal_exists(out):
        # Resuming nothing would silently start the whole (paid) run from scratch.
        raise RunRefusedError(
            f"--resume: {out} holds no journal ({JOURNAL_NAME}) to continue; check --out,"
            " or run without --resume to start a new run there"
        )
    await anyio.Path(out).mkdir(parents=True, exist_ok=True)
    journal = FolderJournal.open(out)  # holds the folder: no other run sweeps or writes it
    try:
        yield RunJournal(
            store=journal.store, run=DEFAULT_RUN, place=str(out), elsewhere="choose another --out"
        )
    finally:
        journal.close()


@asynccontextmanager
async def _database_journal(
    out: Path, url: str, run: str, *, resume: bool
) -> AsyncIterator[RunJournal]:
    await anyio.Path(out).mkdir(parents=True, exist_ok=True)
    folder = lock_folder(out)
    try:
        async with (
            await PostgresJournal.open(url) as store,
            _hold_run(url, run) as held,
        ):
            if await _one(held, "SELECT 1 FROM evolink_run_plans WHERE run = %s", run):
                raise RunRefusedError(
                    f"run {run!r} is enqueued for `evolink worker`s: watch it with"
                    " `evolink status`, or name another --run"
                )
            if resume and not await _one(held, "SELECT 1 FROM evolink_runs WHERE run = %s", run):
                raise RunRefusedError(
                    f"--resume: no run {run!r} in {display_url(url)} to continue; check --run,"
                    " or run without --resume to start it"
                )
            yield RunJournal(
                store=store,
                run=run,
                place=f"run {run!r} in {display_url(url)}",
                elsewhere="name another --run",
            )
    finally:
        unlock_folder(folder)


@asynccontextmanager
async def _hold_run(url: str, run: str) -> AsyncIterator[AsyncConnection[Any]]:
    """A connection of its own holding `run`'s lock; closing it frees the lock.

    Raises:
        RunRefusedError: another process holds the run.
        JournalError: the database cannot be reached.
    """
    import psycopg  # noqa: PLC0415 - the `postgres` extra, there since the journal opened

    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    except psycopg.Error as exc:  # pragma: no cover - the journal's pool just connected
        raise JournalError(f"{display_url(url)}: cannot use the database ({exc})") from None
    async with conn:
        cursor = await conn.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (RUN_LOCK_CLASS, run)
        )
        row = await cursor.fetchone()
        if row is None or not row[0]:
            raise RunRefusedError(
                f"run {run!r} is being run by another evolink process: wait for it, or stop it"
                " first"
            )
        yield conn


async def _one(conn: AsyncConnection[Any], query: str, *params: Any) -> bool:
    cursor = await conn.execute(query, params)
    return await cursor.fetchone() is not None
