"""The PostgreSQL store: the contract against a real server, its schema and migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from _journal_contract import JournalStoreContract

from _postgres import fresh_database
from evolink import (
    AsyncEvolink,
    EntryStatus,
    FileRecord,
    GenerationRequest,
    InputRecord,
    JournalError,
    JournalStore,
    OutcomeKind,
    PostgresJournal,
    UploadRecord,
)
from evolink._postgres import MIGRATIONS, SCHEMA_VERSION, display_url, is_postgres_url
from evolink.testing import TEST_API_KEY, Simulator, VirtualClock

pytest.importorskip("psycopg")
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """psycopg's async connections run on asyncio only."""
    return "asyncio"


@pytest.fixture
def database(postgres_url: str) -> str:
    return fresh_database(postgres_url)


class TestPostgresJournalContract(JournalStoreContract):
    """Every `JournalStore` promise, kept by the PostgreSQL store."""

    @pytest.fixture
    async def store(self, database: str) -> AsyncIterator[PostgresJournal]:
        async with await PostgresJournal.open(database) as journal:
            yield journal

    @pytest.fixture
    async def reopen(self):  # type: ignore[no-untyped-def]
        opened: list[PostgresJournal] = []

        async def reopen(store: JournalStore) -> JournalStore:
            assert isinstance(store, PostgresJournal)
            await store.aclose()
            again = await PostgresJournal.open(store.url)
            opened.append(again)
            return again

        yield reopen
        for journal in opened:
            await journal.aclose()


async def test_many_processes_migrate_at_once(database: str) -> None:
    """Opened by many at once, the schema is made once and every opener can use it."""
    journals: list[PostgresJournal] = []

    async def open_one() -> None:
        journals.append(await PostgresJournal.open(database, max_connections=2))

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(open_one)
    try:
        async with journals[0].pool.connection() as conn:
            cursor = await conn.execute("SELECT version FROM evolink_schema")
            assert [(SCHEMA_VERSION,)] == await cursor.fetchall()
    finally:
        for journal in journals:
            await journal.aclose()


async def test_a_newer_schema_is_refused(database: str) -> None:
    """A database migrated by a newer SDK is not written by this one."""
    async with await PostgresJournal.open(database) as journal:
        async with journal.pool.connection() as conn:
            await conn.execute("UPDATE evolink_schema SET version = version + 1")
    with pytest.raises(JournalError, match="upgrade evolink"):
        await PostgresJournal.open(database)


async def test_a_version_4_database_gains_send_times_and_uploads(database: str) -> None:
    """A database left at schema 4 is migrated by step 5: its inputs stay, with no send
    time known, and uploads can be recorded."""
    import psycopg  # noqa: PLC0415 - the postgres extra

    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        await conn.execute("CREATE TABLE evolink_schema (version INTEGER NOT NULL)")
        for step in MIGRATIONS[:4]:
            for statement in step.split(";"):
                if statement.strip():
                    await conn.execute(statement)
        await conn.execute("INSERT INTO evolink_schema VALUES (4)")
        await conn.execute(
            "INSERT INTO evolink_inputs (run, idx, request, idempotency_key, status)"
            " VALUES ('r', 0, '{}', 'key-old-0123456789', 'creating')"
        )
    async with await PostgresJournal.open(database) as journal:
        [entry] = (await journal.entries("r")).values()
        upload = UploadRecord(sha256="ab" * 32, file_id="file_1", file_url="https://f/1.png")
        await journal.record_upload("r", upload)
        assert [upload] == list(await journal.uploads("r"))
    assert ("key-old-0123456789", None) == (entry.idempotency_key, entry.sent_at)
    assert 5 <= SCHEMA_VERSION


async def test_an_unreachable_database_is_a_journal_error() -> None:
    """A URL nobody answers is a JournalError naming it, the password hidden."""
    with pytest.raises(JournalError, match=r"postgresql://u:\*\*\*@127\.0\.0\.1:1/x"):
        await PostgresJournal.open("postgresql://u:secret@127.0.0.1:1/x?connect_timeout=1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("postgresql://db/evolink", True, id="postgresql"),
        pytest.param("postgres://db/evolink", True, id="postgres"),
        pytest.param("runs.sqlite3", False, id="path"),
        pytest.param(None, False, id="none"),
    ],
)
def test_is_postgres_url(value: object, expected: bool) -> None:
    """Only the two PostgreSQL schemes name a database."""
    assert expected == is_postgres_url(value)


