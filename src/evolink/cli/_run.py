"""One run of the command: drive a journaled `Batch`, download, record.

The SDK's batch does the scheduling and the journal (each create written before it is
sent; on `--resume` the core planner, `evolink._resume`, decides per input what to adopt,
read, resend or create). This module binds the journal (the folder's, or a PostgreSQL
database's run: `_run_journal`) to the input file, downloads every completed task's images
while the batch goes on (recording each file), and turns everything into `Result`s for the
manifest, the gallery and the summary.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Mapping, Sequence
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
from evolink._errors import AuthenticationError, DownloadError, EvolinkError, JournalError
from evolink._journal import (
    DEFAULT_RUN,
    EntryStatus,
    FileRecord,
    InputRecord,
    JournalEntry,
    OutcomeRecord,
)
from evolink._models import GenerationRequest, Task
from evolink._outcomes import Outcome, OutcomeKind
from evolink._progress import BatchProgress
from evolink._resume import Action, plan_input
from evolink.cli._gallery import write_gallery
from evolink.cli._input import PromptFile, Row
from evolink.cli._manifest import Result, write_manifest
from evolink.cli._media import files_noun
from evolink.cli._run_journal import RunJournal, RunRefusedError, open_run_journal
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
    #: A PostgreSQL URL: the journal is run `run` in that database, not the folder's file.
    journal_url: str | None = None
    run: str = DEFAULT_RUN
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

    @property
    def possible_duplicates(self) -> int:
        """Inputs that may have been paid twice (`Result.possible_duplicate`)."""
        return sum(1 for r in self.results if r.possible_duplicate)


@attrs.define
class _State:
    """The run's mutable bookkeeping (one event loop, so no locks)."""

    rows: tuple[Row, ...]
    view: View
    journal: RunJournal | None
    status: dict[int, str] = attrs.field(factory=dict)
    results: dict[int, Result] = attrs.field(factory=dict)
    files: dict[int, list[FileRecord]] = attrs.field(factory=dict)
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
    #: What the saved files are called (`files_noun`), kept as inputs finish: the view's
    #: snapshots come every 50 ms and must not walk every file of a large run.
    files_noun: str = "images"
    prices: dict[str, Decimal] = attrs.field(factory=dict)  # per image, seen by earlier runs
    interrupted: bool = False
    keep_existing: bool = False
    refreshed: float = 0.0
    keys_proven: bool = False  # the server showed it replays idempotency keys

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
            files_noun=self.files_noun,
            reserved=progress.reserved if progress is not None else Decimal(0),
            # The whole input's, as the summary counts it: the batch counts earlier runs'
            # charges (its journal's ended inputs) from its start.
            charged=progress.charged if progress is not None else self.spent_before,
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
        noun = files_noun(result.files)
        if noun != "images":
            self.files_noun = noun
        if here:
            self.finished_here += 1
            name = result.files[0] if result.files else result.prompt[:60]
            one = noun[:-1]  # "image", or "file" for a video or a sound
            detail = f"{len(result.files)} {one}(s)" if result.ok else (result.error_code or "")
            total = len(self.rows)
            self.view.event(
                f"[{result.index + 1:>{len(str(total))}}/{total}] {result.status:<9} {name}"
                f"  {detail}".rstrip(),
                ok=result.ok,
            )
        self.refresh(force=True)


def _downloads_complete(out: Path, outcome: Outcome, files: list[FileRecord]) -> bool:
    present = [f for f in files if (out / f.path).is_file()]
    return len(present) >= len(outcome.results)


