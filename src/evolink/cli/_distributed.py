"""A run spread over many workers: its plan and inputs in PostgreSQL, its jobs on a queue.

`evolink batch --journal postgresql://... --enqueue` stores the run (`enqueue`): its
inputs, where its files go, its budget; then it puts one job per chunk of inputs on the
job queue (procrastinate, in the same database). `evolink worker` takes jobs
(`_worker.py`), and `evolink status` reads the run's progress (`read_status`).

A job is only a range of input indexes: everything about an input is in the journal, so
a job taken over from a dead worker is planned input by input like any resume (adopted,
read again, resent under its key, or created).

A job's row is deleted by the worker once the job succeeds (procrastinate's
`delete_jobs="successful"`): a nightly run of 200,000 inputs leaves no row behind but those
of jobs that failed for good, which stay for someone to look at. The plan keeps how many
jobs the run was split into, so the status counts the succeeded ones as those gone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from evolink._errors import JournalError
from evolink._extras import install_hint
from evolink._journal import EntryStatus, InputRecord, OutcomeRecord
from evolink._journal_postgres import PostgresJournal
from evolink._limits_postgres import PostgresCredits
from evolink._models import GenerationRequest
from evolink._postgres import MIGRATION_LOCK
from evolink.cli._input import PromptFile, Row

if TYPE_CHECKING:
    from procrastinate import App
    from procrastinate.types import JSONValue
    from psycopg_pool import AsyncConnectionPool

#: The job queue's name, and its one task.
QUEUE = "evolink"
TASK_NAME = "evolink.run_chunk"
#: Inputs per job, by default.
DEFAULT_CHUNK = 50
_REQUEST_FIELDS = (
    "prompt",
    "model",
    "size",
    "n",
    "image_urls",
    "mask_url",
    "callback_url",
    "extra_body",
    "params",
    "kind",
)


@attrs.frozen(kw_only=True)
class RunPlan:
    """What `--enqueue` stored for a run's workers."""

    run: str
    out: Path
    total: int
    chunk: int
    max_credits: Decimal | None
    #: Jobs the run was split into; None until they were all deferred (or enqueued by an
    #: SDK that kept every job's row).
    jobs: int | None = None


@attrs.frozen(kw_only=True)
class StoredInput:
    """One input of a distributed run, as its workers read it."""

    index: int
    line: int
    prompt: str
    request: GenerationRequest | None


def request_to_json(request: GenerationRequest) -> str:
    """The request's fields as JSON (every one, so the worker rebuilds it exactly)."""
    fields = {name: getattr(request, name) for name in _REQUEST_FIELDS}
    if fields["image_urls"] is not None:
        fields["image_urls"] = list(fields["image_urls"])
    return json.dumps(fields)


def request_from_json(text: str) -> GenerationRequest:
    """The request `request_to_json` wrote."""
    fields = json.loads(text)
    return GenerationRequest(
        **{name: fields.get(name) for name in _REQUEST_FIELDS if name in fields}
    )


def queue_app() -> App:
    """The job queue's app (procrastinate); open it on the journal's pool.

    Raises:
        JournalError: the `postgres` extra is missing.
    """
    try:
        from procrastinate import App, PsycopgConnector  # noqa: PLC0415 - the `postgres` extra
    except ImportError:
        raise JournalError(f"distributed runs need {install_hint('postgres')}") from None
    return App(connector=PsycopgConnector())


async def ensure_queue_schema(pool: AsyncConnectionPool) -> None:
    """Create the job queue's tables once (under the SDK's migration lock)."""
    from procrastinate.schema import SchemaManager  # noqa: PLC0415 - the `postgres` extra

    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        cursor = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        row = await cursor.fetchone()
        if row is None or not row[0]:
            await conn.execute(SchemaManager.get_schema())


