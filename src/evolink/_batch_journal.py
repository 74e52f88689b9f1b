"""A batch's link to its journal: one run, its records read at the start, writes in order.

The batch calls it from synchronous code (an outcome arrives in a watcher callback), so
writes are queued and one task writes them, in the order they happened: a task id is never
written after the outcome that follows it, even by a store whose writes take turns over a
network. A create is the exception that waits: `create` returns once the record (and
everything queued before it) is written, and only then is the create sent. An upload of a
local file is queued like the rest, so it is written before any create that names its URL.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import anyio
import attrs

from evolink._journal import (
    EntryStatus,
    InputRecord,
    JournalEntry,
    JournalStore,
    OutcomeRecord,
    UploadRecord,
)
from evolink._journal_sqlite import SQLiteJournal
from evolink._postgres import is_postgres_url

if TYPE_CHECKING:
    from evolink._models import GenerationRequest
    from evolink._outcomes import Outcome
#: Seconds a stopping batch spends writing what is still queued (shielded from the
#: cancellation that stopped it). A write lost here is re-read or resent by the next run.
DRAIN_SECONDS = 10.0

JournalLike = JournalStore | str | os.PathLike[str]

_Write = Callable[[], Awaitable[None]]


class _OwnedStore(JournalStore, Protocol):
    async def aclose(self) -> None: ...


async def open_store(journal: JournalLike) -> tuple[JournalStore, _OwnedStore | None]:
    """The store for `journal`, and the one opened here (to close after): a
    `postgresql://` URL opens a `PostgresJournal`, any other path an SQLite file.

    Raises:
        JournalError: the file or database is not a usable journal.
    """
    if is_postgres_url(journal):
        from evolink._journal_postgres import PostgresJournal  # noqa: PLC0415 - optional extra

        store = await PostgresJournal.open(str(journal))
        return store, store
    if isinstance(journal, (str, os.PathLike)):
        owned = SQLiteJournal.open(journal)
        return owned, owned
    return journal, None


class BatchJournal:
    """The journal of one batch's run; see the module docstring."""

    def __init__(
        self,
        store: JournalStore,
        run: str,
        entries: Mapping[int, JournalEntry],
        *,
        owned: _OwnedStore | None = None,
        uploads: Sequence[UploadRecord] = (),
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.run = run
        #: What the run held when this batch began, by input index.
        self.entries = entries
        #: The local files the run had uploaded when this batch began.
        self.uploads = uploads
        self._now = now  # Unix time, for when each create is sent
        #: Whether the store records uploads (see `keeps_uploads`).
        self.keeps_uploads = keeps_uploads(store)
        self._owned = owned
        self._queue: deque[tuple[_Write, anyio.Event | None]] = deque()
        self._wake = anyio.Event()
        self._indexes: dict[int, int] = {}  # batch index -> the input's index in the run
        self.error: Exception | None = None
        #: Called once with the first write that failed (the batch stops on it).
        self.on_error: Callable[[Exception], None] | None = None

    @classmethod
    async def open(
        cls, journal: JournalLike, run: str, *, now: Callable[[], float] = time.time
    ) -> BatchJournal:
        """Open `journal` (a store, or a path for SQLite) and read what `run` holds.

        Args:
            journal: a store, a path (SQLite) or a PostgreSQL URL.
            run: the run's name.
            now: the Unix time (the client's clock): each create records when it is sent.

        Raises:
            JournalError: the file is not a usable journal.
        """
        store, owned = await open_store(journal)
        try:
            entries = await store.entries(run)
            uploads = await store.uploads(run) if keeps_uploads(store) else ()
        except BaseException:
            if owned is not None:
                with anyio.CancelScope(shield=True):
                    await owned.aclose()
            raise
        return cls(store, run, entries, owned=owned, uploads=uploads, now=now)

    async def run_entries(self) -> Mapping[int, JournalEntry]:
        """Every input of the run: `entries`, or the whole run's when the store reads a
        window of it (`PostgresJournal.window`)."""
        whole = getattr(self.store, "whole", None)
        if not callable(whole):
            return self.entries
        store: JournalStore = whole()
        return await store.entries(self.run)

    # -- which input -------------------------------------------------------------------------

    def place(self, batch_index: int, run_index: int | None) -> int:
        """Say where the batch's input sits in the run (default: at its batch index)."""
        index = batch_index if run_index is None else run_index
        self._indexes[batch_index] = index
        return index

    def index_of(self, batch_index: int) -> int:
        """The run's index of the batch's input `batch_index`."""
        return self._indexes.get(batch_index, batch_index)

    def _input(
        self,
        batch_index: int,
        request: GenerationRequest | None,
        sent_at: float | None = None,
    ) -> InputRecord:
        return InputRecord(
            run=self.run,
            index=self.index_of(batch_index),
            body=request.to_body() if request is not None else {},
            endpoint=request.endpoint if request is not None else None,
            model=request.model if request is not None else None,
            sent_at=sent_at,
        )

    # -- writes ------------------------------------------------------------------------------

    async def create(self, batch_index: int, request: GenerationRequest, key: str) -> None:
        """Write that a create is about to be sent; return once it (and all before) is.

        Raises:
            Exception: the store's, or an earlier queued write's.
        """
        record = self._input(batch_index, request, sent_at=self._now())
        done = anyio.Event()
        self._put(lambda: self.store.record_create(record, key), done)
        await done.wait()
        if self.error is not None:
            raise self.error

    def sent_again(self, batch_index: int, request: GenerationRequest, key: str) -> None:
        """Queue: the create leaves again, every earlier attempt refused for sure (429s):
        its task, if any, is made from now, and the task listing is searched from now."""
        record = self._input(batch_index, request, sent_at=self._now())
        self._put(lambda: self.store.record_create(record, key), None)

    def possible_duplicate(self, batch_index: int, request: GenerationRequest, key: str) -> None:
        """Queue: the create is resent after an attempt of unknown fate, on a server not
        shown to honour keys (kept, so a run killed before the input ends still says so)."""
        record = attrs.evolve(self._input(batch_index, request), possible_duplicate=True)
        self._put(lambda: self.store.record_create(record, key), None)

    def task(self, batch_index: int, request: GenerationRequest, task_id: str) -> None:
        """Queue: the input's create answered with `task_id`."""
        record = self._input(batch_index, request)
        self._put(lambda: self.store.record_task(record, task_id), None)

    def outcome(self, outcome: Outcome) -> None:
        """Queue: how the input ended."""
        record = self._input(outcome.index, outcome.request)
        created = outcome.task is not None
        ended = OutcomeRecord(
            status=EntryStatus(outcome.kind.value),
            task_id=outcome.task_id,
            error_code=outcome.error_code or (str(outcome.reason) if outcome.reason else None),
            error_message=outcome.error_message,
            reserved=outcome.credits.reserved if created else None,
            charged=outcome.credits.charged if created else None,
            results=outcome.results,
            possible_duplicate=outcome.possible_duplicate,
        )
        self._put(lambda: self.store.record_outcome(record, ended), None)

    def upload(self, upload: UploadRecord) -> None:
        """Queue: the run uploaded a local file (unless the store keeps no uploads)."""
        if self.keeps_uploads:
            self._put(lambda: self.store.record_upload(self.run, upload), None)

    def _put(self, write: _Write, done: anyio.Event | None) -> None:
        self._queue.append((write, done))
        self._wake.set()

    # -- the writer --------------------------------------------------------------------------

    async def run_writer(self) -> None:
        """Write what is queued, in order, until cancelled (the batch's task group)."""
        while True:
            await self._write_queued()
            self._wake = anyio.Event()
            if not self._queue:
                await self._wake.wait()

    async def _write_queued(self) -> None:
        while self._queue:
            write, done = self._queue[0]
            if self.error is None:
                try:
                    # Whole or not at all: a networked store's query cut short by the
                    # batch's cancellation would cost its connection.
                    with anyio.CancelScope(shield=True):
                        await write()
                except Exception as exc:  # noqa: BLE001 - handed to the batch, which stops
                    self.error = exc
                    if self.on_error is not None:
                        self.on_error(exc)
            self._queue.popleft()  # only once written: a cancelled write is written again
            if done is not None:
                done.set()

    async def close(self) -> None:
        """Write what is still queued (shielded, for at most `DRAIN_SECONDS`), then close
        the store opened for a path or URL."""
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(DRAIN_SECONDS):
                await self._write_queued()
        finally:
            if self._owned is not None:
                with anyio.CancelScope(shield=True):
                    await self._owned.aclose()


def keeps_uploads(store: JournalStore) -> bool:
    """Whether `store` records uploads (one written for the `JournalStore` of before
    uploads were journaled does not: a resumed run then uploads its files again)."""
    return callable(getattr(store, "record_upload", None)) and callable(
        getattr(store, "uploads", None)
    )