async def _record_rejected(state: _State, entries: Mapping[int, JournalEntry]) -> list[Row]:
    """Finish the rows that cannot be sent (recorded once); return the rows to send."""
    rows: list[Row] = []
    for row in state.rows:
        if row.request is not None:
            rows.append(row)
            continue
        entry = entries.get(row.index)
        if entry is None and state.journal is not None:
            await state.journal.store.record_outcome(
                InputRecord(
                    run=state.journal.run, index=row.index, body=state.request_body(row.index)
                ),
                OutcomeRecord(
                    status=EntryStatus.REJECTED, error_code="invalid", error_message=row.error
                ),
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
    return rows


def _needs_the_api(
    rows: list[Row], entries: Mapping[int, JournalEntry], *, retry_failed: bool
) -> bool:
    """Whether any row will send a request (else the key is not even checked)."""
    return any(
        plan_input(entries.get(row.index), retry_failed=retry_failed).action is not Action.ADOPT
        for row in rows
    )


async def _produce(batch: Batch, state: _State, rows: list[Row], config: RunConfig) -> None:
    for row in rows:
        state.order.append(row.index)
        await batch.submit(
            row.request,  # type: ignore[arg-type]  # only valid rows are sent
            idempotency_key=config.keys.get(row.index),
            journal_index=row.index,
        )


def _hooks(state: _State, send: Any, out: Path) -> dict[str, Any]:
    def on_create(batch_index: int, _request: GenerationRequest, key: str) -> None:
        # Known before the create is sent: it can find the task (the batch journals it).
        state.keys[state.order[batch_index]] = key

    def on_created(batch_index: int, task: Task) -> None:
        state.task_ids[state.order[batch_index]] = task.id

    def on_outcome(outcome: Outcome) -> None:
        index = state.order[outcome.index]
        status = str(outcome.kind)
        files = state.files.get(index, [])
        # Ended in an earlier run (its charge is in the batch's ledger); a completed one whose
        # images are not all on disk yet is downloaded as if it had just completed.
        done = outcome.kind is not OutcomeKind.COMPLETED or _downloads_complete(out, outcome, files)
        if outcome.resumed and done:
            state.resumed += 1
            state.failed_before += outcome.kind is OutcomeKind.FAILED
            paths = tuple(f.path for f in files)
            state.finish(_result_of(state, index, outcome, status, paths), here=False)
            return
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
        possible_duplicate=outcome.possible_duplicate,
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
        entry = FileRecord(index=index, number=number, url=url, path=got.path.name, size=got.size)
        done[number] = entry
        state.files[index] = sorted(done.values(), key=lambda f: f.number)
        if state.journal is not None:
            await state.journal.store.record_file(state.journal.run, entry)
        state.refresh()
    files = tuple(done[n].path for n in sorted(done))
    if not outcome.results:
        errors.append("the task completed without any image")
    error = "; ".join(errors) if errors else None
    status = "download_failed" if error is not None else "completed"
    if state.journal is not None and error is not None:
        await state.journal.store.record_outcome(
            InputRecord(run=state.journal.run, index=index, body=state.request_body(index)),
            OutcomeRecord(
                status=EntryStatus.DOWNLOAD_FAILED,
                task_id=outcome.task_id,
                error_code="download_failed",
                error_message=error,
                reserved=outcome.credits.reserved,
                charged=outcome.credits.charged,
                results=outcome.results,
                possible_duplicate=outcome.possible_duplicate,
            ),
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
    if not config.journal:
        config.out.mkdir(parents=True, exist_ok=True)
        return await _run_journaled(client, http, prompts, config, view, None)
    async with open_run_journal(
        config.out, url=config.journal_url, run=config.run, resume=config.resume
    ) as journal:
        return await _run_journaled(client, http, prompts, config, view, journal)


async def _run_journaled(
    client: AsyncEvolink,
    http: httpx.AsyncClient,
    prompts: PromptFile,
    config: RunConfig,
    view: View,
    journal: RunJournal | None,
) -> RunSummary:
    out = config.out
    entries: Mapping[int, JournalEntry] = {}
    state_files: Mapping[int, Sequence[FileRecord]] = {}
    if journal is not None:
        entries = await _bind(journal, prompts.fingerprint(), resume=config.resume)
        if config.resume:
            state_files = await journal.store.files(journal.run)
    sweep_partials(out)
    state = _State(
        prompts.rows,
        view,
        journal,
        max_credits=config.max_credits,
        keep_existing=config.keep_existing,
    )
    if journal is not None and config.resume:
        state.files = {index: list(files) for index, files in state_files.items()}
        _learn_from(state, entries, retry_failed=config.retry_failed)
    view.start(config.title)
    try:
        rows = await _record_rejected(state, entries)
        if _needs_the_api(rows, entries, retry_failed=config.resume and config.retry_failed):
            await _check_key(client)  # outside the task group: its error stays itself
        downloader = Downloader(client=http, folder=out, max_bytes=config.max_download_bytes)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                if threading.current_thread() is threading.main_thread():
                    tg.start_soon(_interrupt_on_sigint, scope, state)
                tg.start_soon(_tick, state)
                await _drive(client, downloader, state, rows, config)
                tg.cancel_scope.cancel()
    finally:
        state.refresh(force=True)
        view.stop()
        # Shown by the run's end to replay keys: the resends flagged before were replays
        # (the batch's report and journal say so too).
        state.keys_proven = client.idempotency_confirmed
    return _summarize(state, config)


async def _drive(
    client: AsyncEvolink,
    downloader: Downloader,
    state: _State,
    rows: list[Row],
    config: RunConfig,
) -> None:
    if not rows:
        return
    send, receive = anyio.create_memory_object_stream[Outcome](max_buffer_size=math.inf)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_download_all, receive, downloader, state)
        with send:
            # The budget is for the whole input: the batch counts what earlier runs charged
            # (its journal's ended inputs) against it.
            budget = config.max_credits
            async with client.batch(
                max_in_flight=config.max_in_flight,
                max_credits=budget,
                price_hints=state.prices,
                total=len(rows),
                journal=state.journal.store if state.journal is not None else None,
                run=state.journal.run if state.journal is not None else DEFAULT_RUN,
                resume_failed=config.resume and config.retry_failed,
                **_hooks(state, send, config.out),
            ) as batch:
                await _produce(batch, state, rows, config)


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
        if result.possible_duplicate and state.keys_proven:
            result = attrs.evolve(result, possible_duplicate=False)
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
        charged=progress.charged if progress is not None else state.spent_before,
        elapsed=time.monotonic() - state.started,
        interrupted=state.interrupted,
        resumed=state.resumed,
        failed_before=state.failed_before,
        retried=state.retried,
        interrupted_hint=config.interrupted_hint,
    )


