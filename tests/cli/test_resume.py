"""`--resume` and `--retry-failed`: what a resumed run sends again, and what it never does."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from _cli_journal import SyncJournal
from _cli_sim import create, creates, quick, use, with_fates

from evolink.cli import main
from evolink.cli._input import Defaults, read_prompt_file
from evolink.testing import Faults


def _batch(runner, source: Path, out: Path, *args: str):
    return runner.invoke(
        main, ["batch", str(source), "--out", str(out), "--simulate", *args], catch_exceptions=False
    )


def _statuses(out: Path) -> list[str]:
    return [
        json.loads(line)["status"] for line in (out / "manifest.jsonl").read_text().splitlines()
    ]


def test_retry_failed_sends_failed_inputs_again(tmp_path, runner, monkeypatch):
    """A failed input is 'resumed as done' on --resume (with a hint); --retry-failed
    creates it again, and only it."""
    # The owl's first task fails; the task made when it is sent again does not.
    fates = ["completed", "failed", "completed"]
    sim = use(monkeypatch, with_fates(fates, faults=Faults(task_failure=0.5)))
    source = tmp_path / "p.txt"
    source.write_text("a fox\nan owl FAIL\n")
    out = tmp_path / "out"
    assert 1 == _batch(runner, source, out).exit_code
    resumed = _batch(runner, source, out, "--resume")
    assert 1 == resumed.exit_code
    assert "add --retry-failed" in resumed.output
    assert 2 == len(creates(sim))
    retried = _batch(runner, source, out, "--resume", "--retry-failed")
    assert 0 == retried.exit_code, retried.output
    assert ["an owl FAIL"] == [r.body["prompt"] for r in creates(sim)[2:]]
    assert ["completed", "completed"] == _statuses(out)
    assert "failed before, sent again" in retried.output


def test_retry_failed_never_recreates_a_task_that_may_exist(tmp_path, sim, runner):
    """With --retry-failed an input whose create's answer was lost is resent with its own
    key (the server answers with the task it made), and one whose task the server no
    longer shows stays uncertain: neither gets a second task."""
    source = tmp_path / "p.txt"
    source.write_text("lost answer\nexpired task\n")
    out = tmp_path / "out"
    out.mkdir()
    made = create(sim, "lost answer", "key-lost-answer-0123456789")["id"]
    journal = SyncJournal(out)
    journal.bind(read_prompt_file(source, Defaults()).fingerprint())
    body = {"model": "gpt-image-2"}
    journal.record_create(0, {**body, "prompt": "lost answer"}, "key-lost-answer-0123456789")
    journal.record_outcome(0, {**body, "prompt": "lost answer"}, status="uncertain")
    journal.record_create(1, {**body, "prompt": "expired task"}, "key-expired-task-0123456789")
    journal.record_outcome(
        1,
        {**body, "prompt": "expired task"},
        status="uncertain",
        task_id="task-unified-1757156493-gone",
        error_code="task_not_found",
    )
    journal.close()
    sent = len(sim.requests)
    result = _batch(runner, source, out, "--resume", "--retry-failed")
    assert 1 == result.exit_code, result.output
    [resent] = creates(sim, sent)
    assert "key-lost-answer-0123456789" == resent.idempotency_key
    assert [made] == list(sim.tasks)
    assert ["completed", "uncertain"] == _statuses(out)


def test_resume_without_a_journal_is_refused(tmp_path, sim, runner):
    """--resume on a folder with no journal stops (exit 2) instead of starting a full run."""
    source = tmp_path / "p.txt"
    source.write_text("a fox\n")
    for out in (tmp_path / "missing", tmp_path):
        result = _batch(runner, source, out, "--resume")
        assert 2 == result.exit_code, result.output
        assert "no journal" in result.output
    assert [] == sim.requests
    assert not (tmp_path / "missing").exists()


def test_retry_failed_needs_resume(tmp_path, sim, runner):
    """--retry-failed alone is a usage error: it is about an earlier run."""
    source = tmp_path / "p.txt"
    source.write_text("a fox\n")
    result = _batch(runner, source, tmp_path / "out", "--retry-failed")
    assert 2 == result.exit_code
    assert "--resume" in result.output
    assert [] == sim.requests


def test_resumed_progress_and_summary_agree_on_credits(tmp_path, sim, runner, monkeypatch):
    """On resume the panel's charged total counts earlier runs' charges, as the summary does."""
    seen = []

    class Recorder:
        def start(self, title):
            pass

        def update(self, snapshot):
            seen.append(snapshot)

        def event(self, text, *, ok):
            pass

        def stop(self):
            pass

    source = tmp_path / "p.txt"
    source.write_text("a fox\nan owl\n")
    out = tmp_path / "out"
    assert 1 == _batch(runner, source, out, "--max-credits", "2.5").exit_code  # owl skipped
    monkeypatch.setattr("evolink.cli._app.make_view", lambda console, plain: Recorder())
    result = _batch(runner, source, out, "--resume", "--json")
    assert 0 == result.exit_code, result.output
    summary = json.loads(result.stdout)["credits"]["charged"]
    assert 5.0 == summary
    assert 5.0 == float(seen[-1].charged)
    assert 5.0 == float(seen[-1].committed)


class _LosingFirstCreate:
    """The simulator, but the answer to its first create is lost on the way back."""

    def __init__(self, sim) -> None:  # type: ignore[no-untyped-def]
        self.sim = sim

    def transport(self):  # type: ignore[no-untyped-def]
        inner, lost = self.sim.transport(), []

        class Losing(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                answer = await inner.handle_async_request(request)
                if request.url.path.endswith("/generations") and not lost:
                    lost.append(request)
                    raise httpx.RemoteProtocolError("peer closed the connection", request=request)
                return answer

        return Losing()


def test_a_possible_duplicate_is_flagged_in_the_manifest_across_resumes(
    tmp_path, runner, monkeypatch
):
    """A create's answer is lost and the resend made a second task (keys ignored): its
    manifest line says `possible_duplicate` (with its key), the summary counts it, and a
    resumed run that sends nothing keeps saying so."""
    sim = quick(idempotency=False)
    use(monkeypatch, _LosingFirstCreate(sim))
    source = tmp_path / "p.txt"
    source.write_text("a fox\nan owl\n")
    out = tmp_path / "out"
    first = _batch(runner, source, out)
    assert 0 == first.exit_code, first.output
    assert "possible duplicates" in first.output
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [True, False] == [line["possible_duplicate"] for line in lines]
    assert all(line["idempotency_key"] for line in lines)
    assert 3 == len(creates(sim))  # the fox twice: what the flag warns of
    again = _batch(runner, source, out, "--resume", "--json")
    assert 0 == again.exit_code, again.output
    assert 3 == len(creates(sim))
    document = json.loads(again.stdout)
    assert 1 == document["possible_duplicates"]
    assert [True, False] == [r["possible_duplicate"] for r in document["results"]]
    assert lines == [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
