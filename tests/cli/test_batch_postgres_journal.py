"""`evolink batch --journal postgresql://...` without `--enqueue`: the run runs here, its
journal is run `--run` in the database (a real server), and `--resume` continues it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from _cli_sim import create, creates, use, with_fates

from _postgres import fresh_database
from evolink import EntryStatus, InputRecord, PostgresJournal
from evolink.cli import main
from evolink.cli._input import Defaults, read_prompt_file
from evolink.cli._run_journal import RUN_LOCK_CLASS
from evolink.testing import Faults

psycopg = pytest.importorskip("psycopg")

BODY = {"model": "gpt-image-2"}


@pytest.fixture
def database(postgres_url: str) -> str:
    return fresh_database(postgres_url)


def _batch(runner, source: Path, out: Path, database: str, *args: str):
    return runner.invoke(
        main,
        ["batch", str(source), "--out", str(out), "--simulate", "--journal", database, *args],
    )


def _statuses(out: Path) -> list[str]:
    lines = (out / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line)["status"] for line in lines]


def _with_journal(database: str, use_it: Callable[[PostgresJournal], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        async with await PostgresJournal.open(database) as journal:
            return await use_it(journal)

    return anyio.run(run)


def test_a_run_journaled_in_postgresql_then_resumed(tmp_path, runner, monkeypatch, database):
    """The run's journal is in the database (none in --out); a second run of the same name
    is refused without --resume; --resume sends nothing for ended inputs, and
    --retry-failed only the failed one."""
    # The crane's first task fails, its retry does not; the run of another name is as the first.
    fates = ["completed", "failed", "completed", "completed", "failed"]
    sim = use(monkeypatch, with_fates(fates, faults=Faults(task_failure=0.5)))
    source = tmp_path / "p.txt"
    source.write_text("a heron\na crane FAIL\n")
    out = tmp_path / "out"
    first = _batch(runner, source, out, database, "--run", "birds")
    assert 1 == first.exit_code, first.output
    assert not (out / "journal.sqlite3").exists()
    entries = _with_journal(database, lambda j: j.entries("birds"))
    assert [EntryStatus.COMPLETED, EntryStatus.FAILED] == [entries[i].status for i in (0, 1)]
    files = _with_journal(database, lambda j: j.files("birds"))
    assert [(out / f.path).is_file() for f in files[0]] == [True]

    again = _batch(runner, source, out, database, "--run", "birds")
    assert 2 == again.exit_code
    assert "run 'birds' in" in again.output
    assert "add --resume" in again.output
    assert "name another --run" in again.output

    resumed = _batch(runner, source, out, database, "--run", "birds", "--resume")
    assert 1 == resumed.exit_code, resumed.output
    assert 2 == len(creates(sim))
    retried = _batch(runner, source, out, database, "--run", "birds", "--resume", "--retry-failed")
    assert 0 == retried.exit_code, retried.output
    assert ["a crane FAIL"] == [r.body["prompt"] for r in creates(sim)[2:]]
    assert ["completed", "completed"] == _statuses(out)
    # Another run name in the same database is another run.
    other = _batch(runner, source, tmp_path / "other", database, "--run", "birds-2")
    assert 1 == other.exit_code, other.output
    assert 5 == len(creates(sim))


def test_a_killed_runs_creates_are_adopted_not_repeated(tmp_path, sim, runner, database):
    """What a killed run left in the database: a create sent (its answer lost) is resent
    under its key, a created task is read, not made again; only the third input is new."""
    source = tmp_path / "p.txt"
    source.write_text("lost answer\nknown task\nnever sent\n")
    out = tmp_path / "out"
    key = "key-of-a-killed-run-0123456789"
    made = create(sim, "lost answer", key)["id"]
    known = create(sim, "known task")["id"]
    fingerprint = read_prompt_file(source, Defaults()).fingerprint()

    async def killed(journal: PostgresJournal) -> None:
        await journal.bind_run("nightly", fingerprint)
        lost = InputRecord(run="nightly", index=0, body={**BODY, "prompt": "lost answer"})
        await journal.record_create(lost, key)
        task = InputRecord(run="nightly", index=1, body={**BODY, "prompt": "known task"})
        await journal.record_task(task, known)

    _with_journal(database, killed)
    sent = len(sim.requests)
    resumed = _batch(runner, source, out, database, "--run", "nightly", "--resume")
    assert 0 == resumed.exit_code, resumed.output
    [resent, new] = creates(sim, sent)
    assert (key, "never sent") == (resent.idempotency_key, new.body["prompt"])
    assert 3 == len(sim.tasks)
    entries = _with_journal(database, lambda j: j.entries("nightly"))
    assert [made, known] == [entries[0].task_id, entries[1].task_id]
    assert ["completed"] * 3 == _statuses(out)


def test_what_is_refused(tmp_path, sim, runner, database):
    """--resume of a run the database does not hold; a run another process holds; a run
    enqueued for workers; --run without a database; --enqueue with --resume. Nothing sent."""
    source = tmp_path / "p.txt"
    source.write_text("a kite\n")
    out = tmp_path / "out"
    nothing = _batch(runner, source, out, database, "--run", "never", "--resume")
    assert 2 == nothing.exit_code
    assert "--resume: no run 'never' in" in nothing.output
    with psycopg.connect(database, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, hashtext('busy'))", (RUN_LOCK_CLASS,))
        busy = _batch(runner, source, out, database, "--run", "busy")
    assert 2 == busy.exit_code
    assert "being run by another evolink process" in busy.output
    queued = runner.invoke(
        main,
        ["batch", str(source), "--out", str(out), "--journal", database, "--run", "q", "--enqueue"],
    )
    assert 0 == queued.exit_code, queued.output
    mine = _batch(runner, source, out, database, "--run", "q")
    assert 2 == mine.exit_code
    assert "enqueued for `evolink worker`s" in mine.output
    for args, message in [
        (["--run", "named"], "--run names a run in --journal"),
        (["--journal", database, "--enqueue", "--resume"], "an enqueued run resumes in its"),
    ]:
        refused = runner.invoke(main, ["batch", str(source), "--out", str(out), *args])
        assert 2 == refused.exit_code
        assert message in refused.output
    assert [] == creates(sim)
    # The run the lock held is free once its holder is gone.
    freed = _batch(runner, source, out, database, "--run", "busy")
    assert 0 == freed.exit_code, freed.output


def test_a_run_of_rejected_rows_only_is_no_earlier_run(tmp_path, sim, runner, database):
    """A run of invalid rows only (--skip-invalid) records them rejected in the database,
    sends nothing, and is no earlier run: the same command runs again."""
    source = tmp_path / "p.jsonl"
    source.write_text('{"prompt": "a fox", "size": "7:3"}\n')
    out = tmp_path / "out"
    for _ in range(2):
        done = _batch(runner, source, out, database, "--run", "bad", "--skip-invalid")
        assert 1 == done.exit_code, done.output
    entries = _with_journal(database, lambda j: j.entries("bad"))
    assert [EntryStatus.REJECTED] == [e.status for e in entries.values()]
    assert [] == creates(sim)
