"""The run's durable journal: SQLite (standard library) in the output folder.

Each create is written with its idempotency key *before* it is sent, each task id when the
create answers, each outcome and each finished download as they happen; every write is
committed at once (WAL, so a killed process loses nothing it committed). `--resume` reads it
back to adopt created tasks, reconcile unknown creates by their key, and skip downloads done.
The API key is never written here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import attrs

JOURNAL_NAME = "journal.sqlite3"
_SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inputs (
    idx INTEGER PRIMARY KEY,
    request TEXT NOT NULL,
    idempotency_key TEXT,
    task_id TEXT,
    status TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    reserved TEXT,
    charged TEXT,
    results TEXT
);
CREATE TABLE IF NOT EXISTS files (
    idx INTEGER NOT NULL,
    number INTEGER NOT NULL,
    url TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (idx, number)
);
"""

#: Statuses after which an input needs nothing more from the API.
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "rejected"})


class JournalError(Exception):
    """The journal cannot be used (another run's, corrupt, or a different input)."""


@attrs.frozen
class JournalEntry:
    """What the journal knows of one input."""

    index: int
    request: Mapping[str, Any]
    idempotency_key: str | None
    task_id: str | None
    status: str
    error_code: str | None = None
    error_message: str | None = None
    reserved: Decimal | None = None
    charged: Decimal | None = None
    results: tuple[str, ...] = ()


@attrs.frozen
class FileEntry:
    """A finished download."""

    index: int
    number: int
    url: str
    path: str
    size: int


@attrs.define
class Journal:
    """One run's journal; open with `Journal.open(folder)`."""

    _db: sqlite3.Connection
    path: Path
    _lock: IO[bytes] | None = None

    @classmethod
    def open(cls, folder: Path) -> Journal:
        """Open (or create) the journal in `folder`, alone.

        Raises:
            JournalError: another run holds the folder, or the file is not a journal.
        """
        path = folder / JOURNAL_NAME
        lock = _lock_folder(folder)
        try:
            db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            _unlock(lock)
            raise JournalError(f"{path}: cannot open the journal ({exc})") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            db.close()
            _unlock(lock)
            raise JournalError(f"{path}: not a usable journal ({exc})") from None
        return cls(db, path, lock)

    @staticmethod
    def exists(folder: Path) -> bool:
        """Whether `folder` holds a journal."""
        return (folder / JOURNAL_NAME).exists()

    def close(self) -> None:
        """Close the database (every write is already committed) and free the folder."""
        self._db.close()
        _unlock(self._lock)
        self._lock = None

    # -- the input it belongs to ----------------------------------------------------------

    def bind(self, fingerprint: str, *, resume: bool) -> None:
        """Tie the journal to an input; on resume, refuse a different one.

        Raises:
            JournalError: resuming with an input that changed, or a journal from a newer
                version of this tool.
        """
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        version = meta.get("schema")
        if version is not None and version != _SCHEMA_VERSION:
            raise JournalError(f"{self.path}: journal schema {version} is not supported")
        known = meta.get("fingerprint")
        if resume and known is not None and known != fingerprint:
            raise JournalError(
                "the input changed since this journal was written; resume with the same "
                "file and options, or choose another --out"
            )
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (fingerprint,)
            )

    def has_work(self) -> bool:
        """Whether any input was ever started (a rejected row sent nothing, so it is not)."""
        found = self._db.execute("SELECT 1 FROM inputs WHERE status != 'rejected' LIMIT 1")
        return found.fetchone() is not None

    # -- writes, each committed at once -----------------------------------------------------

    def record_create(self, index: int, request: Mapping[str, Any], key: str) -> None:
        """A create is about to be sent with `key` (a new key forgets an older task)."""
        self._db.execute(
            "INSERT INTO inputs (idx, request, idempotency_key, status)"
            " VALUES (?, ?, ?, 'creating')"
            " ON CONFLICT (idx) DO UPDATE SET idempotency_key = excluded.idempotency_key,"
            " task_id = NULL, status = 'creating'"
            " WHERE inputs.idempotency_key IS NOT excluded.idempotency_key",
            (index, json.dumps(request), key),
        )

    def record_created(self, index: int, request: Mapping[str, Any], task_id: str) -> None:
        """The create answered (or an earlier task was adopted): `task_id` exists."""
        self._db.execute(
            "INSERT INTO inputs (idx, request, task_id, status) VALUES (?, ?, ?, 'created')"
            " ON CONFLICT (idx) DO UPDATE SET task_id = excluded.task_id, status = 'created'",
            (index, json.dumps(request), task_id),
        )

    def record_outcome(
        self,
        index: int,
        request: Mapping[str, Any],
        *,
        status: str,
        task_id: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        reserved: Decimal | None = None,
        charged: Decimal | None = None,
        results: tuple[str, ...] = (),
    ) -> None:
        """How the input ended (an unknown task id keeps the one written before)."""
        self._db.execute(
            "INSERT INTO inputs (idx, request, task_id, status, error_code, error_message,"
            " reserved, charged, results) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (idx) DO UPDATE SET task_id = coalesce(excluded.task_id, task_id),"
            " status = excluded.status, error_code = excluded.error_code,"
            " error_message = excluded.error_message, reserved = excluded.reserved,"
            " charged = excluded.charged, results = excluded.results",
            (
                index,
                json.dumps(request),
                task_id,
                status,
                error_code,
                error_message,
                None if reserved is None else str(reserved),
                None if charged is None else str(charged),
                json.dumps(list(results)),
            ),
        )

    def record_file(self, entry: FileEntry) -> None:
        """An image is on disk under its final name."""
        self._db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
            (entry.index, entry.number, entry.url, entry.path, entry.size),
        )

    # -- reads ------------------------------------------------------------------------------

    def entries(self) -> dict[int, JournalEntry]:
        """Every input the journal knows, by index."""
        rows = self._db.execute(
            "SELECT idx, request, idempotency_key, task_id, status, error_code, error_message,"
            " reserved, charged, results FROM inputs"
        ).fetchall()
        return {
            row[0]: JournalEntry(
                index=row[0],
                request=json.loads(row[1]),
                idempotency_key=row[2],
                task_id=row[3],
                status=row[4],
                error_code=row[5],
                error_message=row[6],
                reserved=None if row[7] is None else Decimal(row[7]),
                charged=None if row[8] is None else Decimal(row[8]),
                results=tuple(json.loads(row[9])) if row[9] else (),
            )
            for row in rows
        }

    def files(self) -> dict[int, list[FileEntry]]:
        """Finished downloads, by input index, in image order."""
        found: dict[int, list[FileEntry]] = {}
        for row in self._db.execute(
            "SELECT idx, number, url, path, size FROM files ORDER BY idx, number"
        ):
            found.setdefault(row[0], []).append(FileEntry(*row))
        return found


LOCK_NAME = ".evolink.lock"


def _lock_folder(folder: Path) -> IO[bytes] | None:
    """Hold the folder's lock: two runs on one journal would each create the same inputs."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        return None
    handle = (folder / LOCK_NAME).open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise JournalError(
            f"another evolink run is using {folder}: wait for it, or stop it first"
        ) from None
    return handle


def _unlock(handle: IO[bytes] | None) -> None:
    if handle is not None:
        handle.close()  # closing the file releases its lock