async def _bind(
    journal: RunJournal, fingerprint: str, *, resume: bool
) -> Mapping[int, JournalEntry]:
    """Tie the journal to the input; return what it holds to resume (nothing on a new run).

    Raises:
        RunRefusedError: a new run over a journal with work in it.
        JournalError: resuming with an input that changed.
    """
    store, run = journal.store, journal.run
    entries = await store.entries(run)
    # A rejected row sent nothing: a journal of rejections only is no earlier run.
    if not resume and any(e.status is not EntryStatus.REJECTED for e in entries.values()):
        raise RunRefusedError(
            f"{journal.place} holds the journal of an earlier run: add --resume to continue"
            f" it, or {journal.elsewhere}"
        )
    known = await store.bind_run(run, fingerprint)
    if resume and known is not None and known != fingerprint:
        await store.bind_run(run, known)  # keep the run's own input
        raise JournalError(
            "the input changed since this journal was written; resume with the same "
            f"file and options, or {journal.elsewhere}"
        )
    return entries if resume else {}


def _learn_from(state: _State, entries: Mapping[int, JournalEntry], *, retry_failed: bool) -> None:
    """Keep what earlier runs told: what the inputs they ended charged and each model's
    price (for the budget: it bounds the whole input), and how many failed inputs
    `--retry-failed` sends again."""
    for entry in entries.values():
        if retry_failed and entry.status is EntryStatus.FAILED:
            state.retried += 1
        if plan_input(entry, retry_failed=retry_failed).action is Action.ADOPT:
            state.spent_before += entry.charged or 0
        model = entry.body.get("model")
        n = entry.body.get("n") or 1
        if entry.reserved and isinstance(model, str) and isinstance(n, int) and n > 0:
            price = entry.reserved / n
            state.prices[model] = max(state.prices.get(model, Decimal(0)), price)
