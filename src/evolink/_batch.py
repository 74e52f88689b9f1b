"""A batch: many generation requests under an in-flight limit and a credit budget.

The batch owns a task group. `submit` validates an input, waits for a slot and the budget,
and starts its create; the client's one waiting engine (`_engine`) reads the created tasks
until they end; each input then gets exactly one `Outcome`. Leaving the `async with`
normally waits for every task to end; leaving it on an error or a cancellation stops
submissions and abandons the tasks still running (they go on on the server; their outcomes
say `abandoned`).

With a journal (`options.journal`), each create is recorded before it is sent (just before
`create_task` in `_send_create`), each task id and outcome as it comes, and `submit` asks
the planner (`_resume.plan_input`) what an earlier run left for the input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from evolink._batch_journal import BatchJournal
from evolink._batch_options import BatchOptions
from evolink._batch_preflight import Preflight
from evolink._budget import Budget, Verdict
from evolink._catalog import model_spec
from evolink._create import create_task
from evolink._engine import engine_of
from evolink._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConflictError,
    EvolinkError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
    ServerError,
    SubmissionUncertainError,
    ValidationError,
    WaitTimeoutError,
)
from evolink._idempotency import check_idempotency_key, new_idempotency_key
from evolink._journal import EntryStatus, JournalEntry
from evolink._ledger import ZERO, CreditLedger, TaskCredits
from evolink._models import DEFAULT_IMAGE_MODEL, GenerationRequest, Task, TaskStatus
from evolink._outcomes import BatchReport, Outcome, OutcomeKind, SkipReason
from evolink._pacer import SharedBackoff
from evolink._progress import BatchProgress
from evolink._resume import Action, Listing, Step, plan_input
from evolink._slots import AdaptiveSlots
from evolink._task_recovery import look_up
from evolink._transport import RequestCount, Transport
from evolink._uploads import as_recorded, journal_upload_cache
from evolink._validation import validate
from evolink._watcher import Listener

if TYPE_CHECKING:
    from evolink._client import AsyncEvolink

logger = logging.getLogger("evolink")

#: Error codes by which the server refuses a model itself (the error-codes page and the
#: models' OpenAPI files): every other input of that model would be refused the same way.
MODEL_REFUSAL_CODES = frozenset(
    {"model_not_found", "model_access_denied", "model_not_supported", "model_unavailable"}
)
#: Seconds between asks to a run's shared credits while they are full (another worker's
#: task ending may free some; its change is not seen here).
SHARED_CREDITS_RETRY = 0.25
#: The batch's last few tasks, once it creates no more: this share of `max_in_flight`
#: (at least one) are read in a hurry (`Batch._hurry`).
HURRY_SHARE = 10
#: The task an adopted journal record stands for, by its final status.
_TASK_STATUS = {
    EntryStatus.COMPLETED: TaskStatus.COMPLETED,
    EntryStatus.FAILED: TaskStatus.FAILED,
    EntryStatus.CANCELLED: TaskStatus.CANCELLED,
}


@attrs.define(eq=False)
class _Entry:
    """One input on its way: from its create to its outcome."""

    index: int
    request: GenerationRequest
    key: str
    predicted: Decimal = ZERO
    attempts: int = 0
    started: float | None = None  # when its create answered (monotonic)
    task: Task | None = None
    sent: bool = False
    # Its key came from an earlier run's create, whose outcome is unknown: this is a resend.
    reconciling: bool = False
    # Other inputs the server answered with this entry's task: they end with it.
    sharing: list[_Entry] = attrs.field(factory=list)
    # Its create was resent after an attempt that may have acted, on a server not shown
    # to honour keys; what the budget holds for that attempt's possible task.
    possible_duplicate: bool = False
    duplicate_held: Decimal = ZERO


class _ModelRefusedError(Exception):
    """The server refused this create's model while it waited: it is not sent."""


class _HookFailedError(Exception):
    """`on_create` raised: the create is not sent."""


@attrs.define
class _CreateBrake:
    """The batch's brake, for its creates: a 429 also gives up a slot (fewer in flight)."""

    _backoff: SharedBackoff
    _slots: AdaptiveSlots

    async def before_attempt(self) -> None:
        await self._backoff.before_attempt()

    def rate_limited(self, delay: float) -> None:
        self._slots.shrink()
        self._backoff.rate_limited(delay)


def _new_key() -> str:
    return new_idempotency_key()


