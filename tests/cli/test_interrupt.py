"""Ctrl-C: what `generate` and `batch` say and count when the user stops them.

The signal is stood in for by the run's own interrupt hook, fired once the fake API has
seen what the test waits for (a task made, or a create on its way).
"""

from __future__ import annotations

import json
import re

import anyio
import httpx

from evolink.cli import main


def _interrupt_when(monkeypatch, ready):
    async def interrupt(scope, state):
        while not ready():
            await anyio.sleep(0.01)
        state.interrupted = True
        scope.cancel()

    monkeypatch.setattr("evolink.cli._run._interrupt_on_sigint", interrupt)


def _hang_creates(monkeypatch, fake):
    """Creates are made on the server, then their answer never comes (until cancelled)."""
    handle = fake.handle

    async def slow(request: httpx.Request) -> httpx.Response:
        answer = handle(request)
        if request.url.path == "/v1/images/generations":
            await anyio.sleep(60)
        return answer

    monkeypatch.setattr(fake, "transport", lambda: httpx.MockTransport(slow))


def test_generate_interrupted_after_create_prints_the_task_id(tmp_path, fake, runner, monkeypatch):
    """Stopped while the task runs: exit 130, the task id and the `task get` command."""
    fake.duration = 60
    _interrupt_when(monkeypatch, lambda: bool(fake.tasks))
    result = runner.invoke(main, ["generate", "a fox", "--out", str(tmp_path), "--simulate"])
    assert 130 == result.exit_code, result.output
    [task_id] = fake.tasks
    assert f"`evolink task get {task_id}`" in result.output
    assert "abandoned: stopped: interrupted: the task was created" in result.output
    assert not re.search(r"abandoned:\s*$", result.output, re.MULTILINE)


def test_generate_interrupted_during_create_prints_the_key(tmp_path, fake, runner, monkeypatch):
    """Stopped while the create is on its way: the idempotency key and how to use it; the
    command run again with that key gets the task made then, not a second one."""
    _hang_creates(monkeypatch, fake)
    _interrupt_when(monkeypatch, lambda: bool(fake.creates()))
    out = str(tmp_path)
    first = runner.invoke(main, ["generate", "a fox", "--out", out, "--simulate", "--json"])
    assert 130 == first.exit_code, first.output
    sent_key = fake.creates()[0].headers["Idempotency-Key"]
    assert f"--idempotency-key {sent_key}" in first.stderr
    assert "uncertain" == json.loads(first.stdout)["results"][0]["status"]
    monkeypatch.undo()  # answers come again; `--simulate` keeps the same fake
    monkeypatch.setattr("evolink.cli._backend.make_simulator", lambda **_: fake)
    again = runner.invoke(
        main, ["generate", "a fox", "--out", out, "--simulate", "--idempotency-key", sent_key]
    )
    assert 0 == again.exit_code, again.output
    assert 1 == len(fake.tasks)
    assert [sent_key, sent_key] == [r.headers["Idempotency-Key"] for r in fake.creates()]


def test_generate_refuses_a_malformed_key(tmp_path, fake, runner):
    """--idempotency-key takes only what the API takes (exit 2, nothing sent)."""
    result = runner.invoke(
        main, ["generate", "fox", "--out", str(tmp_path), "--simulate", "--idempotency-key", "x"]
    )
    assert 2 == result.exit_code
    assert [] == fake.requests


def test_interrupted_inputs_are_not_counted_failed(tmp_path, fake, runner, monkeypatch):
    """After Ctrl-C the last progress counts running tasks as interrupted, not failed."""
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

    monkeypatch.setattr("evolink.cli._app.make_view", lambda console, plain: Recorder())
    fake.duration = 60
    _interrupt_when(monkeypatch, lambda: len(fake.tasks) == 2)
    source = tmp_path / "p.txt"
    source.write_text("a fox\nan owl\n")
    result = runner.invoke(
        main, ["batch", str(source), "--out", str(tmp_path / "out"), "--simulate"]
    )
    assert 130 == result.exit_code, result.output
    last = seen[-1]
    assert (0, 2, 2) == (last.failed, last.interrupted, last.finished)
