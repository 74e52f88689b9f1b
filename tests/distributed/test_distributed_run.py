"""A distributed run in one process: enqueue, a worker's jobs, a takeover's plan, status,
and the command line's checks (the many-process test is `test_many_workers.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import anyio
import httpx
import pytest
from click.testing import CliRunner

from _postgres import fresh_database
from evolink import (
    AsyncEvolink,
    EntryStatus,
    InputRecord,
    JournalError,
    PostgresJournal,
)
from evolink.cli._app import main
from evolink.cli._distributed import (
    enqueue,
    read_status,
    request_from_json,
    request_to_json,
)
from evolink.cli._input import Defaults, rows_from_fields
from evolink.cli._worker import WorkerConfig, run_worker
from evolink.testing import TEST_API_KEY, Simulator

pytest.importorskip("procrastinate")
pytestmark = pytest.mark.anyio

CREATE = "/v1/images/generations"
BURST = WorkerConfig(max_in_flight=8, heartbeat=0.5, stalled_after=5, burst=True, signals=False)


@pytest.fixture
def anyio_backend() -> str:
    """psycopg's async connections and procrastinate run on asyncio only."""
    return "asyncio"


@pytest.fixture
def database(postgres_url: str) -> str:
    return fresh_database(postgres_url)


@pytest.fixture
async def journal(database: str) -> AsyncIterator[PostgresJournal]:
    async with await PostgresJournal.open(database) as opened:
        yield opened


def _prompts(count: int, *, invalid: int | None = None):
    rows = [{"prompt": f"a lantern on a jetty, {i}"} for i in range(count)]
    if invalid is not None:
        rows[invalid] = {"prompt": "   "}
    return rows_from_fields(rows, Defaults(model="gpt-image-2"))


async def _work(journal: PostgresJournal, sim: Simulator, said: list[str]) -> None:
    client = AsyncEvolink(
        api_key=TEST_API_KEY, base_url="https://sim.test", transport=sim.transport()
    )
    http = httpx.AsyncClient(transport=sim.transport())
    async with client, http:
        await run_worker(journal, client, http, BURST, said.append)


async def test_a_run_enqueued_and_worked(journal: PostgresJournal, tmp_path: Path) -> None:
    """Enqueued in chunks, the run is worked to the end: every valid input completed with
    its image on disk, the invalid one rejected, and the status says so."""
    sim = Simulator(seed=3, durations=(0.05, 0.2), pending_time=0.01)
    out = tmp_path / "out"
    jobs = await enqueue(
        journal, "lanterns", _prompts(12, invalid=5), out=out, max_credits=None, chunk=5
    )
    said: list[str] = []
    await _work(journal, sim, said)
    status = await read_status(journal.pool, "lanterns")
    assert 3 == jobs == len(said)
    assert {"completed": 11, "rejected": 1} == dict(status.counts)
    assert {"succeeded": 3} == dict(status.jobs)
    assert (0, 0) == await _queue_rows(journal)  # the succeeded jobs, and their events, gone
    assert (11, 11) == (status.files, len(list(out.glob("*.png"))))
    assert Decimal("27.5") == status.charged == status.committed
    assert status.done
    assert 11 == sim.count("POST", CREATE)


async def _queue_rows(journal: PostgresJournal) -> tuple[int, int]:
    """Rows left in the job queue's tables: jobs, and their events."""
    async with journal.pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT (SELECT count(*) FROM procrastinate_jobs),"
            " (SELECT count(*) FROM procrastinate_events)"
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_the_status_counts_deleted_jobs_as_succeeded(
    journal: PostgresJournal, tmp_path: Path
) -> None:
    """A job's row is gone once it succeeded: the status counts it from the plan's job
    count. A job failed for good keeps its row and is shown so; a run enqueued by an SDK
    that kept every row (no count in its plan) is read from the rows alone."""
    await enqueue(journal, "gone", _prompts(9), out=tmp_path, max_credits=None, chunk=3)
    async with journal.pool.connection() as conn:
        ids = [
            row[0]
            for row in await (
                await conn.execute("SELECT id FROM procrastinate_jobs ORDER BY id")
            ).fetchall()
        ]
        await conn.execute("DELETE FROM procrastinate_jobs WHERE id = %s", (ids[0],))
        await conn.execute(
            "UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", (ids[1],)
        )
    status = await read_status(journal.pool, "gone")
    assert {"succeeded": 1, "failed": 1, "todo": 1} == dict(status.jobs)
    assert not status.done
    async with journal.pool.connection() as conn:
        await conn.execute("DELETE FROM procrastinate_jobs WHERE id = %s", (ids[2],))
        await conn.execute("UPDATE evolink_run_plans SET jobs = NULL WHERE run = 'gone'")
    status = await read_status(journal.pool, "gone")
    assert {"failed": 1} == dict(status.jobs)
    assert status.done


