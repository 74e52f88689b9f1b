"""`evolink worker`: take a distributed run's jobs off the queue and run them.

A job is a range of a run's inputs. The worker runs it as one batch on the run's
PostgreSQL journal, submitting each input at its place in the run (`journal_index`), so
the core planner decides what a job taken over from a dead worker does with each input:
adopt its outcome, read its task again, resend its create under the recorded key, or
create it. Its creates hold the run's shared credits first (`PostgresCredits`), and a 429
any worker meets brakes them all (`PostgresBrake`). Completed inputs' files are saved in
the run's folder and recorded; a file recorded and on disk is never fetched again.

Workers beat a heartbeat (procrastinate's); every worker also looks for jobs whose worker
stopped beating (killed, machine gone) and puts them back on the queue. A job that
succeeds is deleted from the queue at once (its inputs' story is in the journal); one that
failed for good stays, for `evolink status` to show.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream

from evolink._client import AsyncEvolink
from evolink._downloads import Downloader, image_stem
from evolink._errors import DownloadError, EvolinkError
from evolink._journal import EntryStatus, FileRecord, InputRecord, OutcomeRecord
from evolink._journal_postgres import PostgresJournal
from evolink._limits_postgres import PostgresBrake, PostgresCredits
from evolink._outcomes import Outcome, OutcomeKind
from evolink.cli._distributed import (
    QUEUE,
    TASK_NAME,
    StoredInput,
    ensure_queue_schema,
    load_inputs,
    load_plan,
    price_hints,
    queue_app,
)

if TYPE_CHECKING:
    from procrastinate import App

logger = logging.getLogger("evolink.worker")

#: Images one job fetches at once.
DOWNLOADS_AT_ONCE = 8
#: Outcomes after which a job is run again (its inputs may still end): procrastinate
#: retries the job, and the planner picks up where it stopped.
_UNFINISHED = frozenset({OutcomeKind.UNCERTAIN, OutcomeKind.ABANDONED})
#: Times a job is tried before it is left failed (a takeover of a stalled worker's job
#: counts as one: procrastinate's attempts).
JOB_ATTEMPTS = 10


class ChunkUnfinishedError(Exception):
    """Some inputs of a job did not end (a create's answer lost, a download failed)."""


@attrs.frozen
class Lease:
    """A worker's hold on one job: the attempt it was given. A worker thought dead (no
    heartbeat for `stalled_after` seconds, though alive) loses its job to another worker,
    which runs it as a new attempt: from then on the journal records nothing of the old
    attempt's (its window's fence), so it sends no create and overwrites nothing."""

    job_id: int
    attempt: int

    async def holds(self, conn: Any) -> bool:
        """Whether this attempt still runs the job; locks the job's row until the caller's
        transaction ends, so a takeover waits for a create being recorded."""
        cursor = await conn.execute(
            "SELECT 1 FROM procrastinate_jobs WHERE id = %s AND attempts = %s"
            " AND status = 'doing' FOR SHARE",
            (self.job_id, self.attempt),
        )
        return await cursor.fetchone() is not None


@attrs.frozen(kw_only=True)
class WorkerConfig:
    """How a worker runs.

    Attributes:
        max_in_flight: tasks one job keeps running at once.
        jobs: jobs run at once (each its own batch).
        heartbeat: seconds between the worker's heartbeats.
        stalled_after: seconds without a heartbeat after which a worker's jobs are taken
            over.
        max_download_bytes: the largest file saved.
        burst: stop once no job is left to take (else wait for more until stopped).
        signals: stop on SIGINT and SIGTERM (off where the caller owns the signals).
    """

    max_in_flight: int = 32
    jobs: int = 1
    heartbeat: float = 10.0
    stalled_after: float = 30.0
    max_download_bytes: int = 50 * 1024 * 1024
    burst: bool = False
    signals: bool = True


@attrs.define
class ChunkRunner:
    """Runs one job: a batch over a range of a run's inputs, with its downloads."""

    client: AsyncEvolink
    http: httpx.AsyncClient
    journal: PostgresJournal
    config: WorkerConfig
    say: Callable[[str], None]
    #: Attempts (job id, attempts) taken over by another worker: the queue is told
    #: nothing of how they ended, since the job is the other attempt's.
    lost: set[tuple[int, int]] = attrs.field(factory=set)

    async def __call__(self, run: str, first: int, last: int, lease: Lease | None = None) -> None:
        """Run inputs `first` (included) to `last` (excluded) of `run`, as long as `lease`
        holds.

        Raises:
            ChunkUnfinishedError: some inputs did not end (the job is tried again).
        """
        pool = self.journal.pool
        plan = await load_plan(pool, run)
        if plan is None:
            raise EvolinkError(f"no run {run!r} in this database")
        inputs = [i for i in await load_inputs(pool, run, first, last) if i.request is not None]
        # This job's inputs only, written only while this attempt holds the job.
        journal = self.journal.window(first, last, fence=None if lease is None else lease.holds)
        saved = await journal.files(run)
        plan.out.mkdir(parents=True, exist_ok=True)
        downloader = Downloader(
            client=self.http, folder=plan.out, max_bytes=self.config.max_download_bytes
        )
        send, receive = anyio.create_memory_object_stream[tuple[StoredInput, Outcome]](
            max_buffer_size=math.inf
        )
        outcomes: list[Outcome] = []
        failed_downloads: list[int] = []

        def on_outcome(outcome: Outcome) -> None:
            outcomes.append(outcome)
            if outcome.kind is OutcomeKind.COMPLETED:
                send.send_nowait((outcome.tag, outcome))  # type: ignore[arg-type]

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    self._download_all, receive, downloader, journal, run, saved, failed_downloads
                )
                with send:
                    async with self.client.batch(
                        max_in_flight=self.config.max_in_flight,
                        max_credits=plan.max_credits,
                        price_hints=await price_hints(pool, run),
                        total=len(inputs),
                        journal=journal,
                        run=run,
                        shared_credits=PostgresCredits(
                            pool, run, fence=None if lease is None else lease.holds
                        ),
                        shared_brake=PostgresBrake(pool, run, clock=self.client.clock),
                        on_outcome=on_outcome,
                    ) as batch:
                        for item in inputs:
                            assert item.request is not None  # noqa: S101 - filtered above
                            await batch.submit(item.request, journal_index=item.index, tag=item)
        except Exception:
            if lease is None or await self._still_holds(lease):
                raise
            # The journal refused this attempt's writes: another worker runs the job now.
        if lease is not None and not await self._still_holds(lease):
            self.say(f"run {run} inputs {first}-{last - 1}: taken over by another worker")
            self.lost.add((lease.job_id, lease.attempt))
            return
        counts = batch.report().counts
        shown = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
        self.say(f"run {run} inputs {first}-{last - 1}: {shown}")
        unfinished = [o for o in outcomes if o.kind in _UNFINISHED]
        if unfinished or failed_downloads:
            raise ChunkUnfinishedError(
                f"{len(unfinished)} input(s) did not end, {len(failed_downloads)} download(s)"
                " failed: the job runs again"
            )

    async def _still_holds(self, lease: Lease) -> bool:
        async with self.journal.pool.connection() as conn:
            return await lease.holds(conn)

    async def _download_all(
        self,
        receive: MemoryObjectReceiveStream[tuple[StoredInput, Outcome]],
        downloader: Downloader,
        journal: PostgresJournal,
        run: str,
        saved: Any,
        failed: list[int],
    ) -> None:
        limiter = anyio.CapacityLimiter(DOWNLOADS_AT_ONCE)
        async with anyio.create_task_group() as tg, receive:
            async for item, outcome in receive:
                tg.start_soon(
                    self._download, item, outcome, downloader, journal, run, saved, limiter, failed
                )

    async def _download(
        self,
        item: StoredInput,
        outcome: Outcome,
        downloader: Downloader,
        journal: PostgresJournal,
        run: str,
        saved: Any,
        limiter: anyio.CapacityLimiter,
        failed: list[int],
    ) -> None:
        done = {
            f.number for f in saved.get(item.index, ()) if (downloader.folder / f.path).is_file()
        }
        errors = []
        for number, url in enumerate(outcome.results, start=1):
            if number in done:
                continue  # recorded and on disk: never fetched twice
            try:
                async with limiter:
                    got = await downloader.fetch(url, image_stem(item.index, item.prompt, number))
            except DownloadError as exc:
                errors.append(f"image {number}: {exc}")
                continue
            await journal.record_file(
                run,
                FileRecord(
                    index=item.index, number=number, url=url, path=got.path.name, size=got.size
                ),
            )
        if errors:
            failed.append(item.index)
            await journal.record_outcome(
                InputRecord(
                    run=run,
                    index=item.index,
                    body=outcome.request.to_body() if outcome.request is not None else {},
                ),
                OutcomeRecord(
                    status=EntryStatus.DOWNLOAD_FAILED,
                    task_id=outcome.task_id,
                    error_code="download_failed",
                    error_message="; ".join(errors),
                    reserved=outcome.credits.reserved,
                    charged=outcome.credits.charged,
                    results=outcome.results,
                ),
            )


