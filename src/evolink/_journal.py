"""The journal of a resumable run: what a store must keep, and the values it keeps.

A run is named (`run`); one store holds many. For each input of a run (by its index) the
store keeps the *latest* record: its create (written before it is sent, with its
idempotency key), the task the create answered with, and how it ended. `_resume.plan`
reads that back to decide what a second run does with each input.

`JournalStore` is the protocol a store implements. It has no notion of connections, rows
or transactions, and every method is async, so a networked database with several writers
implements it as well as the embedded SQLite one (`_journal_sqlite.SQLiteJournal`). Its
promises, for every method on one `(run, index)`:

- `record_create` with a new key forgets the task and outcome of the older key (a new
  create replaces the input's story); with the same key it changes nothing already known
  but the time it was sent (`sent_at`, when given: the latest send is the one whose task
  the listing may show).
- `record_task` and `record_outcome` keep the key; an outcome that names no task keeps the
  task known before.
- writes to different inputs or runs are independent (several workers may write at once).
- `record_upload` keeps every upload of a run (one per file id); `uploads` reads them all
  back, so a resumed run reuses what the run before uploaded.

`tests/journal/_journal_contract.py` checks these promises for any store.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

import attrs

from evolink._errors import ValidationError

#: The run of a journal used without naming one (the CLI's, and `batch(journal=...)`'s).
DEFAULT_RUN = "default"
#: The longest run name: it is a key in every store, and it is typed back by people.
MAX_RUN_NAME = 200


def check_run_name(run: object) -> str:
    """Return `run` if it can name a run, else raise `ValidationError` (nothing is sent).

    A name is what `evolink status --run NAME` is typed with: printable text, not blank,
    without spaces around it, at most `MAX_RUN_NAME` characters.
    """
    if not isinstance(run, str) or not run.strip():
        raise ValidationError("run", "not_empty", "name the run (printable text, not blank)")
    if run != run.strip() or not run.isprintable():
        raise ValidationError(
            "run", "format", "a run's name has no control characters and no spaces around it"
        )
    if len(run) > MAX_RUN_NAME:
        raise ValidationError(
            "run", "max_length", f"a run's name is at most {MAX_RUN_NAME} characters"
        )
    return run


class EntryStatus(str, enum.Enum):
    """Where an input of a run stands, as last recorded."""

    #: Its create is about to be sent (or was sent, its answer unknown): the key finds it.
    CREATING = "creating"
    #: The create answered: the task exists.
    CREATED = "created"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    UNCERTAIN = "uncertain"
    ABANDONED = "abandoned"
    #: The task completed but its files could not all be saved (the CLI's).
    DOWNLOAD_FAILED = "download_failed"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        """Whether the input needs nothing more from the API."""
        return self in _FINAL


_FINAL = frozenset(
    {EntryStatus.COMPLETED, EntryStatus.FAILED, EntryStatus.CANCELLED, EntryStatus.REJECTED}
)


def _frozen_body(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


@attrs.frozen(kw_only=True)
class InputRecord:
    """Which input a write is about: its run, index and request.

    Attributes:
        run: the run's name.
        index: the input's place in the run (0-based).
        body: the JSON body of its create, as sent.
        endpoint: the create's path (`/v1/images/generations`), None if unknown.
        model: the request's model, None if unknown.
        sent_at: when its create was recorded, just before it was sent (Unix time on the
            client's clock; `record_create` only), or sent again after attempts that were
            all refused (`record_create` once more, same key): a task the listing shows
            created about then, of the same model, may be the one it made.
        possible_duplicate: (`record_create` only) the create is being resent after an
            attempt of unknown fate on a server not shown to honour keys: the store sets
            the input's flag (see `OutcomeRecord`) before the resend leaves.
    """

    run: str
    index: int
    body: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_body)
    endpoint: str | None = None
    model: str | None = None
    sent_at: float | None = None
    possible_duplicate: bool = False


@attrs.frozen(kw_only=True)
class OutcomeRecord:
    """How an input ended (or stopped: `uncertain`, `abandoned` and `skipped` are not final).

    Attributes:
        status: how it ended.
        task_id: its task; None keeps the one recorded before.
        error_code / error_message: why it failed, if it did.
        reserved / charged: its task's credits, where known.
        results: its result URLs, once completed.
        possible_duplicate: a create of it was resent after an attempt of unknown fate on
            a server not shown to honour keys: a second task may have been made. The
            outcome's value replaces the flag `record_create` set (a batch carries an
            earlier run's flag into its outcome, and clears its own once the server
            proves it replays keys).
    """

    status: EntryStatus
    task_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    reserved: Decimal | None = None
    charged: Decimal | None = None
    results: tuple[str, ...] = ()
    possible_duplicate: bool = False


@attrs.frozen(kw_only=True)
class FileRecord:
    """A result saved to disk under its final name (`number` from 1, in result order)."""

    index: int
    number: int
    url: str
    path: str
    size: int


@attrs.frozen(kw_only=True)
class UploadRecord:
    """A local file a run uploaded: its content's hash and what the files API answered.

    Attributes:
        sha256: the content's sha256 (hex).
        file_id: the files API's id of the upload.
        file_url: the URL sent in place of the file.
        expires_at: when the files API deletes it (Unix time), None if it did not say.
        size: bytes, None if unknown.
    """

    sha256: str
    file_id: str
    file_url: str
    expires_at: float | None = None
    size: int | None = None


@attrs.frozen(kw_only=True)
class JournalEntry:
    """The latest record of one input of a run."""

    run: str
    index: int
    status: EntryStatus
    body: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_body)
    endpoint: str | None = None
    model: str | None = None
    idempotency_key: str | None = None
    task_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    reserved: Decimal | None = None
    charged: Decimal | None = None
    results: tuple[str, ...] = ()
    #: When its create was last sent (Unix time), None if the store kept no time.
    sent_at: float | None = None
    #: Some run recorded it as a possible duplicate (see `OutcomeRecord`).
    possible_duplicate: bool = False


@runtime_checkable
class JournalStore(Protocol):
    """Where a resumable run keeps its records; see the module docstring for the promises.

    Every write must be durable when it returns: `record_create` is awaited before the
    create is sent, and a crash right after it must leave the key to be found.
    """

    async def bind_run(self, run: str, fingerprint: str) -> str | None:
        """Tie `run` to its input's `fingerprint`; return the one it had before (or None)."""
        ...

    async def record_create(self, input: InputRecord, idempotency_key: str) -> None:  # noqa: A002 - the record's name
        """A create is about to be sent under `idempotency_key`."""
        ...

    async def record_task(self, input: InputRecord, task_id: str) -> None:  # noqa: A002
        """The create answered (or a known task was adopted): `task_id` exists."""
        ...

    async def record_outcome(self, input: InputRecord, outcome: OutcomeRecord) -> None:  # noqa: A002
        """How the input ended."""
        ...

    async def record_file(self, run: str, file: FileRecord) -> None:
        """A result of the input `file.index` is saved."""
        ...

    async def record_upload(self, run: str, upload: UploadRecord) -> None:
        """`run` uploaded a local file (kept by `upload.file_id`: recording it again
        changes nothing)."""
        ...

    async def entries(self, run: str) -> Mapping[int, JournalEntry]:
        """Every input of `run` the store knows, by index (its latest record)."""
        ...

    async def files(self, run: str) -> Mapping[int, Sequence[FileRecord]]:
        """The saved results of `run`, by input index, in `number` order."""
        ...

    async def uploads(self, run: str) -> Sequence[UploadRecord]:
        """Every upload `run` recorded, in no particular order."""
        ...