async def enqueue(
    journal: PostgresJournal,
    run: str,
    prompts: PromptFile,
    *,
    out: Path,
    max_credits: Decimal | None,
    chunk: int = DEFAULT_CHUNK,
) -> int:
    """Store the run and put its jobs on the queue; return how many jobs.

    Invalid rows (`--skip-invalid`) are journaled `rejected` and in no job.

    Raises:
        JournalError: the run exists with other inputs, or was enqueued already.
    """
    pool = journal.pool
    await ensure_queue_schema(pool)
    known = await journal.bind_run(run, prompts.fingerprint())
    if known is not None:
        await journal.bind_run(run, known)  # keep the run's own input
        said = "with other inputs" if known != prompts.fingerprint() else "already"
        raise JournalError(
            f"run {run!r} is {said} in this database: watch it with `evolink status`,"
            " or name another --run"
        )
    rows = prompts.rows
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO evolink_run_plans (run, out, total, chunk, max_credits)"
            " VALUES (%s, %s, %s, %s, %s)",
            (run, str(await anyio.Path(out).resolve()), len(rows), chunk, max_credits),
        )
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO evolink_run_inputs (run, idx, line, prompt, request, error)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        run,
                        row.index,
                        row.line,
                        row.prompt,
                        None if row.request is None else request_to_json(row.request),
                        row.error,
                    )
                    for row in rows
                ],
            )
    await PostgresCredits.open(pool, run, max_credits)
    for row in rows:
        if row.request is None:
            await _record_rejected(journal, run, row)
    valid = [row.index for row in rows if row.request is not None]
    jobs: list[dict[str, JSONValue]] = [
        {"run": run, "first": valid[i], "last": valid[min(i + chunk, len(valid)) - 1] + 1}
        for i in range(0, len(valid), chunk)
    ]
    app = queue_app()
    task = app.task(name=TASK_NAME, queue=QUEUE)(_never_run_here)
    async with app.open_async(pool=pool):
        if jobs:
            await task.batch_defer_async(*jobs)
    async with pool.connection() as conn:
        # Only now: a count written before the jobs would call jobs never deferred done.
        await conn.execute(
            "UPDATE evolink_run_plans SET jobs = %s WHERE run = %s", (len(jobs), run)
        )
    return len(jobs)


async def _never_run_here(run: str, first: int, last: int) -> None:  # pragma: no cover
    """The job's signature, for deferring it: workers register their own function."""
    raise NotImplementedError


async def _record_rejected(journal: PostgresJournal, run: str, row: Row) -> None:
    await journal.record_outcome(
        InputRecord(run=run, index=row.index, body={"prompt": row.prompt}),
        OutcomeRecord(status=EntryStatus.REJECTED, error_code="invalid", error_message=row.error),
    )


async def load_plan(pool: AsyncConnectionPool, run: str) -> RunPlan | None:
    """The plan of `run`, None if it was never enqueued."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT out, total, chunk, max_credits, jobs FROM evolink_run_plans WHERE run = %s",
            (run,),
        )
        row = await cursor.fetchone()
    if row is None:
        return None
    return RunPlan(
        run=run, out=Path(row[0]), total=row[1], chunk=row[2], max_credits=row[3], jobs=row[4]
    )


async def load_inputs(
    pool: AsyncConnectionPool, run: str, first: int, last: int
) -> list[StoredInput]:
    """The inputs `first` (included) to `last` (excluded) of `run`."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT idx, line, prompt, request FROM evolink_run_inputs"
            " WHERE run = %s AND idx >= %s AND idx < %s ORDER BY idx",
            (run, first, last),
        )
        rows = await cursor.fetchall()
    return [
        StoredInput(
            index=idx,
            line=line,
            prompt=prompt,
            request=None if request is None else request_from_json(request),
        )
        for idx, line, prompt, request in rows
    ]


