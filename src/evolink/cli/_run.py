"""One run of the command: plan from the journal, drive a `Batch`, download, record.

The SDK's batch does the scheduling; this module ties its hooks to the journal (each create
written before it is sent), downloads every completed task's images while the batch goes on,
and turns everything into `Result`s for the manifest, the gallery and the summary.
"""

from __future__ import annotations

import enum
import math
import signal
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream

from evolink._batch import Batch
from evolink._client import AsyncEvolink
from evolink._downloads import Downloader, image_stem, sweep_partials
from evolink._errors import AuthenticationError, DownloadError, EvolinkError, NotFoundError
from evolink._models import GenerationRequest, Task
from evolink._outcomes import Outcome, OutcomeKind
from evolink._progress import BatchProgress
from evolink.cli._gallery import write_gallery
from evolink.cli._input import PromptFile, Row
from evolink.cli._journal import FINAL_STATUSES, JOURNAL_NAME, FileEntry, Journal, JournalEntry
from evolink.cli._manifest import Result, write_manifest
from evolink.cli._view import Snapshot, View

#: Images fetched at once.
DOWNLOADS_AT_ONCE = 8
#: Seconds between snapshots handed to the view (every outcome forces one).
_REFRESH_EVERY = 0.05
#: Seconds between snapshots when nothing happens: the clock on the panel keeps moving.
TICK_EVERY = 1.0
_FAILED = frozenset({"failed", "cancelled", "uncertain", "abandoned", "download_failed"})
#: The error code of inputs the run stopped (Ctrl-C) before they ended.
STOPPED = "stopped"


def was_interrupted(status: str, error_code: str | None) -> bool:
    """Whether an input ended because the run was stopped, not because it failed."""
    return status == "abandoned" or (status in _FAILED and error_code == STOPPED)


class RunRefusedError(Exception):
    """The run cannot start as asked (a journal in the way, a changed input)."""


@attrs.frozen(kw_only=True)
class RunConfig:
    """How to run a batch."""

    out: Path
    title: str
    max_in_flight: int = 32
    max_credits: Decimal | None = None
    resume: bool = False
    #: On resume, create failed inputs again (a new task each; never one that may exist).
    retry_failed: bool = False
    #: Idempotency keys to create inputs with, by index: a create sent before with this key
    #: (`generate --idempotency-key`) is answered with its task instead of a new one.
    keys: Mapping[int, str] = attrs.field(factory=dict)
    journal: bool = True
    outputs: bool = True  # manifest.jsonl and index.html
    #: Keep files already in the folder (a new name instead); off when a journal says
    #: which files are this run's.
    keep_existing: bool = False
    max_download_bytes: int = 50 * 1024 * 1024
    #: What to tell the user after Ctrl-C.
    interrupted_hint: str = (
        "the journal is saved: run the same command with --resume to continue without"
        " creating any task twice"
    )


@attrs.frozen(kw_only=True)
class RunSummary:
    """What a run ended with."""

    results: tuple[Result, ...]
    out: Path
    manifest: Path | None
    gallery: Path | None
    reserved: Decimal
    charged: Decimal
    elapsed: float
    interrupted: bool
    resumed: int = 0
    #: Inputs resumed as done that had failed (`--retry-failed` sends them again).
    failed_before: int = 0
    #: Failed inputs of earlier runs sent again (`--retry-failed`).
    retried: int = 0
    interrupted_hint: str = ""

    @property
    def ok(self) -> bool:
        """Whether every input completed with its images on disk."""
        return all(r.ok for r in self.results)

    def count(self, status: str) -> int:
        """Inputs that ended with `status`."""
        return sum(1 for r in self.results if r.status == status)