async def test_a_job_taken_over_pays_nothing_twice(
    journal: PostgresJournal, tmp_path: Path
) -> None:
    """A job a dead worker left: its input sent with a key is resent under it (one task),
    its created task is read (no create), its finished file is not fetched again."""
    sim = Simulator(seed=4, durations=(0.05, 0.1), pending_time=0.01)
    out = tmp_path / "out"
    prompts = _prompts(3)
    await enqueue(journal, "takeover", prompts, out=out, max_credits=Decimal(100), chunk=3)
    key = "key-of-the-dead-worker-0001"
    client = AsyncEvolink(
        api_key=TEST_API_KEY, base_url="https://sim.test", transport=sim.transport()
    )
    async with client:
        # What the dead worker did: input 0's create sent (its answer lost), input 1's
        # task created, input 2 completed and its image saved.
        [zero, one, two] = [row.request for row in prompts.rows]
        assert zero is not None
        assert one is not None
        assert two is not None
        sent = await client.images.create(zero, idempotency_key=key)
        made = await client.images.create(one)
    record = InputRecord(run="takeover", index=0, body=zero.to_body(), model="gpt-image-2")
    await journal.record_create(record, key)
    await journal.record_task(
        InputRecord(run="takeover", index=1, body=one.to_body(), model="gpt-image-2"), made.id
    )
    creates_before = sim.count("POST", CREATE)
    said: list[str] = []
    await _work(journal, sim, said)
    entries = await journal.entries("takeover")
    assert {EntryStatus.COMPLETED} == {e.status for e in entries.values()}
    assert sent.id == entries[0].task_id
    assert made.id == entries[1].task_id
    replays = [r for r in sim.requests if r.path == CREATE and r.replayed]
    assert [key] == [r.idempotency_key for r in replays]
    assert 1 == sim.count("POST", CREATE) - creates_before - len(replays)  # input 2 only
    files = await journal.files("takeover")
    fetched = sim.count("GET", "/results/")
    # Again: every input ends from the journal, and no file is fetched twice.
    await journal.record_outcome(  # as a retried job would find it: ended
        InputRecord(run="takeover", index=2, body=two.to_body()),
        _completed(entries[2]),
    )
    await enqueue_again(journal)
    await _work(journal, sim, said)
    assert fetched == sim.count("GET", "/results/")
    assert 3 == sum(len(f) for f in files.values())


def _completed(entry):
    from evolink import OutcomeRecord  # noqa: PLC0415

    return OutcomeRecord(
        status=EntryStatus.COMPLETED,
        task_id=entry.task_id,
        reserved=entry.reserved,
        charged=entry.charged,
        results=entry.results,
    )


async def enqueue_again(journal: PostgresJournal) -> None:
    """Put the run's one job back on the queue, as a stalled job is."""
    from evolink.cli._distributed import QUEUE, TASK_NAME, queue_app  # noqa: PLC0415

    app = queue_app()
    task = app.task(name=TASK_NAME, queue=QUEUE)(lambda run, first, last: None)
    async with app.open_async(pool=journal.pool):
        await task.defer_async(run="takeover", first=0, last=3)


