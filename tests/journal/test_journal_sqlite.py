"""The SQLite store: the contract, its schema 1 and 2 migrations, and what it refuses."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from _journal_contract import JournalStoreContract

from evolink import (
    EntryStatus,
    InputRecord,
    JournalError,
    JournalStore,
    OutcomeRecord,
    SQLiteJournal,
    UploadRecord,
)
from evolink._journal import DEFAULT_RUN
from evolink._journal_sqlite import SCHEMA_VERSION

pytestmark = pytest.mark.anyio


class TestSQLiteJournalContract(JournalStoreContract):
    """Every `JournalStore` promise, kept by the SQLite store."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteJournal]:
        journal = SQLiteJournal.open(tmp_path / "journal.sqlite3")
        yield journal
        journal.close()

    @pytest.fixture
    def reopen(self):  # type: ignore[no-untyped-def]
        opened: list[SQLiteJournal] = []

        async def reopen(store: JournalStore) -> JournalStore:
            assert isinstance(store, SQLiteJournal)
            store.close()
            again = SQLiteJournal.open(store.path)
            opened.append(again)
            return again

        yield reopen
        for journal in opened:
            journal.close()


#: A journal as the CLI wrote it before runs had names (schema 1), byte for byte its SQL.
_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE inputs (
    idx INTEGER PRIMARY KEY, request TEXT NOT NULL, idempotency_key TEXT, task_id TEXT,
    status TEXT NOT NULL, error_code TEXT, error_message TEXT, reserved TEXT, charged TEXT,
    results TEXT
);
CREATE TABLE files (
    idx INTEGER NOT NULL, number INTEGER NOT NULL, url TEXT NOT NULL, path TEXT NOT NULL,
    size INTEGER NOT NULL, PRIMARY KEY (idx, number)
);
INSERT INTO meta VALUES ('schema', '1'), ('fingerprint', 'f-old');
INSERT INTO inputs VALUES
    (0, '{"model": "gpt-image-2", "prompt": "a fox"}', 'key-old-0123456789', NULL,
     'creating', NULL, NULL, NULL, NULL, NULL),
    (1, '{"model": "gpt-image-2", "prompt": "an owl"}', 'key-owl-0123456789',
     'task-unified-1', 'completed', NULL, NULL, '2.5', '2.5', '["https://x/1.png"]');
INSERT INTO files VALUES (1, 1, 'https://x/1.png', '0002-an-owl-1.png', 10);
"""


def _write_schema_1(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(_SCHEMA_1)
        db.commit()


async def test_a_schema_1_journal_becomes_the_default_run(tmp_path):
    """A journal the CLI wrote before runs had names opens as the run `default`, intact."""
    path = tmp_path / "journal.sqlite3"
    _write_schema_1(path)
    async with SQLiteJournal.open(path) as journal:
        entries = await journal.entries(DEFAULT_RUN)
        files = await journal.files(DEFAULT_RUN)
        assert "f-old" == await journal.bind_run(DEFAULT_RUN, "f-old")
    assert [0, 1] == sorted(entries)
    assert (EntryStatus.CREATING, "key-old-0123456789", "gpt-image-2") == (
        entries[0].status,
        entries[0].idempotency_key,
        entries[0].model,
    )
    assert ("task-unified-1", Decimal("2.5"), ("https://x/1.png",)) == (
        entries[1].task_id,
        entries[1].charged,
        entries[1].results,
    )
    assert ["0002-an-owl-1.png"] == [f.path for f in files[1]]
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert [(SCHEMA_VERSION,)] == db.execute(
            "SELECT value FROM meta WHERE key='schema'"
        ).fetchall()


async def test_migration_is_done_once(tmp_path):
    """Opening a migrated journal again changes nothing."""
    path = tmp_path / "journal.sqlite3"
    _write_schema_1(path)
    SQLiteJournal.open(path).close()
    async with SQLiteJournal.open(path) as journal:
        assert 2 == len(await journal.entries(DEFAULT_RUN))


#: A journal of schema 2 (named runs, no send times, no uploads), byte for byte its SQL.
_SCHEMA_2 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (run TEXT PRIMARY KEY, fingerprint TEXT NOT NULL);
CREATE TABLE inputs (
    run TEXT NOT NULL, idx INTEGER NOT NULL, request TEXT NOT NULL, endpoint TEXT,
    model TEXT, idempotency_key TEXT, task_id TEXT, status TEXT NOT NULL, error_code TEXT,
    error_message TEXT, reserved TEXT, charged TEXT, results TEXT, PRIMARY KEY (run, idx)
);
CREATE TABLE files (
    run TEXT NOT NULL, idx INTEGER NOT NULL, number INTEGER NOT NULL, url TEXT NOT NULL,
    path TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (run, idx, number)
);
INSERT INTO meta VALUES ('schema', '2');
INSERT INTO inputs (run, idx, request, model, idempotency_key, status) VALUES
    ('r', 0, '{"model": "gpt-image-2", "prompt": "a fox"}', 'gpt-image-2',
     'key-old-0123456789', 'creating');
"""


async def test_a_schema_2_journal_gains_send_times_and_uploads(tmp_path):
    """A schema 2 journal opens with its inputs intact (no send time known) and can
    record uploads and send times from then on."""
    path = tmp_path / "journal.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(_SCHEMA_2)
        db.commit()
    async with SQLiteJournal.open(path) as journal:
        [entry] = (await journal.entries("r")).values()
        await journal.record_upload(
            "r", UploadRecord(sha256="ab" * 32, file_id="file_1", file_url="https://f/1.png")
        )
        await journal.record_create(
            InputRecord(run="r", index=1, body={"prompt": "an owl"}, sent_at=12.5),
            "key-new-0123456789",
        )
    async with SQLiteJournal.open(path) as journal:
        entries = await journal.entries("r")
        assert ["file_1"] == [u.file_id for u in await journal.uploads("r")]
    assert ("key-old-0123456789", None) == (entry.idempotency_key, entry.sent_at)
    assert 12.5 == entries[1].sent_at


async def test_a_schema_3_journal_gains_the_possible_duplicate_flag(tmp_path):
    """A schema 3 journal (no flag column) opens with its inputs unflagged, and keeps the
    flag from then on."""
    path = tmp_path / "journal.sqlite3"
    async with SQLiteJournal.open(path) as journal:
        await journal.record_create(InputRecord(run="r", index=0, sent_at=1.0), "key-0123456789")
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("ALTER TABLE inputs DROP COLUMN possible_duplicate")
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema'")
        db.commit()
    async with SQLiteJournal.open(path) as journal:
        [before] = (await journal.entries("r")).values()
        await journal.record_outcome(
            InputRecord(run="r", index=0),
            OutcomeRecord(status=EntryStatus.COMPLETED, possible_duplicate=True),
        )
    async with SQLiteJournal.open(path) as journal:
        [after] = (await journal.entries("r")).values()
    assert (False, True) == (before.possible_duplicate, after.possible_duplicate)
    assert ("key-0123456789", 1.0) == (after.idempotency_key, after.sent_at)


def test_refuses_a_newer_schema(tmp_path):
    """A journal written by a newer schema is not misread."""
    path = tmp_path / "journal.sqlite3"
    SQLiteJournal.open(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
        db.commit()
    with pytest.raises(JournalError, match="schema 99 is not supported"):
        SQLiteJournal.open(path)


def test_refuses_a_corrupt_file(tmp_path):
    """A file that is not SQLite is a JournalError, not a traceback."""
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="not a usable journal"):
        SQLiteJournal.open(path)