@attrs.define
class _State:
    """The run's mutable bookkeeping (one event loop, so no locks)."""

    rows: tuple[Row, ...]
    view: View
    journal: Journal | None
    status: dict[int, str] = attrs.field(factory=dict)
    results: dict[int, Result] = attrs.field(factory=dict)
    files: dict[int, list[FileEntry]] = attrs.field(factory=dict)
    order: list[int] = attrs.field(factory=list)  # batch index -> row index
    progress: BatchProgress | None = None
    max_credits: Decimal | None = None
    started: float = attrs.field(factory=time.monotonic)
    finished_here: int = 0
    resumed: int = 0
    failed_before: int = 0
    retried: int = 0
    keys: dict[int, str] = attrs.field(factory=dict)  # each input's last idempotency key
    task_ids: dict[int, str] = attrs.field(factory=dict)  # each input's last task
    spent_before: Decimal = Decimal(0)  # charged by earlier runs for inputs already done
    prices: dict[str, Decimal] = attrs.field(factory=dict)  # per image, seen by earlier runs
    interrupted: bool = False
    keep_existing: bool = False
    refreshed: float = 0.0

    def request_body(self, index: int) -> dict[str, Any]:
        request = self.rows[index].request
        return request.to_body() if request is not None else {"prompt": self.rows[index].prompt}

    def snapshot(self) -> Snapshot:
        counts: dict[str, int] = {}
        for value in self.status.values():
            counts[value] = counts.get(value, 0) + 1
        progress = self.progress
        in_flight = (progress.in_flight + progress.creating) if progress is not None else 0
        completed = counts.get("completed", 0)
        interrupted = sum(
            1 for r in self.results.values() if was_interrupted(r.status, r.error_code)
        )
        failed = sum(counts.get(s, 0) for s in _FAILED) - interrupted
        rejected = counts.get("rejected", 0)
        skipped = counts.get("skipped", 0)
        downloading = counts.get("downloading", 0)
        total = len(self.rows)
        finished = completed + failed + rejected + skipped + interrupted
        waiting = max(0, total - finished - in_flight - downloading)
        elapsed = time.monotonic() - self.started
        left = total - finished
        eta = None
        if left == 0:
            eta = 0.0
        elif self.finished_here and elapsed > 0:
            eta = left * elapsed / self.finished_here
        return Snapshot(
            total=total,
            completed=completed,
            failed=failed,
            interrupted=interrupted,
            rejected=rejected,
            skipped=skipped,
            in_flight=in_flight,
            downloading=downloading,
            waiting=waiting,
            images=sum(len(f) for f in self.files.values()),
            reserved=progress.reserved if progress is not None else Decimal(0),
            # The whole input's, as the summary counts it: earlier runs' charges included.
            charged=self.spent_before + (progress.charged if progress is not None else 0),
            released=progress.released if progress is not None else Decimal(0),
            earlier=self.spent_before,
            max_credits=self.max_credits,
            elapsed=elapsed,
            eta=eta,
        )

    def refresh(self, *, force: bool = False) -> None:
        """Hand the view a snapshot; at most every `_REFRESH_EVERY` s unless `force`."""
        now = time.monotonic()
        if force or now - self.refreshed >= _REFRESH_EVERY:
            self.refreshed = now
            self.view.update(self.snapshot())

    def finish(self, result: Result, *, here: bool = True) -> None:
        """Record how an input ended (in memory, the journal, and the view)."""
        self.results[result.index] = result
        self.status[result.index] = result.status
        if here:
            self.finished_here += 1
            name = result.files[0] if result.files else result.prompt[:60]
            detail = f"{len(result.files)} image(s)" if result.ok else (result.error_code or "")
            total = len(self.rows)
            self.view.event(
                f"[{result.index + 1:>{len(str(total))}}/{total}] {result.status:<9} {name}"
                f"  {detail}".rstrip(),
                ok=result.ok,
            )
        self.refresh(force=True)


def _result_from_entry(row: Row, entry: JournalEntry, files: list[FileEntry]) -> Result:
    return Result(
        index=row.index,
        line=row.line,
        prompt=row.prompt,
        status=entry.status,
        request=entry.request,
        task_id=entry.task_id,
        reserved=entry.reserved,
        charged=entry.charged,
        files=tuple(f.path for f in files),
        error_code=entry.error_code,
        error_message=entry.error_message,
        idempotency_key=entry.idempotency_key,
    )


def _downloads_complete(out: Path, entry: JournalEntry, files: list[FileEntry]) -> bool:
    wanted = len(entry.results)
    present = [f for f in files if (out / f.path).is_file()]
    return len(present) >= wanted


class _Do(enum.Enum):
    """What a run does with an input the journal has not seen finish."""

    SUBMIT = "submit"  # never sent: a new create
    RECONCILE = "reconcile"  # sent, answer unknown: the same create with the same key
    ADOPT = "adopt"  # created: watch the task, create nothing


@attrs.frozen
class _Action:
    """What to do with one input on this run."""

    kind: _Do
    row: Row
    key: str | None = None
    task_id: str | None = None