async def test_a_run_is_enqueued_once(journal: PostgresJournal, tmp_path: Path) -> None:
    """The same run name again is refused, with the same inputs or others."""
    await enqueue(journal, "once", _prompts(2), out=tmp_path, max_credits=None)
    with pytest.raises(JournalError, match="already"):
        await enqueue(journal, "once", _prompts(2), out=tmp_path, max_credits=None)
    with pytest.raises(JournalError, match="other inputs"):
        await enqueue(journal, "once", _prompts(3), out=tmp_path, max_credits=None)
    with pytest.raises(JournalError, match="no run 'never'"):
        await read_status(journal.pool, "never")


def test_a_request_survives_the_database() -> None:
    """Every field of a stored request comes back as it was."""
    [row] = rows_from_fields(
        [{"prompt": "a fox", "size": "16:9", "n": 2, "image_urls": "https://x/a.png"}],
        Defaults(model="gpt-image-2"),
    ).rows
    assert row.request is not None
    assert row.request == request_from_json(request_to_json(row.request))


def test_the_command_line(database: str, tmp_path: Path) -> None:
    """`batch --enqueue`, then `status` (text and JSON); the options' checks."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red kite\na blue kite\n", encoding="utf-8")
    runner = CliRunner()
    base = ["batch", str(prompts), "--out", str(tmp_path / "out")]
    queued = runner.invoke(main, [*base, "--journal", database, "--run", "kites", "--enqueue"])
    assert 0 == queued.exit_code, queued.output
    assert "2 inputs in 1 job(s)" in queued.output
    shown = runner.invoke(main, ["status", "--journal", database, "--run", "kites"])
    assert 0 == shown.exit_code, shown.output
    assert "pending          2" in shown.output
    as_json = runner.invoke(main, ["status", "--journal", database, "--run", "kites", "--json"])
    assert '"pending": 2' in as_json.output
    worked = runner.invoke(
        main, ["worker", "--journal", database, "--burst", "--simulate", "--heartbeat", "0.5"]
    )
    assert 0 == worked.exit_code, worked.output
    assert "run kites inputs 0-1: 2 completed" in worked.output
    done = runner.invoke(main, ["status", "--journal", database, "--run", "kites"])
    assert "completed        2" in done.output
    for args, message in [
        ([*base, "--enqueue"], "--enqueue needs --journal"),
        ([*base, "--journal", database, "--run", "kites", "--simulate"], "enqueued for"),
        ([*base, "--journal", database, "--enqueue", "--resume"], "an enqueued run resumes"),
        ([*base, "--journal", "runs.sqlite3", "--enqueue"], "a PostgreSQL URL"),
        ([*base, "--journal", database, "--run", "kites", "--enqueue"], "already"),
    ]:
        refused = runner.invoke(main, args)
        assert 2 == refused.exit_code
        assert message in refused.output


async def test_a_worker_whose_job_was_taken_over_sends_and_writes_nothing_more(
    journal: PostgresJournal, tmp_path: Path
) -> None:
    """A live worker thought dead (its job given to another attempt) is fenced out: every
    create it sent has its key in the journal as the new owner reads it, it records
    nothing after the takeover, and its job ends without touching the new owner's."""
    sim = Simulator(seed=6, durations=(0.4, 0.6), pending_time=0.01)
    await enqueue(journal, "fenced", _prompts(40), out=tmp_path / "out", max_credits=None)
    seen: dict[int, object] = {}
    said: list[str] = []

    async def take_over() -> None:
        while sim.count("POST", CREATE) < 10:
            await anyio.sleep(0.01)
        async with journal.pool.connection() as conn:  # another attempt runs the job now
            await conn.execute("UPDATE procrastinate_jobs SET attempts = attempts + 1")
        seen.update(await journal.entries("fenced"))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(take_over)
            await _work(journal, sim, said)
    assert any("taken over" in line for line in said)
    assert seen == await journal.entries("fenced")  # nothing written after the takeover
    recorded = {entry.idempotency_key for entry in seen.values()}  # type: ignore[attr-defined]
    sent = {r.idempotency_key for r in sim.requests if r.method == "POST" and r.path == CREATE}
    assert sent <= recorded
    assert 10 <= len(sent) < 40
    async with journal.pool.connection() as conn:  # the job is the new attempt's still
        cursor = await conn.execute("SELECT status, attempts FROM procrastinate_jobs")
        assert [("doing", 1)] == await cursor.fetchall()