def test_display_url_hides_the_password() -> None:
    """The password never shows in a message or a repr."""
    assert "postgresql://me:***@db:5432/x" == display_url("postgresql://me:pw@db:5432/x")
    assert "postgresql://db/x" == display_url("postgresql://db/x")


async def test_generate_many_takes_a_postgres_url(database: str) -> None:
    """`journal="postgresql://..."` journals a run there; the same call again resumes it
    from the database and sends nothing."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1)
    prompts = [f"a heron at dawn, {i}" for i in range(6)]
    client = AsyncEvolink(
        api_key=TEST_API_KEY, base_url="https://sim.test", transport=sim.transport(), clock=clock
    )
    async with clock.running(), client:
        first = await client.images.generate_many(prompts, journal=database, run="herons")
        before = len(sim.requests)
        again = await client.images.generate_many(prompts, journal=database, run="herons")
    assert before == len(sim.requests)
    assert [OutcomeKind.COMPLETED] * 6 == [o.kind for o in first.outcomes]
    assert all(o.resumed for o in again.outcomes)
    async with await PostgresJournal.open(database) as journal:
        entries = await journal.entries("herons")
    assert {EntryStatus.COMPLETED} == {e.status for e in entries.values()}


def test_trio_is_refused_with_a_journal_error() -> None:
    """psycopg's async connections need asyncio: on trio, opening says so."""

    async def open_on_trio() -> None:
        await PostgresJournal.open("postgresql://127.0.0.1:1/x")

    with pytest.raises(JournalError, match="run on asyncio"):
        anyio.run(open_on_trio, backend="trio")


async def test_a_window_reads_its_inputs_only(database: str) -> None:
    """A window of the store reads back its own range of inputs (a worker's chunk) and
    writes like the store."""
    async with await PostgresJournal.open(database) as journal:
        window = journal.window(2, 4)
        for index in range(6):
            record = InputRecord(run="r", index=index, body={"prompt": f"p{index}"})
            await window.record_create(record, f"key-{index:04d}-0123456789ab")
            await window.record_file(
                "r", FileRecord(index=index, number=1, url="https://x/1.png", path="a", size=1)
            )
        assert [2, 3] == sorted(await window.entries("r"))
        assert [2, 3] == sorted(await window.files("r"))
        assert list(range(6)) == sorted(await journal.entries("r"))


async def test_a_chunk_never_claims_another_chunks_lost_task(database: str) -> None:
    """Input 0 (chunk 0-4) and input 4 (chunk 4-8) were sent at the same moment, both
    answers lost; only input 0's create reached the server. A worker resuming chunk 4-8
    sees the task in the listing, but matches against the whole run: it could be input
    0's, so input 4 is not given it. It is resent under its key as the batch's one probe
    of the server's keys; the server (which ignores keys) makes it a new task, which it
    keeps, flagged a possible duplicate (its create may have made the listed one)."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1, idempotency=False)
    body = {"model": "gpt-image-2", "prompt": "a heron at dawn, 0"}
    client = AsyncEvolink(
        api_key=TEST_API_KEY, base_url="https://sim.test", transport=sim.transport(), clock=clock
    )
    async with clock.running(), client, await PostgresJournal.open(database) as journal:
        sent = clock.time()
        for index in (0, 4):
            record = InputRecord(
                run="r",
                index=index,
                body={**body, "prompt": f"a heron at dawn, {index}"},
                endpoint="/v1/images/generations",
                model="gpt-image-2",
                sent_at=sent,
            )
            await journal.record_create(record, f"key-{index:04d}-0123456789ab")
        made = await client.images.create(GenerationRequest(prompt="a heron at dawn, 0"))
        creates = sim.count("POST", "/v1/images/generations")
        async with client.batch(journal=journal.window(4, 8), run="r") as batch:
            await batch.submit(GenerationRequest(prompt="a heron at dawn, 4"), journal_index=4)
    [outcome] = batch.report().outcomes
    assert (OutcomeKind.COMPLETED, True) == (outcome.kind, outcome.possible_duplicate)
    assert outcome.task_id not in (None, made.id)
    assert sim.task(outcome.task_id).prompt == "a heron at dawn, 4"
    assert creates + 1 == sim.count("POST", "/v1/images/generations")
