"""The embedded journal store: one SQLite file (standard library), many runs.

Every write is committed at once in WAL mode with `synchronous=NORMAL`: a killed process
loses nothing it committed (only a power cut may lose the last writes). Calls run on the
event loop, not in a worker thread: a write is a ~30 µs commit (no fsync in this mode),
about five times less than handing it to a thread. The API key is never written here.

Schema 2 adds the run name (and the create's endpoint and model) to schema 1, the CLI's
single-run journal; a schema 1 file is migrated when opened, its rows becoming the run
`DEFAULT_RUN`. Schema 3 adds when each create was sent and the run's uploads of local
files; a schema 2 file gains them when opened. Schema 4 adds the possible-duplicate flag.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from evolink._errors import JournalError
from evolink._journal import (
    DEFAULT_RUN,
    FileRecord,
    InputRecord,
    JournalEntry,
    OutcomeRecord,
    UploadRecord,
    entry_from_row,
    upload_from_row,
)

SCHEMA_VERSION = "4"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (run TEXT PRIMARY KEY, fingerprint TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inputs (
    run TEXT NOT NULL,
    idx INTEGER NOT NULL,
    request TEXT NOT NULL,
    endpoint TEXT,
    model TEXT,
    idempotency_key TEXT,
    task_id TEXT,
    status TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    reserved TEXT,
    charged TEXT,
    results TEXT,
    sent_at REAL,
    possible_duplicate INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run, idx)
);
CREATE TABLE IF NOT EXISTS files (
    run TEXT NOT NULL,
    idx INTEGER NOT NULL,
    number INTEGER NOT NULL,
    url TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (run, idx, number)
);
CREATE TABLE IF NOT EXISTS uploads (
    run TEXT NOT NULL,
    file_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    file_url TEXT NOT NULL,
    expires_at REAL,
    size INTEGER,
    PRIMARY KEY (run, file_id)
);
"""
_ENTRY_COLUMNS = (
    "idx, request, endpoint, model, idempotency_key, task_id, status, error_code,"
    " error_message, reserved, charged, results, sent_at, possible_duplicate"
)


class SQLiteJournal:
    """A journal store in one SQLite file; open with `SQLiteJournal.open(path)`.

    Use it as `async with SQLiteJournal.open(path) as journal:` or close it yourself.
    One process at a time should write a run: SQLite serializes writers, but two processes
    resuming one run would each create its unrecorded inputs.
    """

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SQLiteJournal:
        """Open (or create) the journal file at `path`, migrating an older schema.

        Raises:
            JournalError: the file is not a journal, or one of a newer schema.
        """
        path = Path(path)
        try:
            # Used by one task at a time, but maybe from a blocking client's loop thread.
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open the journal ({exc})") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process
            _migrate(db, path)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise JournalError(f"{path}: not a usable journal ({exc})") from None
        except BaseException:
            db.close()
            raise
        return cls(db, path)

    def close(self) -> None:
        """Close the file (every write is already committed)."""
        self._db.close()

    async def aclose(self) -> None:
        """Close the file (every write is already committed)."""
        self.close()

    async def __aenter__(self) -> SQLiteJournal:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteJournal({str(self.path)!r})"

    # -- JournalStore -----------------------------------------------------------------------

    async def bind_run(self, run: str, fingerprint: str) -> str | None:
        """Tie `run` to `fingerprint`; return the fingerprint it had before."""
        row = self._db.execute("SELECT fingerprint FROM runs WHERE run = ?", (run,)).fetchone()
        self._db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?)", (run, fingerprint))
        return None if row is None else str(row[0])

    async def record_create(self, input: InputRecord, idempotency_key: str) -> None:  # noqa: A002
        """A create is about to be sent (a new key forgets the older key's task and end;
        the same key only moves the time it was sent)."""
        self._db.execute(
            "INSERT INTO inputs (run, idx, request, endpoint, model, idempotency_key, sent_at,"
            " status) VALUES (?, ?, ?, ?, ?, ?, ?, 'creating')"
            " ON CONFLICT (run, idx) DO UPDATE SET request = excluded.request,"
            " endpoint = excluded.endpoint, model = excluded.model,"
            " idempotency_key = excluded.idempotency_key, sent_at = excluded.sent_at,"
            " task_id = NULL, status = 'creating',"
            " error_code = NULL, error_message = NULL, reserved = NULL, charged = NULL,"
            " results = NULL"
            " WHERE inputs.idempotency_key IS NOT excluded.idempotency_key",
            (*_input_values(input), idempotency_key, input.sent_at),
        )
        if input.sent_at is not None:  # sent again under its key: the latest send counts
            self._db.execute(
                "UPDATE inputs SET sent_at = ? WHERE run = ? AND idx = ? AND idempotency_key = ?",
                (input.sent_at, input.run, input.index, idempotency_key),
            )
        if input.possible_duplicate:
            self._db.execute(
                "UPDATE inputs SET possible_duplicate = 1 WHERE run = ? AND idx = ?",
                (input.run, input.index),
            )

    async def record_task(self, input: InputRecord, task_id: str) -> None:  # noqa: A002
        """The create answered with `task_id` (or the task was adopted)."""
        self._db.execute(
            "INSERT INTO inputs (run, idx, request, endpoint, model, task_id, status)"
            " VALUES (?, ?, ?, ?, ?, ?, 'created')"
            " ON CONFLICT (run, idx) DO UPDATE SET task_id = excluded.task_id,"
            " status = 'created'",
            (*_input_values(input), task_id),
        )

    async def record_outcome(self, input: InputRecord, outcome: OutcomeRecord) -> None:  # noqa: A002
        """How the input ended (no task id keeps the one written before)."""
        self._db.execute(
            "INSERT INTO inputs (run, idx, request, endpoint, model, task_id, status,"
            " error_code, error_message, reserved, charged, results, possible_duplicate)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (run, idx) DO UPDATE SET task_id = coalesce(excluded.task_id, task_id),"
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
                _decimal_text(outcome.reserved),
                _decimal_text(outcome.charged),
                json.dumps(list(outcome.results)),
                int(outcome.possible_duplicate),
            ),
        )

    async def record_file(self, run: str, file: FileRecord) -> None:
        """A result is saved under its final name."""
        self._db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
            (run, file.index, file.number, file.url, file.path, file.size),
        )

    async def record_upload(self, run: str, upload: UploadRecord) -> None:
        """`run` uploaded a local file (once per file id)."""
        self._db.execute(
            "INSERT OR IGNORE INTO uploads VALUES (?, ?, ?, ?, ?, ?)",
            (run, *_upload_values(upload)),
        )

    async def entries(self, run: str) -> Mapping[int, JournalEntry]:
        """Every input of `run`, by index."""
        rows = self._db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM inputs WHERE run = ?",  # noqa: S608 - constant columns
            (run,),
        ).fetchall()
        return {row[0]: entry_from_row(run, row) for row in rows}

    async def files(self, run: str) -> Mapping[int, Sequence[FileRecord]]:
        """Saved results of `run`, by input index, in result order."""
        found: dict[int, list[FileRecord]] = {}
        rows = self._db.execute(
            "SELECT idx, number, url, path, size FROM files WHERE run = ? ORDER BY idx, number",
            (run,),
        )
        for idx, number, url, path, size in rows:
            found.setdefault(idx, []).append(
                FileRecord(index=idx, number=number, url=url, path=path, size=size)
            )
        return found

    async def uploads(self, run: str) -> Sequence[UploadRecord]:
        """Every upload of `run`."""
        rows = self._db.execute(
            "SELECT file_id, sha256, file_url, expires_at, size FROM uploads WHERE run = ?",
            (run,),
        ).fetchall()
        return [upload_from_row(row) for row in rows]