async def price_hints(pool: AsyncConnectionPool, run: str) -> dict[str, Decimal]:
    """Credits per image by model, as the run's tasks reserved them so far."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT model, max(reserved / greatest(coalesce((request::jsonb ->> 'n')::int, 1), 1))"
            " FROM (SELECT model, reserved, request FROM evolink_inputs WHERE run = %s"
            " AND reserved > 0 AND model IS NOT NULL LIMIT 1000) AS seen GROUP BY model",
            (run,),
        )
        rows = await cursor.fetchall()
    return {model: Decimal(price) for model, price in rows}


@attrs.frozen(kw_only=True)
class RunStatus:
    """A run's progress across every worker, from the database.

    `charged`: what its ended tasks cost; `held`: credits held by inputs not ended (their
    reservations); `committed`: the run's total against `max_credits` (both). `jobs`: by
    state, `succeeded` counting the jobs whose rows their workers deleted.
    """

    run: str
    total: int
    counts: Mapping[str, int]
    files: int
    charged: Decimal
    held: Decimal
    committed: Decimal
    max_credits: Decimal | None
    jobs: Mapping[str, int]
    rate_limited: int

    @property
    def done(self) -> bool:
        """Whether no job is left to do (or doing)."""
        return not (self.jobs.get("todo", 0) or self.jobs.get("doing", 0))

    def to_json(self) -> dict[str, Any]:
        """The status as JSON values (amounts as strings)."""
        return {
            "run": self.run,
            "total": self.total,
            "counts": dict(self.counts),
            "files": self.files,
            "charged": str(self.charged),
            "held": str(self.held),
            "committed": str(self.committed),
            "max_credits": None if self.max_credits is None else str(self.max_credits),
            "jobs": dict(self.jobs),
            "rate_limited": self.rate_limited,
            "done": self.done,
        }


async def read_status(pool: AsyncConnectionPool, run: str) -> RunStatus:
    """The progress of `run`: inputs by status (`pending`: not started), credits, jobs.

    Raises:
        JournalError: the run was never enqueued.
    """
    plan = await load_plan(pool, run)
    if plan is None:
        raise JournalError(f"no run {run!r} in this database (enqueue it with --enqueue)")
    async with pool.connection() as conn:
        counts = dict(
            await _rows(
                conn,
                "SELECT status, count(*) FROM evolink_inputs WHERE run = %s GROUP BY status",
                run,
            )
        )
        [(charged,)] = await _rows(
            conn, "SELECT coalesce(sum(charged), 0) FROM evolink_inputs WHERE run = %s", run
        )
        [(held,)] = await _rows(
            conn,
            "SELECT coalesce(sum(amount), 0) FROM evolink_credit_holds WHERE run = %s AND open",
            run,
        )
        [(files,)] = await _rows(conn, "SELECT count(*) FROM evolink_files WHERE run = %s", run)
        pool_rows = await _rows(
            conn, "SELECT committed FROM evolink_credit_pools WHERE run = %s", run
        )
        brake = await _rows(conn, "SELECT hits FROM evolink_brakes WHERE run = %s", run)
        jobs = dict(
            await _rows(
                conn,
                "SELECT status::text, count(*) FROM procrastinate_jobs"
                " WHERE task_name = %s AND args ->> 'run' = %s GROUP BY status",
                TASK_NAME,
                run,
            )
        )
    gone = (plan.jobs or 0) - sum(jobs.values())
    if gone > 0:  # deleted when they succeeded
        jobs["succeeded"] = jobs.get("succeeded", 0) + gone
    started = sum(counts.values())
    if plan.total > started:
        counts["pending"] = plan.total - started
    return RunStatus(
        run=run,
        total=plan.total,
        counts=counts,
        files=files,
        charged=charged,
        held=held,
        committed=pool_rows[0][0] if pool_rows else Decimal(0),
        max_credits=plan.max_credits,
        jobs=jobs,
        rate_limited=brake[0][0] if brake else 0,
    )


async def _rows(conn: Any, query: str, *params: Any) -> Sequence[tuple[Any, ...]]:
    cursor = await conn.execute(query, params)
    return list(await cursor.fetchall())