async def requeue_stalled(app: App, config: WorkerConfig) -> None:
    """Put back on the queue the jobs of workers that stopped beating, until cancelled."""
    from procrastinate import exceptions  # noqa: PLC0415 - the `postgres` extra

    while True:
        await anyio.sleep(max(config.stalled_after / 3, 0.2))
        stalled = await app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=config.stalled_after, queue=QUEUE
        )
        for job in stalled:
            try:
                await app.job_manager.retry_job(job)
            except exceptions.ConnectorException:
                continue  # another worker put it back first
            logger.warning("job %s of a stalled worker is back on the queue", job.id)


async def run_worker(
    journal: PostgresJournal,
    client: AsyncEvolink,
    http: httpx.AsyncClient,
    config: WorkerConfig,
    say: Callable[[str], None],
) -> None:
    """Take jobs until stopped (SIGINT or SIGTERM: the running jobs end first), or with
    `config.burst` until no job is left."""
    from procrastinate import RetryStrategy  # noqa: PLC0415 - the `postgres` extra

    await ensure_queue_schema(journal.pool)
    runner = ChunkRunner(client=client, http=http, journal=journal, config=config, say=say)
    app = queue_app()
    app.task(
        name=TASK_NAME,
        queue=QUEUE,
        pass_context=True,
        retry=RetryStrategy(max_attempts=JOB_ATTEMPTS, wait=1),
    )(runner_job(runner))
    _keep_lost_attempts_quiet(app, runner.lost)
    async with app.open_async(pool=journal.pool), anyio.create_task_group() as tg:
        tg.start_soon(requeue_stalled, app, config)
        await app.run_worker_async(
            queues=[QUEUE],
            concurrency=config.jobs,
            update_heartbeat_interval=config.heartbeat,
            stalled_worker_timeout=config.stalled_after,
            fetch_job_polling_interval=1.0,
            install_signal_handlers=config.signals,
            wait=not config.burst,
            # A run's rows would pile up forever; the plan counts the jobs (`read_status`).
            delete_jobs="successful",
        )
        tg.cancel_scope.cancel()


def _keep_lost_attempts_quiet(app: App, lost: set[tuple[int, int]]) -> None:
    """Let an attempt taken over end without a word to the queue: procrastinate would
    mark the job (now the other attempt's) finished or retried."""
    manager = app.job_manager
    finish, retry = manager.finish_job, manager.retry_job

    async def finish_job(job: Any, *args: Any, **kwargs: Any) -> None:
        if (job.id, job.attempts) in lost:
            lost.discard((job.id, job.attempts))
            return
        await finish(job, *args, **kwargs)

    async def retry_job(job: Any, *args: Any, **kwargs: Any) -> None:
        if (job.id, job.attempts) in lost:
            lost.discard((job.id, job.attempts))
            return
        await retry(job, *args, **kwargs)

    # The worker calls these on its app's manager: ours wrap procrastinate's own.
    manager.finish_job = finish_job  # type: ignore[method-assign]
    manager.retry_job = retry_job  # type: ignore[method-assign]


def runner_job(runner: ChunkRunner) -> Callable[..., Any]:
    """The queue's job function, calling `runner`."""

    async def run_chunk(context: Any, run: str, first: int, last: int) -> None:
        job = context.job
        await runner(run, first, last, Lease(job.id, job.attempts))

    return run_chunk