class Batch:
    """Many generation requests under limits and a budget; see `AsyncEvolink.batch`.

    Use it as an async context manager; `submit` inputs, then iterate `as_completed()` or
    read `report()` after the block. `ledger` has the credits; `feed` takes callbacks.
    """

    def __init__(self, client: AsyncEvolink, options: BatchOptions, transport: Transport) -> None:
        self._client = client
        self._transport = transport
        self.options = options
        self._clock = client.clock
        self.ledger = CreditLedger()
        self._slots = AdaptiveSlots(maximum=options.max_in_flight)
        self._pacer = SharedBackoff(self._clock, shared=options.shared_brake)
        self._create_brake = _CreateBrake(self._pacer, self._slots)
        # HTTP requests of this batch at once: its own cap, else the client's pool size.
        self._limiter = anyio.CapacityLimiter(options.max_connections or client.max_connections)
        # The client's one engine reads this batch's tasks, beside every other wait's.
        self._engine = engine_of(client)
        self._watcher = self._engine.watcher
        self._listener = Listener(
            self._on_update,
            self._on_end,
            self._on_lost,
            pacer=self._pacer,
            limiter=self._limiter,
            batch_reads=options.batch_reads,
            task_deadline=options.task_deadline,
        )
        self._outcomes: list[Outcome | None] = []
        self._finished: list[Outcome] = []
        self._entries: dict[str, _Entry] = {}  # by task id, while watched
        self._unanswered: dict[int, _Entry] = {}  # by index, while its create is out
        self._creating = 0
        self._budget = Budget(options.max_credits, self.ledger, hints=options.price_hints)
        self._keys: set[str] = set()  # idempotency keys of this batch's inputs
        self._tags: dict[int, object] = {}  # callers' tags of inputs still running
        self._stopped: SkipReason | None = None
        self._stopped_reason: str | None = None
        self._resubmitted = 0
        # HTTP requests of this batch other than its watcher's reads: creates, adoptions.
        self._requests = RequestCount()
        # The catalog and prices, read once per model before its first create (counted).
        self._preflight = Preflight(client, self._budget, (self._requests,), self._pacer)
        self._parked = 0  # creates waiting for proof that keys are honoured
        self._feeding = 0  # submit_all calls running: more inputs may come
        self._closing = False  # the caller's block is done: no input will come
        self._changed = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        self._started_at = 0.0
        self._ended_at: float | None = None
        self._counts: dict[OutcomeKind, int] = dict.fromkeys(OutcomeKind, 0)
        self._created_tasks: dict[str, Task] = {}  # every task made or adopted, by id
        # The first exception a caller's hook raised: the batch stops, and `async with`
        # raises it once every input has an outcome.
        self._hook_error: Exception | None = None
        # Models the server has accepted a create of, and those it refused (with why). Until
        # a model is accepted, its creates go one at a time: a refused model costs one
        # refused create, not one per slot.
        self._models_accepted: set[str] = set()
        self._models_probing: set[str] = set()
        self._models_refused: dict[str, str] = {}
        # The run's journal, opened on entry (`options.journal`); inputs whose outcome came
        # from it, or that it refused, are not written back.
        self._journal: BatchJournal | None = None
        self._unjournaled: set[int] = set()
        # Local files go up through the client's cache, or with a journal the run's (its
        # uploads recorded, and reused on resume).
        self._uploads = client.files.uploads
        # What the task listing showed of the run's creates never answered, by run index.
        self._listings: dict[int, Listing] = {}
        # The one input of the run whose lost create the listing could not tell apart
        # that is resent as a probe of the server's keys (`_may_resend_ambiguous`), its
        # candidates, and the verdict: None while it is out, True if the server answered
        # with one of them (it honours keys), False otherwise.
        self._probe: int | None = None
        # Inputs resent whose earlier create may have made a task the listing did not rule
        # out (the probe; a listing unread or not reaching back): possible duplicates.
        self._unverified: set[int] = set()
        # Inputs an earlier run flagged `possible_duplicate`, and what the budget holds for
        # the task that run may have made: their outcomes keep the flag unless this run's
        # resend proves the server replays keys.
        self._flagged_before: dict[int, Decimal] = {}
        self._probe_candidates: frozenset[str] = frozenset()
        self._probe_verdict: bool | None = None
        # The run's credits shared with other batches, and the inputs whose credits stay
        # held there when they stop (their create may have made a task).
        self._shared = options.shared_credits
        self._held: set[int] = set()

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Batch:
        if self.options.journal is not None:
            self._journal = await BatchJournal.open(
                self.options.journal, self.options.run, now=self._clock.time
            )
            self._journal.on_error = self._hook_failed
            if self._journal.keeps_uploads:  # else the client's cache, as without a journal
                self._uploads = journal_upload_cache(
                    self._client.files, self._clock.time, self._journal
                )
            try:
                # Before this batch creates anything: its own tasks are no one's lost ones.
                # Not in a run shared with other workers: their creates not yet answered
                # look the same in the listing; there a resend under the key decides.
                if self._shared is None:
                    self._listings = await look_up(
                        self._transport, self._journal, counts=(self._requests,)
                    )
            except BaseException:
                await self._journal.close()
                raise
        self._started_at = self._clock.monotonic()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._engine.drive)
        if self._journal is not None:
            self._tg.start_soon(self._journal.run_writer)
        if self._shared is not None:
            self._tg.start_soon(self._shared.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            return await self._exit(exc_type, exc, tb)
        finally:
            self._clear_disproven_flags()
            if self._shared is not None:
                with anyio.CancelScope(shield=True):
                    await self._shared.drain()
            if self._journal is not None:
                await self._journal.close()  # what a stop left queued is written first

    async def _exit(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None  # noqa: S101 - entered before exited
        try:
            if exc is None:
                # Normal exit: every task started is seen to its end.
                self._closing = True
                self._hurry()
                while (self._creating or self._entries) and self._hook_error is None:
                    await self._wait_change()
        except BaseException:
            self._abandon()
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            raise
        if exc is None and self._hook_error is not None:
            # A hook of the caller's raised: stop as for an error of the caller's own.
            self._abandon()
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            raise self._hook_error
        if exc is not None:
            # Stop, abandon what runs, and let the caller's exception through unwrapped.
            self._stop(SkipReason.STOPPED, f"stopped by {type(exc).__name__}")
            self._abandon()
            self._tg.cancel_scope.cancel()
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                return await self._tg.__aexit__(exc_type, exc, tb)
            await self._tg.__aexit__(None, None, None)
            return None
        self._tg.cancel_scope.cancel()
        self._ended_at = self._clock.monotonic()
        self._notify()
        return await self._tg.__aexit__(None, None, None)

    def _clear_disproven_flags(self) -> None:
        """The server has shown it replays keys by the batch's end: every resend flagged
        before then (in this run or an earlier one) was a replay too, so the report and
        the journal say so. An outcome already handed out (`as_completed`, `on_outcome`)
        keeps the flag it was given."""
        if not self._transport.idempotency_confirmed:
            return
        for index, flagged in enumerate(self._outcomes):
            if flagged is None or not flagged.possible_duplicate:
                continue
            cleared = attrs.evolve(flagged, possible_duplicate=False)
            self._outcomes[index] = cleared
            if self._journal is not None and (index not in self._unjournaled or cleared.resumed):
                self._journal.outcome(cleared)

    def _abandon(self) -> None:
        if self._entries:
            ids = list(self._entries)
            shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
            # They run on, and are paid for: say where they are, even to a caller who kept
            # no handle on the batch.
            logger.warning(
                "batch stopped: %d task(s) still running on the server were abandoned "
                "(outcomes `abandoned` in the batch's report): %s",
                len(ids),
                shown,
            )
        for task_id, entry in list(self._entries.items()):
            task = self._watcher.forget(task_id, self._listener) or entry.task
            self._finish(entry, OutcomeKind.ABANDONED, task=task)
        self._entries.clear()
        for entry in list(self._unanswered.values()):
            if entry.sent:
                # Sent, never answered: the server may have made it. The key tells.
                self._finish(entry, OutcomeKind.UNCERTAIN, error_code="stopped")
            else:
                self._skip(entry, SkipReason.STOPPED)
        self._unanswered.clear()
        for index, outcome in enumerate(self._outcomes):
            if outcome is None:  # an input cancelled on its way in
                self._record(
                    Outcome(
                        index=index,
                        request=None,
                        kind=OutcomeKind.SKIPPED,
                        reason=SkipReason.STOPPED,
                    )
                )
        self._ended_at = self._clock.monotonic()
        self._notify()

    # -- submitting -------------------------------------------------------------------------

    async def submit(
        self,
        item: str | GenerationRequest,
        *,
        idempotency_key: str | None = None,
        tag: object = None,
        journal_index: int | None = None,
    ) -> int:
        """Hand the batch one input; return its index.

        Waits for a free slot (and room in the budget) before the create starts, so a
        producer never runs far ahead. Invalid input becomes a `rejected` outcome, not an
        exception: nothing is sent for it. Give the `idempotency_key` of an earlier create
        whose outcome is unknown (after a crash) to reconcile it: the server answers with
        the task it made, or makes it once.

        Args:
            item: a prompt (sent with the batch's `model`, `size` and `n`) or a
                `GenerationRequest`.
            idempotency_key: the key of an earlier create of this request.
            tag: anything of yours (a row id, ...), handed back as `Outcome.tag`.
            journal_index: where the input sits in the journal's run (default: its index
                in this batch); with a journal, what an earlier run recorded there decides
                whether it is adopted, read again, resent or created.

        Returns:
            The input's index, as its `Outcome.index` will say.

        Raises:
            EvolinkError: the batch is not entered (`async with`).
        """
        if self._tg is None:
            raise EvolinkError("use the batch as `async with client.batch(...) as batch:`")
        if self._hook_error is not None:
            raise self._hook_error
        index = self._new_input(tag)
        recorded = False  # an input the journal knows: its uploads may be the recorded ones
        if self._journal is not None:
            journal_index = self._journal.place(index, journal_index)
            recorded = journal_index in self._journal.entries
        prepared = await self._uploads.prepare(item, fresh=not recorded)  # local files -> URLs
        request = (
            prepared
            if isinstance(prepared, ValidationError)
            else self._to_request(prepared, idempotency_key)
        )
        if isinstance(request, ValidationError):
            self._reject(index, item, request)
            return index
        if self._journal is not None and journal_index is not None:
            resumed = await self._resume(index, journal_index, request, item)
            if resumed is None:
                return index  # ended from the journal, or its task adopted
            request, idempotency_key = resumed[0], resumed[1] or idempotency_key
        entry = _Entry(
            index=index,
            request=request,
            key=idempotency_key or _new_key(),
            reconciling=idempotency_key is not None,
        )
        self._keys.add(entry.key)
        self._flag_resumed(entry)
        try:
            admitted = await self._admit(entry)
        except BaseException:
            self._skip(entry, SkipReason.STOPPED)  # cancelled while waiting its turn
            raise
        if admitted:
            self._start_create(entry)
        return index

    def _flag_resumed(self, entry: _Entry) -> None:
        """Flag a resumed input's create as a possible duplicate where it may be one: a
        create of unknown fate resent now, on a server not shown to honour keys, with
        nothing (no listing) to say it made no task (flagged from the moment it leaves,
        answered or not), or one an earlier run flagged (from here on, this run's own).
        Either is cleared if the server proves it replays keys."""
        if entry.index in self._unverified and not self._transport.idempotency_confirmed:
            logger.warning(
                "resume: input %d's create, whose fate is unknown, is resent under its key"
                " before the server has shown it honours keys: a second task may be made",
                entry.index,
            )
            self._possible_duplicate(entry)
        if entry.index in self._flagged_before:
            entry.possible_duplicate = True
            entry.duplicate_held += self._flagged_before.pop(entry.index)

    async def _resume(
        self, index: int, journal_index: int, request: GenerationRequest, item: object
    ) -> tuple[GenerationRequest, str | None] | None:
        """Apply the planner to an input the journal may know: None if it is taken care of,
        else the request to create and the key to resend it under (None: a new key)."""
        assert self._journal is not None  # noqa: S101 - only with a journal
        step = plan_input(
            self._journal.entries.get(journal_index),
            request.to_body(),
            retry_failed=self.options.resume_failed,
            aliases=self._uploads.aliases,
            listing=self._listings.get(journal_index),
        )
        self._carry_flag(index, step, request)
        if step.action is Action.ADOPT and step.entry is not None:
            self._resumed(index, request, step.entry)
            return None
        if step.action is Action.MISMATCH:
            self._unjournaled.add(index)
            self._record(
                Outcome(
                    index=index,
                    request=request,
                    kind=OutcomeKind.REJECTED,
                    error_code="journal_mismatch",
                    error_message=f"the journal's run {self._journal.run!r} holds another"
                    f" request at index {journal_index}: resume with the same inputs",
                )
            )
            return None
        if step.action is Action.REREAD and step.task_id is not None:
            await self._adopt(index, step.task_id, request)
            return None
        ambiguous = step.action is Action.AMBIGUOUS and step.entry is not None
        key = step.entry.idempotency_key if step.entry is not None else None
        if ambiguous and not await self._resend_ambiguous(index, journal_index, request, key):
            return None
        if ambiguous:
            step = attrs.evolve(step, action=Action.RESEND)
        if step.action is Action.RESEND and step.entry is not None:
            if ambiguous or journal_index not in self._listings:
                self._unverified.add(index)
            request = self._as_sent(request, step.entry.body)
        if step.entry is not None and (
            step.action is Action.SUBMIT or (journal_index in self._listings and not ambiguous)
        ):
            # A new create (or a resend the listing shows never made a task): its files'
            # recorded uploads must outlive it.
            renewed = await self._uploads.renew(request)
            if isinstance(renewed, ValidationError):
                self._reject(index, item, renewed)
                return None
            request = renewed
        return request, step.idempotency_key

    def _carry_flag(self, index: int, step: Step, request: GenerationRequest) -> None:
        """If an earlier run resent this input's create unproven, the extra task it may
        have made is held here as it was there, and the input stays flagged until the
        server shows it replays keys (then that resend was a replay too)."""
        if (
            step.entry is not None
            and step.entry.possible_duplicate
            and step.action is not Action.MISMATCH  # that flag is another request's
            and not self._transport.idempotency_confirmed
        ):
            self._flagged_before[index] = self._budget.uncertain(request)

    def _as_sent(self, request: GenerationRequest, body: Mapping[str, Any]) -> GenerationRequest:
        """`request` as an earlier run sent it: byte for byte, or the server refuses the key
        (409)."""
        request = as_recorded(request, body, self._uploads.aliases)
        callback = body.get("callback_url")
        if callback != request.callback_url and isinstance(callback, str | None):
            request = attrs.evolve(request, callback_url=callback)
        return request

    async def _resend_ambiguous(
        self, index: int, journal_index: int, request: GenerationRequest, key: str | None
    ) -> bool:
        """Whether an input the listing cannot tell apart is resent (`_may_resend_ambiguous`);
        if not, it ends uncertain, naming its candidates."""
        if await self._may_resend_ambiguous(index, journal_index):
            return True
        self._budget.uncertain(request)  # one of its candidates may be its task
        self._record(
            Outcome(
                index=index,
                request=request,
                kind=OutcomeKind.UNCERTAIN,
                error_code="ambiguous_listing",
                error_message="its create was never answered, and the task listing shows"
                " several tasks it may have made (which is its cannot be told), on a server"
                " not shown to honour idempotency keys: nothing was resent. Candidates: "
                + ", ".join(self._listing_candidates(journal_index)),
                idempotency_key=key,
            )
        )
        return False

    async def _may_resend_ambiguous(self, index: int, journal_index: int) -> bool:
        """Whether an input whose lost create the listing cannot tell apart from others is
        resent under its key: once the server has shown it honours keys (then it answers
        with the input's own task), or as the run's one probe of whether it does.

        The probe's answer decides for the others (`_judge_probe`): one of its candidates
        proves the server replays keys; a new task does not (its keys may be ignored, or
        its create never arrived), and the others end uncertain, nothing resent. So a
        server that ignores keys makes at most one possible duplicate a run, flagged
        (`Outcome.possible_duplicate`), as a create resent in a run that is not resumed
        may: every such create is resent once before keys are proven."""
        while not self._transport.idempotency_confirmed:
            if self._probe is None:
                self._probe = index
                self._probe_candidates = frozenset(self._listing_candidates(journal_index))
                return True
            if self._probe_verdict is not None or self._outcomes[self._probe] is not None:
                return False
            await self._wait_change()
        return True

    def _judge_probe(self, entry: _Entry, task: Task) -> None:
        """The probe's create answered with `task`: a task it may have made before shows
        the server replays keys; a new one is a possible duplicate."""
        if entry.index != self._probe or self._probe_verdict is not None:
            return
        self._probe_verdict = task.id in self._probe_candidates
        if self._probe_verdict:
            self._transport.idempotency_confirmed = True  # `_proven_single` unflags it
        elif not self._transport.idempotency_confirmed:
            logger.warning(
                "resume: a create the task listing could not tell apart was resent under"
                " its key and answered with a new task: the server may not honour keys,"
                " so the others like it are not resent"
            )
        self._notify()

    def _listing_candidates(self, journal_index: int) -> tuple[str, ...]:
        listing = self._listings.get(journal_index)
        return listing.candidates if listing is not None else ()

    async def submit_all(
        self, items: Iterable[str | GenerationRequest] | AsyncIterable[str | GenerationRequest]
    ) -> None:
        """Submit every input of a list or an (async) iterable, in order."""
        with self.feeding():
            if isinstance(items, AsyncIterable):
                async for item in items:
                    await self.submit(item)
            else:
                for item in items:
                    await self.submit(item)

    async def adopt(
        self, task: Task | str, request: GenerationRequest, *, tag: object = None
    ) -> int:
        """Watch a task created earlier (by a run that crashed) as this batch's next input.

        No create is sent. It holds a slot like any task in flight. A task id the server
        no longer knows ends `uncertain` (error code `task_not_found`). `tag` comes back as
        `Outcome.tag`.
        """
        if self._tg is None:
            raise EvolinkError("use the batch as `async with client.batch(...) as batch:`")
        index = self._new_input(tag)
        if self._journal is not None:
            self._journal.place(index, None)
        await self._adopt(index, task, request)
        return index

    async def _adopt(self, index: int, task: Task | str, request: GenerationRequest) -> None:
        entry = _Entry(index=index, request=request, key="")
        task_id = task if isinstance(task, str) else task.id
        if task_id in self._entries:
            self._record(
                Outcome(
                    index=index,
                    request=request,
                    kind=OutcomeKind.REJECTED,
                    error_code="unique",
                    error_message=f"task {task_id} is already an input of this batch",
                )
            )
            return
        if isinstance(task, str):
            try:
                # Through the engine: a wait by id reading it at once shares this read.
                task = await self._engine.first_read(task, counts=(self._requests,))
            except EvolinkError as exc:
                code = "task_not_found" if isinstance(exc, NotFoundError) else type(exc).__name__
                self._finish(entry, OutcomeKind.UNCERTAIN, error_code=code, error_message=str(exc))
                return
        await self._slots.acquire()
        self._creating += 1
        self._created(entry, task)

    def _resumed(self, index: int, request: GenerationRequest, record: JournalEntry) -> None:
        """End an input with the outcome an earlier run recorded: nothing is sent."""
        assert self._journal is not None  # noqa: S101 - only with a journal
        self._unjournaled.add(index)
        task = None
        if record.task_id is not None and record.status in _TASK_STATUS:
            task = Task(
                id=record.task_id,
                status=_TASK_STATUS[record.status],
                model=record.model,
                results=record.results,
            )
        spent = TaskCredits(
            reserved=record.reserved or ZERO,
            charged=record.charged or ZERO,
            released=(record.reserved or ZERO) - (record.charged or ZERO),
            settled=True,
        )
        if record.task_id is not None:
            # The run's totals and its budget count what its earlier sessions spent.
            self.ledger.adopt(record.task_id, spent)
        self._record(
            Outcome(
                index=index,
                request=request,
                kind=OutcomeKind(record.status.value),
                task=task,
                error_code=record.error_code,
                error_message=record.error_message,
                idempotency_key=record.idempotency_key,
                credits=spent,
                resumed=True,
            )
        )

    def _new_input(self, tag: object) -> int:
        index = len(self._outcomes)
        self._outcomes.append(None)
        if tag is not None:
            self._tags[index] = tag
        return index

    @contextmanager
    def feeding(self) -> Iterator[None]:
        """Say more inputs are coming: `as_completed()` waits for them inside this block.

        `submit_all` does this itself; use it around a loop of your own `submit` calls
        when another task iterates `as_completed()` at the same time.
        """
        self._feeding += 1
        try:
            yield
        finally:
            self._feeding -= 1
            self._notify()

    def _to_request(
        self, item: object, idempotency_key: str | None = None
    ) -> GenerationRequest | ValidationError:
        options = self.options
        if isinstance(item, str):
            if options.model is None and options.kind != "image":
                return ValidationError(
                    "model", "required", f"name the {options.kind} model: batch(model=...)"
                )
            model = options.model or DEFAULT_IMAGE_MODEL
            spec = model_spec(model)  # what the model makes, where the catalog knows it
            request = GenerationRequest(
                prompt=item,
                model=model,
                size=options.size,
                n=options.n,
                callback_url=options.callback_url,
                params=options.params or None,
                kind=spec.kind if spec is not None else options.kind,
            )
        elif isinstance(item, GenerationRequest):
            request = item
            if options.callback_url is not None and request.callback_url is None:
                request = attrs.evolve(request, callback_url=options.callback_url)
            # What a request makes is its model's (a mixed batch mixes kinds); the batch's
            # kind stands in for a model the catalog does not know.
            spec = model_spec(request.model) if isinstance(request.model, str) else None
            kind = spec.kind if spec is not None else request.kind
            if spec is None and request.kind == "image":
                kind = options.kind
            if request.kind != kind:
                request = attrs.evolve(request, kind=kind)
        else:
            given = type(item).__name__
            return ValidationError(
                "input", "type", f"expected a prompt or a GenerationRequest, not {given}"
            )
        try:
            validate(request, allow_local_callbacks=self._client.allow_local_callbacks)
            check_idempotency_key(idempotency_key)
        except ValidationError as exc:
            return exc
        if idempotency_key is not None and idempotency_key in self._keys:
            # Two inputs under one key would be one task on the server.
            return ValidationError(
                "idempotency_key", "unique", "already used by another input of this batch"
            )
        try:
            json.dumps(request.to_body())
        except (TypeError, ValueError) as exc:
            return ValidationError("extra_body", "json", f"cannot be sent as JSON: {exc}")
        return request

    async def _admit(self, entry: _Entry) -> bool:
        """Take a slot and budget for `entry`; False (and an outcome) if it cannot start."""
        refused = await self._preflight.check(entry.request.model)
        if refused is not None:
            self._models_refused.setdefault(entry.request.model, refused)
        await self._slots.acquire()
        try:
            admitted = await self._fit_budget(entry)
        except BaseException:
            self._slots.release()
            raise
        if not admitted:
            self._slots.release()
            return False
        entry.predicted = self._budget.start(entry.request)
        if self._shared is not None and not await self._hold_shared(entry):
            self._budget.answered(entry.request, entry.predicted)
            entry.predicted = ZERO
            self._slots.release()
            return False
        if entry.request.model not in self._models_accepted:
            self._models_probing.add(entry.request.model)
        return True

    async def _hold_shared(self, entry: _Entry) -> bool:
        """Hold `entry`'s credits in the run's shared budget; False (and an outcome) if
        they never fit, or the batch stopped while waiting."""
        assert self._shared is not None  # noqa: S101 - only with shared credits
        while True:
            try:
                amount = self._budget.predict(entry.request)  # whatever the local budget
                verdict = await self._shared.reserve(self._run_index(entry.index), amount)
            except Exception as exc:  # noqa: BLE001 - the store's own, raised from `async with`
                self._hook_failed(exc)
                verdict = Verdict.WAIT
            if self._stopped is not None:
                self._skip(entry, self._stopped)  # nothing sent: a hold taken is given back
                return False
            if verdict is Verdict.FITS:
                return True
            if verdict is Verdict.NEVER:
                self._skip(entry, SkipReason.BUDGET)
                return False
            with anyio.move_on_after(SHARED_CREDITS_RETRY):
                await self._wait_change()

    def _run_index(self, index: int) -> int:
        """The input's index in the journal's run (its batch index without a journal)."""
        return self._journal.index_of(index) if self._journal is not None else index

    def _settle_shared(self, outcome: Outcome) -> None:
        """Set the input's hold in the run's shared credits to what its outcome cost."""
        if self._shared is None:
            return
        if outcome.kind in (OutcomeKind.UNCERTAIN, OutcomeKind.ABANDONED) or (
            outcome.task is None and outcome.index in self._held
        ):
            # Its task may run on, and be paid for (or an earlier create of it may have
            # made one): the hold stays, and nothing waits for it to shrink.
            self._shared.keep(self._run_index(outcome.index))
            return
        cost = outcome.credits
        amount = cost.charged if cost.settled else cost.reserved
        self._shared.settle(self._run_index(outcome.index), amount, final=True)

    async def _fit_budget(self, entry: _Entry) -> bool:
        """Wait until `entry` fits the budget; False (and an outcome) if it never can."""
        model = entry.request.model
        while True:
            if self._stopped is not None:
                self._skip(entry, self._stopped)
                return False
            if model in self._models_refused:
                self._skip(entry, SkipReason.MODEL_REFUSED, self._models_refused[model])
                return False
            if model not in self._models_accepted and model in self._models_probing:
                await self._wait_change()  # its first create will tell if the model is served
                continue
            running = bool(self._creating or self._entries)
            verdict = self._budget.verdict(entry.request, can_wait=running)
            if verdict is Verdict.FITS:
                return True
            if verdict is Verdict.NEVER:
                self._skip(entry, SkipReason.BUDGET)
                return False
            await self._wait_change()

    def _start_create(self, entry: _Entry) -> None:
        assert self._tg is not None  # noqa: S101 - only while running
        self._creating += 1
        entry.sent = False
        self._unanswered[entry.index] = entry
        self._tg.start_soon(self._create, entry)
        self._notify()

    async def _create(self, entry: _Entry) -> None:
        """Create the task for `entry`; the transport retries only what cannot pay twice."""
        try:
            try:
                task = await self._send_create(entry)
            except _HookFailedError:
                self._creating_done(entry)
                self._slots.release()
                self._skip(entry, SkipReason.STOPPED)
                return
            except _ModelRefusedError:
                self._creating_done(entry)
                self._slots.release()
                model = entry.request.model
                self._skip(entry, SkipReason.MODEL_REFUSED, self._models_refused[model])
                return
            except SubmissionUncertainError as exc:
                # It may have made a task: only its key can tell, so it is not resent.
                cause = exc.__cause__
                self._create_ended(
                    entry, cause if isinstance(cause, EvolinkError) else exc, uncertain=True
                )
                return
            except EvolinkError as exc:
                # A refusal, or failures that certainly made no task (a 409 says a task
                # exists for this key: the outcome is unknown).
                self._create_ended(entry, exc, uncertain=isinstance(exc, ConflictError))
                return
        finally:
            self._notify()
        self._created(entry, task)

    async def _keys_proven(self) -> bool:
        """Wait while other work may show the server honours keys; True once it has.

        A create that may have made a task is not resent again on an unproven server. But
        the batch's other creates may soon meet a replay that proves it: then resending
        with the key is safe, and the input need not end uncertain.
        """
        self._parked += 1
        try:
            while not self._client.idempotency_confirmed:
                if self._creating - self._parked <= 0 and not self._entries:
                    return False  # nothing left that could prove it
                await self._wait_change()
            return True
        finally:
            self._parked -= 1

    async def _send_create(self, entry: _Entry) -> Task:
        def before_attempt(attempt: int) -> None:
            # Runs once its turn has come: the model may have been refused meanwhile.
            if attempt > 1:
                return
            if entry.request.model in self._models_refused:
                raise _ModelRefusedError
            if self.options.on_create is not None:
                self._call_hook(self.options.on_create, entry.index, entry.request, entry.key)
                if self._hook_error is not None:
                    raise _HookFailedError  # a journal that failed to record it: not sent
            entry.sent = True

        if self._journal is not None:
            # Recorded before the create can leave (an async write cannot run in
            # `before_attempt`); one then refused unsent leaves a key that resends safely.
            await self._journal_create(entry)
        return await create_task(
            self._transport,
            entry.request,
            allow_local_callbacks=self._client.allow_local_callbacks,
            check_model=self._client.models.check_cached,
            idempotency_key=entry.key,
            # An earlier run's create of this key has an unknown outcome: a resend.
            uncertain_before=int(entry.reconciling),
            pacer=self._create_brake,
            limiter=self._limiter,
            counts=(self._requests,),
            before_attempt=before_attempt,
            may_resend=self._keys_proven,
            on_unproven_resend=lambda: self._possible_duplicate(entry),
            on_clean_resend=None if self._journal is None else lambda: self._sent_again(entry),
        )

    def _sent_again(self, entry: _Entry) -> None:
        """The journal's send time follows a create whose earlier attempts were all
        refused: a resume looks for its task around the attempt that may have made it."""
        if self._journal is not None:
            self._journal.sent_again(entry.index, entry.request, entry.key)

    def _proven_single(self, entry: _Entry) -> None:
        """The server honours keys (this answer, or another, was a replay): a task an
        earlier attempt of `entry` made is the one its create was answered with."""
        if entry.possible_duplicate and self._transport.idempotency_confirmed:
            entry.possible_duplicate = False
            self._budget.unheld(entry.duplicate_held)
            entry.duplicate_held = ZERO

    def _possible_duplicate(self, entry: _Entry) -> bool:
        """`entry`'s create is resent, its last attempt's fate unknown, on a server not
        shown to honour keys: that attempt may have made a task we cannot see, whose
        predicted price is held for good (as an uncertain create's).

        (Refusing the resend when the budget cannot hold it was tried: on a server that
        does honour keys, the input then ended uncertain with its task charged.)"""
        held = self._budget.uncertain(entry.request)
        entry.possible_duplicate = True
        entry.duplicate_held += held
        if self._journal is not None:
            self._journal.possible_duplicate(entry.index, entry.request, entry.key)
        return True

    async def _journal_create(self, entry: _Entry) -> None:
        """Write the create to the journal before it is sent; unwritten, it is not sent."""
        assert self._journal is not None  # noqa: S101 - only with a journal
        try:
            await self._journal.create(entry.index, entry.request, entry.key)
        except Exception as exc:  # noqa: BLE001 - the store's own, raised from `async with`
            self._hook_failed(exc)
        if self._hook_error is not None:
            raise _HookFailedError

    def _create_ended(self, entry: _Entry, exc: EvolinkError, *, uncertain: bool) -> None:
        """Record how a create that made no known task ended."""
        model = entry.request.model
        self._models_probing.discard(model)
        if not uncertain and isinstance(exc, APIError) and str(exc.code) in MODEL_REFUSAL_CODES:
            # The model itself is refused (from the start, or retired or closed mid-run):
            # no other input of it is sent.
            self._models_refused[model] = f"{exc.code}: {exc.message}"
        self._creating_done(entry)
        self._slots.release()
        code = str(exc.code) if isinstance(exc, APIError) and exc.code is not None else None
        code = code or type(exc).__name__
        if uncertain:
            self._budget.uncertain(entry.request)
            self._finish(entry, OutcomeKind.UNCERTAIN, error_code=code, error_message=str(exc))
        elif isinstance(exc, InsufficientCreditsError):
            self._stop(SkipReason.INSUFFICIENT_CREDITS, f"402 {exc.code or ''}".strip())
            self._skip(entry, SkipReason.INSUFFICIENT_CREDITS)
        else:
            if isinstance(exc, AuthenticationError):
                # The key is refused: every other input would be refused the same way.
                self._stop(SkipReason.UNAUTHORIZED, f"401 {exc.code or ''}".strip())
            # Refused for sure (no task): a 5xx, 429 or lost connection may pass next time.
            retryable = isinstance(exc, (ServerError, APIConnectionError, RateLimitError))
            message = exc.message if isinstance(exc, APIError) else str(exc)
            self._finish(
                entry,
                OutcomeKind.FAILED,
                error_code=code,
                error_message=message,
                retryable=retryable,
            )

    def _creating_done(self, entry: _Entry) -> None:
        self._creating -= 1
        self._unanswered.pop(entry.index, None)
        self._budget.answered(entry.request, entry.predicted)
        entry.predicted = ZERO

    def _created(self, entry: _Entry, task: Task) -> None:
        self._judge_probe(entry, task)
        self._proven_single(entry)
        self._models_accepted.add(entry.request.model)
        self._models_probing.discard(entry.request.model)
        self._creating_done(entry)
        self._slots.grow()
        entry.attempts += 1
        entry.task = task
        entry.started = self._clock.monotonic()
        known = task.id in self._created_tasks
        self._created_tasks.setdefault(task.id, task)
        if self._journal is not None:
            self._journal.task(entry.index, entry.request, task.id)
        holder = self._entries.get(task.id)
        ended = None if holder is not None or not known else self._outcome_of(task.id)
        if holder is not None or ended is not None:
            # The server answered with a task another input already holds (a replayed key,
            # or a server that reuses ids): this input ends with that task, paid once.
            self._slots.release()
            if self.options.on_created is not None:
                self._call_hook(self.options.on_created, entry.index, task)
            if holder is not None:
                holder.sharing.append(entry)
            elif ended is not None:  # (that input has its outcome already)
                self._shared_outcome(entry, ended.kind, ended.task, ended, ended.error_code)
            self._notify()
            return
        reserved = task.credits_reserved or ZERO
        if self._shared is not None:
            self._shared.settle(self._run_index(entry.index), reserved, final=False)
        self.ledger.reserve(task.id, reserved, images=entry.request.images)
        self._budget.learn(entry.request, reserved)
        if task.credits_reserved is None and not task.is_terminal:
            # (A hostile or partial answer: the task still costs what such tasks do.)
            self._budget.unstated(task.id, entry.request)
        self._entries[task.id] = entry
        if self.options.on_created is not None:
            self._call_hook(self.options.on_created, entry.index, task)
        if task.is_terminal:
            self._on_end(task)
        else:
            self._watcher.watch(task, self._listener, started=self._clock.monotonic())
        self._notify()

    # -- the watcher's reports --------------------------------------------------------------

    def _on_update(self, task: Task) -> None:
        entry = self._entries.get(task.id)
        if entry is not None:
            entry.task = task
        self._notify()

    def _on_end(self, task: Task) -> None:
        entry = self._entries.pop(task.id, None)
        if entry is None:
            return
        entry.task = task
        task_credits = self.ledger.settle(task)
        self._budget.ended(task.id)
        if self._should_resubmit(entry, task):
            # Inputs sharing the failed task end with it; this one tries again.
            error = task.error
            self._end_sharing(
                entry,
                OutcomeKind.FAILED,
                task,
                error.code if error is not None else None,
                error.message if error is not None else None,
            )
            self._resubmitted += 1
            entry.key = _new_key()
            entry.reconciling = False
            self._start_create(entry)
            return
        self._slots.release()
        kind = {
            TaskStatus.COMPLETED: OutcomeKind.COMPLETED,
            TaskStatus.CANCELLED: OutcomeKind.CANCELLED,
        }.get(task.status, OutcomeKind.FAILED)
        error = task.error
        self._finish(
            entry,
            kind,
            task=task,
            task_credits=task_credits,
            error_code=error.code if error is not None else None,
            error_message=error.message if error is not None else None,
            retryable=error.is_retryable if error is not None else False,
        )

    def _should_resubmit(self, entry: _Entry, task: Task) -> bool:
        error = task.error
        if task.status is not TaskStatus.FAILED or error is None or not error.is_retryable:
            return False
        if entry.attempts > self.options.retry_failed or self._stopped is not None:
            return False
        if self._budget.verdict(entry.request, can_wait=False) is not Verdict.FITS:
            return False
        entry.predicted = self._budget.start(entry.request)
        return True

    def _on_lost(self, task_id: str, error: EvolinkError) -> None:
        entry = self._entries.pop(task_id, None)
        if entry is None:
            return
        self._slots.release()
        # The server forgot the task (expired), or will not show it to this key: how it
        # ended, and what it cost, is unknown to us.
        code = "task_not_found" if isinstance(error, NotFoundError) else type(error).__name__
        if (
            isinstance(error, APIError)
            and error.code is not None
            and not isinstance(error, NotFoundError)
        ):
            code = str(error.code)
        if isinstance(error, WaitTimeoutError):
            # Still running at its deadline (or in a status we do not know): it may yet end
            # on the server, and its task says where to look.
            code = "task_deadline"
            kind = OutcomeKind.ABANDONED
        else:
            kind = OutcomeKind.UNCERTAIN
        self._finish(entry, kind, task=entry.task, error_code=code, error_message=str(error))

    # -- outcomes ---------------------------------------------------------------------------

    def _skip(self, entry: _Entry, reason: SkipReason, detail: str | None = None) -> None:
        if entry.reconciling and reason is not SkipReason.INSUFFICIENT_CREDITS:
            self._held.add(entry.index)  # an earlier run's create of it may have made a task
        self._record(
            Outcome(
                index=entry.index,
                request=entry.request,
                kind=OutcomeKind.SKIPPED,
                reason=reason,
                error_message=detail,
            )
        )

    def _finish(
        self,
        entry: _Entry,
        kind: OutcomeKind,
        *,
        task: Task | None = None,
        task_credits: TaskCredits | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        retryable: bool = False,
    ) -> None:
        self._proven_single(entry)  # the server may have shown it replays keys since
        if task_credits is None and task is not None:
            task_credits = self.ledger.tasks.get(task.id)
        if entry.sharing:
            self._end_sharing(entry, kind, task or entry.task, error_code, error_message)
        self._record(
            Outcome(
                index=entry.index,
                request=entry.request,
                kind=kind,
                task=task or entry.task,
                error_code=error_code,
                error_message=error_message,
                retryable=retryable,
                idempotency_key=entry.key,
                attempts=entry.attempts,
                credits=task_credits or TaskCredits(),
                elapsed=None if entry.started is None else self._clock.monotonic() - entry.started,
                possible_duplicate=entry.possible_duplicate,
            )
        )

    def _end_sharing(
        self,
        entry: _Entry,
        kind: OutcomeKind,
        task: Task | None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        """End the inputs that share `entry`'s task as it ends (its credits count once)."""
        sharing, entry.sharing = entry.sharing, []
        for other in sharing:
            self._shared_outcome(other, kind, task, entry, error_code, error_message)

    def _shared_outcome(
        self,
        entry: _Entry,
        kind: OutcomeKind,
        task: Task | None,
        holder: _Entry | Outcome,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        """End `entry`, whose create the server answered with `holder`'s task, as it."""
        self._proven_single(entry)
        self._record(
            Outcome(
                index=entry.index,
                request=entry.request,
                kind=kind,
                task=task,
                error_code=error_code or "shared_task",
                error_message=error_message
                or f"the server answered with the task of input {holder.index}",
                idempotency_key=entry.key,
                attempts=entry.attempts,
                elapsed=None if entry.started is None else self._clock.monotonic() - entry.started,
                possible_duplicate=entry.possible_duplicate,
            )
        )

    def _outcome_of(self, task_id: str) -> Outcome | None:
        """The outcome of the input that ended with task `task_id`, if one did."""
        return next(
            (o for o in self._finished if o.task is not None and o.task.id == task_id), None
        )

    def _reject(self, index: int, item: object, error: ValidationError) -> None:
        """Record `item` as rejected for `error` (nothing of it was sent)."""
        self._record(
            Outcome(
                index=index,
                request=item if isinstance(item, GenerationRequest) else None,
                kind=OutcomeKind.REJECTED,
                error_code=error.rule,
                error_message=str(error),
            )
        )

    def _record(self, outcome: Outcome) -> None:
        if self._outcomes[outcome.index] is not None:
            return  # one outcome per input, whatever arrives later
        tag = self._tags.pop(outcome.index, None)
        if tag is not None:
            outcome = attrs.evolve(outcome, tag=tag)
        if outcome.index in self._flagged_before and not outcome.possible_duplicate:
            outcome = attrs.evolve(outcome, possible_duplicate=True)
        self._outcomes[outcome.index] = outcome
        if self._journal is not None and outcome.index not in self._unjournaled:
            self._journal.outcome(outcome)
        if outcome.kind is not OutcomeKind.REJECTED:
            self._settle_shared(outcome)
        if self.options.on_outcome is not None:
            self._call_hook(self.options.on_outcome, outcome)
        self._finished.append(outcome)
        self._counts[outcome.kind] += 1
        self._notify()

    def _stop(self, reason: SkipReason, detail: str) -> None:
        if self._stopped is None:
            self._stopped = reason
            self._stopped_reason = detail
        self._notify()

    # -- progress ---------------------------------------------------------------------------

    def _hurry(self) -> None:
        """With nothing left to create, the batch ends when its last task is seen done:
        its last few tasks are read at a lower price of reads (`Watcher.hurry`)."""
        last_few = max(1, self.options.max_in_flight // HURRY_SHARE)
        done_creating = self._closing and not self._creating and not self._feeding
        self._watcher.hurry(self._listener, done_creating and len(self._entries) <= last_few)

    def _notify(self) -> None:
        self._hurry()
        self._changed.set()
        self._changed = anyio.Event()
        if self.options.on_progress is not None:
            self._call_hook(self.options.on_progress, self.progress())

    def _call_hook(self, hook: Callable[..., object], *args: object) -> None:
        """Call a caller's hook; if it raises, stop the batch and keep the exception."""
        if self._hook_error is not None:
            return  # the batch is stopping: no more calls into code that failed
        try:
            hook(*args)
        except Exception as exc:  # noqa: BLE001 - the caller's own, raised from `async with`
            self._hook_failed(exc)

    def _hook_failed(self, exc: Exception) -> None:
        """Stop the batch on a hook's (or the journal's) error; `async with` raises it."""
        if self._hook_error is not None:
            return
        self._hook_error = exc
        self._stop(SkipReason.STOPPED, f"a hook raised {type(exc).__name__}")
        self._slots.close()
        self._changed.set()

    async def _wait_change(self) -> None:
        await self._changed.wait()

    def progress(self) -> BatchProgress:
        """A snapshot of the batch now."""
        counts = self._counts
        now = self._clock.monotonic()
        elapsed = (self._ended_at or now) - self._started_at
        return BatchProgress(
            total=self.options.total,
            submitted=len(self._outcomes),
            creating=self._creating,
            in_flight=len(self._entries),
            completed=counts[OutcomeKind.COMPLETED],
            failed=counts[OutcomeKind.FAILED],
            cancelled=counts[OutcomeKind.CANCELLED],
            rejected=counts[OutcomeKind.REJECTED],
            skipped=counts[OutcomeKind.SKIPPED],
            uncertain=counts[OutcomeKind.UNCERTAIN],
            abandoned=counts[OutcomeKind.ABANDONED],
            reserved=self.ledger.reserved,
            charged=self.ledger.charged,
            released=self.ledger.released,
            max_credits=self.options.max_credits,
            elapsed=elapsed,
            eta=self._eta(elapsed),
        )

    def _eta(self, elapsed: float) -> float | None:
        finished = len(self._finished)
        total = self.options.total if self.options.total is not None else len(self._outcomes)
        left = total - finished
        if left <= 0:
            return 0.0
        if finished == 0 or elapsed <= 0:
            return None
        return left * elapsed / finished

    async def progress_events(self) -> AsyncIterator[BatchProgress]:
        """Snapshots as the batch changes (the latest one, if the reader falls behind)."""
        while True:
            changed = self._changed
            snapshot = self.progress()
            yield snapshot
            if self._ended_at is not None:
                return
            await changed.wait()

    async def as_completed(self) -> AsyncIterator[Outcome]:
        """Each outcome as it arrives, until every input submitted so far has one, and (if
        the batch was told its `total`) that many were submitted, or the block ended.

        The `total` lets a consumer start before its producer has submitted anything.
        """
        seen = 0
        while True:
            while seen < len(self._finished):
                seen += 1
                yield self._finished[seen - 1]
            expected = len(self._outcomes)
            if not self._closing and self.options.total is not None:
                expected = max(expected, self.options.total)
            if seen >= expected and not self._creating and not self._feeding:
                return
            await self._wait_change()

    def feed(self, payload: Mapping[str, Any] | Task) -> bool:
        """Take a task update from outside (a callback body); True if it is this batch's.

        The update is confirmed by reading the task before it counts.

        Args:
            payload: the callback's JSON body, or a `Task`.
        """
        return self._engine.feed(payload, self._listener)

    # -- the report -------------------------------------------------------------------------

    def report(self) -> BatchReport:
        """Every outcome in input order, with credit totals and timings.

        Raises:
            EvolinkError: the batch is still running (read it after the `async with`).
        """
        outcomes = [o for o in self._outcomes if o is not None]
        if len(outcomes) != len(self._outcomes):
            raise EvolinkError("the batch is still running: read the report after `async with`")
        end = self._ended_at if self._ended_at is not None else self._clock.monotonic()
        return BatchReport(
            outcomes=outcomes,
            reserved=self.ledger.reserved,
            charged=self.ledger.charged,
            released=self.ledger.released,
            stopped_reason=self._stopped_reason or self._refusals(outcomes),
            resubmitted=self._resubmitted,
            elapsed=end - self._started_at,
            requests=self._requests.sent + self._listener.read_requests,
        )

    def _refusals(self, outcomes: list[Outcome]) -> str | None:
        """Why inputs were skipped for their model (retired, refused), if any were."""
        models = dict.fromkeys(
            o.request.model
            for o in outcomes
            if o.reason is SkipReason.MODEL_REFUSED and o.request is not None
        )
        found = [f"{m}: {self._models_refused[m]}" for m in models if m in self._models_refused]
        return "model refused: " + "; ".join(found) if found else None

    def created(self) -> list[Task]:
        """Every task this batch created or adopted so far, as first seen, ended or not."""
        return list(self._created_tasks.values())

    @property
    def finished(self) -> bool:
        """Whether the batch has ended (its `async with` block is done)."""
        return self._ended_at is not None

    @property
    def reads(self) -> int:
        """Task reads so far (ids read, in batch reads or alone)."""
        return self._listener.reads