def _status(value: str) -> EntryStatus:
    try:
        return EntryStatus(value)
    except ValueError:
        # Written by a newer version: treat it as an input whose story is unknown.
        return EntryStatus.UNCERTAIN


def entry_from_row(run: str, row: Sequence[Any]) -> JournalEntry:
    """A `JournalEntry` from an SQL store's row: index, body JSON, endpoint, model, key,
    task id, status, error code and message, reserved, charged, results JSON, then the
    time the create was sent and the possible-duplicate flag if the row has them (SQLite
    and PostgreSQL keep the same columns)."""
    (idx, request, endpoint, model, key, task_id, status, code, message, reserved, charged) = row[
        :11
    ]
    results = row[11]
    sent_at = row[12] if len(row) > 12 else None
    possible_duplicate = bool(row[13]) if len(row) > 13 else False
    body = json.loads(request)
    return JournalEntry(
        run=run,
        index=idx,
        status=_status(status),
        body=body if isinstance(body, dict) else {},
        endpoint=endpoint,
        model=model,
        idempotency_key=key,
        task_id=task_id,
        error_code=code,
        error_message=message,
        reserved=None if reserved is None else Decimal(reserved),
        charged=None if charged is None else Decimal(charged),
        results=tuple(json.loads(results)) if results else (),
        sent_at=None if sent_at is None else float(sent_at),
        possible_duplicate=possible_duplicate,
    )


def upload_from_row(row: Sequence[Any]) -> UploadRecord:
    """An `UploadRecord` from an SQL store's row: file id, sha256, URL, expiry, size."""
    file_id, sha256, url, expires_at, size = row
    return UploadRecord(
        sha256=sha256,
        file_id=file_id,
        file_url=url,
        expires_at=None if expires_at is None else float(expires_at),
        size=None if size is None else int(size),
    )