def _plan(
    state: _State,
    out: Path,
    entries: Mapping[int, JournalEntry],
    *,
    retry_failed: bool = False,
    keys: Mapping[int, str] | None = None,
) -> list[_Action]:
    """Decide, per input, between nothing (done), adopt, reconcile and submit.

    With `retry_failed`, an input whose task failed (or whose create was refused) is
    submitted again under a new key. Inputs whose task may exist are never: they are
    adopted (task id known) or resent with their own key (the server answers with the task
    it made, or makes it once), as on any resume.
    """
    actions: list[_Action] = []
    for row in state.rows:
        entry = entries.get(row.index)
        files = state.files.get(row.index, [])
        if row.request is None:
            if entry is None and state.journal is not None:
                state.journal.record_outcome(
                    row.index,
                    state.request_body(row.index),
                    status="rejected",
                    error_code="invalid",
                    error_message=row.error,
                )
            state.finish(
                Result(
                    index=row.index,
                    line=row.line,
                    prompt=row.prompt,
                    status="rejected",
                    error_code="invalid",
                    error_message=f"line {row.line}: {row.error}",
                ),
                here=entry is None,
            )
            continue
        if entry is None:
            key = (keys or {}).get(row.index)
            actions.append(_Action(_Do.SUBMIT if key is None else _Do.RECONCILE, row, key=key))
            continue
        if retry_failed and entry.status == "failed":
            state.retried += 1
            actions.append(_Action(_Do.SUBMIT, row))
        elif entry.status in FINAL_STATUSES and (
            entry.status != "completed" or _downloads_complete(out, entry, files)
        ):
            state.resumed += 1
            state.failed_before += entry.status == "failed"
            state.spent_before += entry.charged or 0
            _learn_price(state, entry)
            state.finish(_result_from_entry(row, entry, files), here=False)
        elif entry.task_id is not None:
            actions.append(_Action(_Do.ADOPT, row, task_id=entry.task_id))
        elif entry.idempotency_key is not None:
            actions.append(_Action(_Do.RECONCILE, row, key=entry.idempotency_key))
        else:
            actions.append(_Action(_Do.SUBMIT, row))
    return actions


async def _produce(
    client: AsyncEvolink, batch: Batch, state: _State, actions: list[_Action]
) -> None:
    for action in actions:
        request = action.row.request
        assert request is not None  # noqa: S101 - only valid rows get actions
        if action.kind is _Do.ADOPT:
            assert action.task_id is not None  # noqa: S101
            task = await _read_task(client, state, action, action.task_id)
            if task is None:
                continue
            state.order.append(action.row.index)
            await batch.adopt(task, request)
        else:
            state.order.append(action.row.index)
            await batch.submit(request, idempotency_key=action.key)


async def _read_task(
    client: AsyncEvolink, state: _State, action: _Action, task_id: str
) -> Task | None:
    try:
        return await client.tasks.get(task_id)
    except EvolinkError as exc:
        code = "task_not_found" if isinstance(exc, NotFoundError) else type(exc).__name__
        result = Result(
            index=action.row.index,
            line=action.row.line,
            prompt=action.row.prompt,
            status="uncertain",
            request=state.request_body(action.row.index),
            task_id=task_id,
            error_code=code,
            error_message=str(exc),
        )
        if state.journal is not None:
            state.journal.record_outcome(
                result.index,
                state.request_body(result.index),
                status="uncertain",
                task_id=task_id,
                error_code=code,
                error_message=str(exc),
            )
        state.finish(result)
        return None


def _hooks(state: _State, send: Any) -> dict[str, Any]:
    journal = state.journal

    def on_create(batch_index: int, request: GenerationRequest, key: str) -> None:
        index = state.order[batch_index]
        state.keys[index] = key  # known before the create is sent: it can find the task
        if journal is not None:
            journal.record_create(index, request.to_body(), key)

    def on_created(batch_index: int, task: Task) -> None:
        index = state.order[batch_index]
        state.task_ids[index] = task.id
        if journal is not None:
            journal.record_created(index, state.request_body(index), task.id)

    def on_outcome(outcome: Outcome) -> None:
        index = state.order[outcome.index]
        status = str(outcome.kind)
        if journal is not None:
            journal.record_outcome(
                index,
                state.request_body(index),
                status=status,
                task_id=outcome.task_id,
                error_code=outcome.error_code or (str(outcome.reason) if outcome.reason else None),
                error_message=outcome.error_message,
                reserved=outcome.credits.reserved,
                charged=outcome.credits.charged,
                results=outcome.results,
            )
        if outcome.kind is OutcomeKind.COMPLETED:
            state.status[index] = "downloading"
            send.send_nowait(outcome)
            state.refresh()
        else:
            state.finish(_result_of(state, index, outcome, status, ()))

    def on_progress(progress: BatchProgress) -> None:
        state.progress = progress
        state.refresh()

    return {
        "on_create": on_create,
        "on_created": on_created,
        "on_outcome": on_outcome,
        "on_progress": on_progress,
    }


