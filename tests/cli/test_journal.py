"""The run folder's journal: the core SQLite store, held by one run, and older files."""

from __future__ import annotations

import contextlib
import json
import sqlite3

import pytest
from _cli_journal import SyncJournal
from _cli_sim import create, creates

from evolink import JournalError
from evolink.cli import main
from evolink.cli._input import Defaults, read_prompt_file
from evolink.cli._run_folder import JOURNAL_NAME, FolderJournal


def test_refuses_a_newer_schema(tmp_path):
    """A journal written by a newer schema is not misread."""
    FolderJournal.open(tmp_path).close()
    with contextlib.closing(sqlite3.connect(tmp_path / JOURNAL_NAME)) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
        db.commit()
    with pytest.raises(JournalError, match="schema 99 is not supported"):
        FolderJournal.open(tmp_path)


def test_refuses_a_corrupt_file(tmp_path):
    """A file that is not SQLite is a JournalError, not a traceback (and frees the folder)."""
    (tmp_path / JOURNAL_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match="not a usable journal"):
        FolderJournal.open(tmp_path)
    (tmp_path / JOURNAL_NAME).unlink()
    FolderJournal.open(tmp_path).close()


def test_a_changed_input_keeps_the_runs_own(tmp_path, sim, runner):
    """A refused resume (the file changed) leaves the journal bound to its own input."""
    source = tmp_path / "p.txt"
    source.write_text("a fox\n")
    out = tmp_path / "out"
    args = ["batch", str(source), "--out", str(out), "--simulate"]
    assert 0 == runner.invoke(main, args).exit_code
    source.write_text("an owl\n")
    assert 2 == runner.invoke(main, [*args, "--resume"]).exit_code
    source.write_text("a fox\n")
    again = runner.invoke(main, [*args, "--resume"])
    assert 0 == again.exit_code, again.output
    assert 1 == len(creates(sim))


def _schema_1_journal(path, fingerprint, task_id):
    """Write a journal as the CLI did before runs had names (schema 1)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE inputs (
                idx INTEGER PRIMARY KEY, request TEXT NOT NULL, idempotency_key TEXT,
                task_id TEXT, status TEXT NOT NULL, error_code TEXT, error_message TEXT,
                reserved TEXT, charged TEXT, results TEXT
            );
            CREATE TABLE files (
                idx INTEGER NOT NULL, number INTEGER NOT NULL, url TEXT NOT NULL,
                path TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (idx, number)
            );
            """
        )
        db.execute("INSERT INTO meta VALUES ('schema', '1'), ('fingerprint', ?)", (fingerprint,))
        db.execute(
            "INSERT INTO inputs (idx, request, idempotency_key, task_id, status)"
            " VALUES (0, ?, 'key-fox-0123456789', ?, 'created')",
            (json.dumps({"model": "gpt-image-2", "prompt": "a fox"}), task_id),
        )
        db.execute(
            "INSERT INTO inputs (idx, request, idempotency_key, status)"
            " VALUES (1, ?, 'key-owl-0123456789', 'creating')",
            (json.dumps({"model": "gpt-image-2", "prompt": "an owl"}),),
        )
        db.commit()


def test_resumes_a_journal_an_older_version_wrote(tmp_path, sim, runner):
    """`--resume` on a folder whose journal is schema 1 migrates it and carries on: the
    known task is watched, the unanswered create resent under its key, nothing made twice."""
    source = tmp_path / "p.txt"
    source.write_text("a fox\nan owl\n")
    out = tmp_path / "out"
    out.mkdir()
    made = create(sim, "a fox", "key-fox-0123456789")["id"]
    fingerprint = read_prompt_file(source, Defaults()).fingerprint()
    _schema_1_journal(out / JOURNAL_NAME, fingerprint, made)
    sent = len(sim.requests)
    result = runner.invoke(
        main, ["batch", str(source), "--out", str(out), "--simulate", "--resume"]
    )
    assert 0 == result.exit_code, result.output
    [resent] = creates(sim, sent)
    assert "key-owl-0123456789" == resent.idempotency_key
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert ["completed", "completed"] == [x["status"] for x in lines]
    assert made == lines[0]["task_id"]


def test_the_helper_writes_what_a_run_reads(tmp_path):
    """The tests' blocking writer binds the run the CLI resumes (`default`)."""
    journal = SyncJournal(tmp_path)
    journal.bind("f1")
    journal.record_create(0, {"prompt": "a"}, "key-a-0123456789")
    journal.close()
    with contextlib.closing(sqlite3.connect(tmp_path / JOURNAL_NAME)) as db:
        assert [("default", "f1")] == db.execute("SELECT * FROM runs").fetchall()