def _upload_values(upload: UploadRecord) -> tuple[Any, ...]:
    return (upload.file_id, upload.sha256, upload.file_url, upload.expires_at, upload.size)


def _input_values(input: InputRecord) -> tuple[Any, ...]:  # noqa: A002
    return (input.run, input.index, json.dumps(dict(input.body)), input.endpoint, input.model)


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the file to `SCHEMA_VERSION` (in one transaction), or refuse a newer one.

    Raises:
        JournalError: the file was written by a newer schema.
    """
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    version: str | None = None
    if "meta" in tables:
        found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        version = None if found is None else str(found[0])
    if version not in (None, "1", "2", "3", SCHEMA_VERSION):
        raise JournalError(f"{path}: journal schema {version} is not supported")
    with db:
        db.execute("BEGIN IMMEDIATE")
        # Read under the lock: another process may have migrated the file meanwhile.
        columns = {row[1] for row in db.execute("PRAGMA table_info(inputs)")}
        if "inputs" in tables and "run" not in columns:
            _migrate_from_1(db)
        else:
            if "inputs" in tables and "sent_at" not in columns:
                db.execute("ALTER TABLE inputs ADD COLUMN sent_at REAL")  # schema 2 to 3
            if "inputs" in tables and "possible_duplicate" not in columns:  # 3 to 4
                db.execute(
                    "ALTER TABLE inputs ADD COLUMN possible_duplicate INTEGER NOT NULL DEFAULT 0"
                )
        _create_tables(db)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))


def _create_tables(db: sqlite3.Connection) -> None:
    # `executescript` would commit the open transaction: run the statements one by one.
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def _migrate_from_1(db: sqlite3.Connection) -> None:
    """Schema 1 (the CLI's, one run per file): its rows become the run `DEFAULT_RUN`."""
    db.execute("ALTER TABLE inputs RENAME TO inputs_1")
    db.execute("ALTER TABLE files RENAME TO files_1")
    _create_tables(db)
    for row in db.execute(
        "SELECT idx, request, idempotency_key, task_id, status, error_code, error_message,"
        " reserved, charged, results FROM inputs_1"
    ).fetchall():
        body = json.loads(row[1])
        model = body.get("model") if isinstance(body, dict) else None
        db.execute(
            "INSERT INTO inputs (run, idx, request, endpoint, model, idempotency_key, task_id,"
            " status, error_code, error_message, reserved, charged, results)"
            " VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (DEFAULT_RUN, row[0], row[1], model if isinstance(model, str) else None, *row[2:]),
        )
    db.execute(
        "INSERT INTO files SELECT ?, idx, number, url, path, size FROM files_1", (DEFAULT_RUN,)
    )
    fingerprint = db.execute("SELECT value FROM meta WHERE key = 'fingerprint'").fetchone()
    if fingerprint is not None:
        db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?)", (DEFAULT_RUN, fingerprint[0]))
        db.execute("DELETE FROM meta WHERE key = 'fingerprint'")
    db.execute("DROP TABLE inputs_1")
    db.execute("DROP TABLE files_1")