def _result_of(
    state: _State,
    index: int,
    outcome: Outcome,
    status: str,
    files: tuple[str, ...],
    *,
    error: str | None = None,
) -> Result:
    row = state.rows[index]
    code = outcome.error_code or (str(outcome.reason) if outcome.reason else None)
    message = outcome.error_message
    if outcome.kind is OutcomeKind.ABANDONED:
        code = STOPPED
        message = "interrupted: the task was created and may still finish (and be charged)"
    return Result(
        index=index,
        line=row.line,
        prompt=row.prompt,
        status=status,
        request=state.request_body(index),
        task_id=outcome.task_id,
        reserved=outcome.credits.reserved if outcome.task is not None else None,
        charged=outcome.credits.charged if outcome.task is not None else None,
        files=files,
        error_code="download_failed" if error is not None else code,
        error_message=error if error is not None else message,
        idempotency_key=outcome.idempotency_key or state.keys.get(index),
    )


def _free_stem(folder: Path, stem: str) -> str:
    """`stem`, or `stem-2`, `stem-3`, ... if a file by that name is already there."""
    candidate, suffix = stem, 1
    while any(folder.glob(f"{candidate}.*")):
        suffix += 1
        candidate = f"{stem}-{suffix}"
    return candidate


async def _download_all(
    receive: MemoryObjectReceiveStream[Outcome], downloader: Downloader, state: _State
) -> None:
    limiter = anyio.CapacityLimiter(DOWNLOADS_AT_ONCE)
    async with anyio.create_task_group() as tg, receive:
        async for outcome in receive:
            tg.start_soon(_download_one, outcome, downloader, state, limiter)


async def _download_one(
    outcome: Outcome, downloader: Downloader, state: _State, limiter: anyio.CapacityLimiter
) -> None:
    index = state.order[outcome.index]
    row = state.rows[index]
    done = {
        f.number: f for f in state.files.get(index, []) if (downloader.folder / f.path).is_file()
    }
    errors: list[str] = []
    for number, url in enumerate(outcome.results, start=1):
        if number in done:
            continue
        try:
            async with limiter:
                stem = image_stem(index, row.prompt, number)
                if state.keep_existing:
                    stem = _free_stem(downloader.folder, stem)
                got = await downloader.fetch(url, stem)
        except DownloadError as exc:
            errors.append(f"image {number}: {exc}")
            continue
        entry = FileEntry(index, number, url, got.path.name, got.size)
        done[number] = entry
        state.files[index] = sorted(done.values(), key=lambda f: f.number)
        if state.journal is not None:
            state.journal.record_file(entry)
        state.refresh()
    files = tuple(done[n].path for n in sorted(done))
    if not outcome.results:
        errors.append("the task completed without any image")
    error = "; ".join(errors) if errors else None
    status = "download_failed" if error is not None else "completed"
    if state.journal is not None and error is not None:
        state.journal.record_outcome(
            index,
            state.request_body(index),
            status="download_failed",
            task_id=outcome.task_id,
            error_code="download_failed",
            error_message=error,
            reserved=outcome.credits.reserved,
            charged=outcome.credits.charged,
            results=outcome.results,
        )
    state.finish(_result_of(state, index, outcome, status, files, error=error))


async def _interrupt_on_sigint(scope: anyio.CancelScope, state: _State) -> None:
    try:
        receiver = anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
        with receiver as signals:
            async for _ in signals:
                state.interrupted = True
                scope.cancel()
                return
    except NotImplementedError:  # pragma: no cover - Windows: Ctrl-C arrives as KeyboardInterrupt
        return


async def _tick(state: _State) -> None:
    """Hand the view a snapshot every `TICK_EVERY` s: elapsed time moves without events."""
    while True:
        await anyio.sleep(TICK_EVERY)
        state.refresh(force=True)


async def _check_key(client: AsyncEvolink) -> None:
    """Read the balance once before any create: a refused key stops the run here, whole,
    instead of failing every input in flight and skipping the rest.

    Raises:
        AuthenticationError: the API refused the key.
    """
    try:
        await client.credits()
    except AuthenticationError:
        raise
    except EvolinkError:
        return  # anything else is the batch's to meet, and to report per input


