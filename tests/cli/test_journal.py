"""The journal: what it keeps, and what it refuses."""

from __future__ import annotations

import contextlib
import sqlite3
from decimal import Decimal

import pytest

from evolink.cli._journal import JOURNAL_NAME, FileEntry, Journal, JournalError


def test_round_trip(tmp_path):
    """Creates, task ids, outcomes and files come back as written, across a reopen."""
    journal = Journal.open(tmp_path)
    journal.bind("f1", resume=False)
    journal.record_create(0, {"prompt": "a"}, "key-a-0123456789")
    journal.record_create(1, {"prompt": "b"}, "key-b-0123456789")
    journal.record_created(1, {"prompt": "b"}, "task-unified-1")
    journal.record_outcome(
        1,
        {"prompt": "b"},
        status="completed",
        reserved=Decimal("2.5"),
        charged=Decimal("2.5"),
        results=("https://x/1.png",),
    )
    journal.record_file(FileEntry(1, 1, "https://x/1.png", "0002-b-1.png", 10))
    journal.close()
    again = Journal.open(tmp_path)
    entries = again.entries()
    assert entries[0].idempotency_key == "key-a-0123456789"
    assert entries[0].task_id is None
    assert entries[0].status == "creating"
    assert entries[1].task_id == "task-unified-1"  # kept: the outcome named no task
    assert (entries[1].status, entries[1].charged, entries[1].results) == (
        "completed",
        Decimal("2.5"),
        ("https://x/1.png",),
    )
    assert again.files() == {1: [FileEntry(1, 1, "https://x/1.png", "0002-b-1.png", 10)]}
    again.close()


def test_new_key_forgets_the_old_task(tmp_path):
    """A create with a new key (a retried failure) clears the task id; the same key keeps it."""
    journal = Journal.open(tmp_path)
    journal.record_create(0, {"prompt": "a"}, "key-one-0123456789")
    journal.record_created(0, {"prompt": "a"}, "task-unified-1")
    journal.record_create(0, {"prompt": "a"}, "key-one-0123456789")
    assert journal.entries()[0].task_id == "task-unified-1"
    journal.record_create(0, {"prompt": "a"}, "key-two-0123456789")
    entry = journal.entries()[0]
    assert (entry.idempotency_key, entry.task_id, entry.status) == (
        "key-two-0123456789",
        None,
        "creating",
    )
    journal.close()


def test_resume_refuses_another_input(tmp_path):
    """Binding a resumed journal to a different input fingerprint is refused."""
    journal = Journal.open(tmp_path)
    journal.bind("f1", resume=False)
    with pytest.raises(JournalError, match="the input changed"):
        journal.bind("f2", resume=True)
    journal.close()


def test_refuses_a_newer_schema(tmp_path):
    """A journal written by a newer schema is not misread."""
    journal = Journal.open(tmp_path)
    journal.bind("f1", resume=False)
    journal.close()
    with contextlib.closing(sqlite3.connect(tmp_path / JOURNAL_NAME)) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
        db.commit()
    journal = Journal.open(tmp_path)
    with pytest.raises(JournalError, match="schema 99 is not supported"):
        journal.bind("f1", resume=True)
    journal.close()


def test_refuses_a_corrupt_file(tmp_path):
    """A file that is not SQLite is a JournalError, not a traceback."""
    (tmp_path / JOURNAL_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="not a usable journal"):
        Journal.open(tmp_path)