async def run_batch(
    client: AsyncEvolink,
    http: httpx.AsyncClient,
    prompts: PromptFile,
    config: RunConfig,
    view: View,
) -> RunSummary:
    """Run every input of `prompts` as one batch into `config.out`; see the module docstring.

    Raises:
        RunRefusedError: a journal of another run is in the way, or `--resume` with none.
        AuthenticationError: the API refused the key (before anything was created).
    """
    out = config.out
    if config.resume and config.journal and not Journal.exists(out):
        # Resuming nothing would silently start the whole (paid) run from scratch.
        raise RunRefusedError(
            f"--resume: {out} holds no journal ({JOURNAL_NAME}) to continue; check --out,"
            " or run without --resume to start a new run there"
        )
    out.mkdir(parents=True, exist_ok=True)
    journal: Journal | None = None
    entries: dict[int, JournalEntry] = {}
    if config.journal:
        journal = Journal.open(out)  # holds the folder: no other run sweeps or writes it
        try:
            _check_journal(journal, out, resume=config.resume)
            journal.bind(prompts.fingerprint(), resume=config.resume)
            entries = journal.entries() if config.resume else {}
        except BaseException:
            journal.close()
            raise
    sweep_partials(out)
    state = _State(
        prompts.rows,
        view,
        journal,
        max_credits=config.max_credits,
        keep_existing=config.keep_existing,
    )
    if journal is not None and config.resume:
        state.files = journal.files()
    view.start(config.title)
    try:
        actions = _plan(
            state,
            out,
            entries,
            retry_failed=config.resume and config.retry_failed,
            keys=config.keys,
        )
        if actions:
            await _check_key(client)  # outside the task group: its error stays itself
        downloader = Downloader(client=http, folder=out, max_bytes=config.max_download_bytes)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                if threading.current_thread() is threading.main_thread():
                    tg.start_soon(_interrupt_on_sigint, scope, state)
                tg.start_soon(_tick, state)
                await _drive(client, downloader, state, actions, config)
                tg.cancel_scope.cancel()
    finally:
        state.refresh(force=True)
        view.stop()
        if journal is not None:
            journal.close()
    return _summarize(state, config)


async def _drive(
    client: AsyncEvolink,
    downloader: Downloader,
    state: _State,
    actions: list[_Action],
    config: RunConfig,
) -> None:
    if not actions:
        return
    send, receive = anyio.create_memory_object_stream[Outcome](max_buffer_size=math.inf)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_download_all, receive, downloader, state)
        with send:
            # The budget is for the whole input: what earlier runs charged counts against it.
            budget = config.max_credits
            if budget is not None:
                budget = max(Decimal(0), budget - state.spent_before)
            async with client.batch(
                max_in_flight=config.max_in_flight,
                max_credits=budget,
                price_hints=state.prices,
                total=len(actions),
                **_hooks(state, send),
            ) as batch:
                await _produce(client, batch, state, actions)


def _summarize(state: _State, config: RunConfig) -> RunSummary:
    results: list[Result] = []
    for row in state.rows:
        result = state.results.get(row.index)
        if result is None:  # never reached, or its images were on their way (interrupted)
            downloading = state.status.get(row.index) == "downloading"
            result = Result(
                index=row.index,
                line=row.line,
                prompt=row.prompt,
                status="abandoned" if downloading else "skipped",
                request=state.request_body(row.index),
                task_id=state.task_ids.get(row.index),
                error_code=STOPPED if state.interrupted else None,
                error_message="interrupted while its images were downloading"
                if downloading
                else None,
                idempotency_key=state.keys.get(row.index),
            )
        results.append(result)
    manifest = gallery = None
    if config.outputs:
        manifest = write_manifest(config.out, results)
        gallery = write_gallery(config.out, results, title=config.title)
    progress = state.progress
    return RunSummary(
        results=tuple(results),
        out=config.out,
        manifest=manifest,
        gallery=gallery,
        reserved=progress.reserved if progress is not None else Decimal(0),
        charged=state.spent_before + (progress.charged if progress is not None else 0),
        elapsed=time.monotonic() - state.started,
        interrupted=state.interrupted,
        resumed=state.resumed,
        failed_before=state.failed_before,
        retried=state.retried,
        interrupted_hint=config.interrupted_hint,
    )


def _check_journal(journal: Journal, out: Path, *, resume: bool) -> None:
    """Refuse to start over a journal with work in it, unless resuming it."""
    if not resume and journal.has_work():
        raise RunRefusedError(
            f"{out} holds the journal of an earlier run: add --resume to continue it,"
            " or choose another --out"
        )


def _learn_price(state: _State, entry: JournalEntry) -> None:
    """Keep what an earlier run's create told of its model's price (for the budget)."""
    model = entry.request.get("model")
    n = entry.request.get("n") or 1
    if entry.reserved and isinstance(model, str) and isinstance(n, int) and n > 0:
        price = entry.reserved / n
        state.prices[model] = max(state.prices.get(model, Decimal(0)), price)
