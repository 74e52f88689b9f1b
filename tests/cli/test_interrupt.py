"""Ctrl-C: what `generate` and `batch` say and count when the user stops them.

The signal is stood in for by the run's own interrupt hook, fired once the simulator has
seen what the test waits for (a task made, or a create on its way).
"""

from __future__ import annotations

import json
import re
import types

import anyio
import httpx
from _cli_sim import creates, quick, use

from evolink.cli import main
from evolink.testing import Fixed, Simulator


def _interrupt_when(monkeypatch, ready):
    async def interrupt(scope, state):
        while not ready():
            await anyio.sleep(0.01)
        state.interrupted = True
        scope.cancel()

    monkeypatch.setattr("evolink.cli._run._interrupt_on_sigint", interrupt)


class _HangingCreates(httpx.AsyncBaseTransport):
    """The simulator's transport, but a create's answer, once the task is made, never comes
    (until cancelled): the network loses it, the API is untouched."""

    def __init__(self, sim: Simulator) -> None:
        self.inner = sim.transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self.inner.handle_async_request(request)
        if request.url.path == "/v1/images/generations":
            await anyio.sleep(60)
        return answer


def _slow_tasks(monkeypatch) -> Simulator:
    """`--simulate` on a simulator whose tasks take a minute."""
    return use(monkeypatch, quick(durations=Fixed(60)))


def test_generate_interrupted_after_create_prints_the_task_id(tmp_path, runner, monkeypatch):
    """Stopped while the task runs: exit 130, the task id and the `task get` command."""
    sim = _slow_tasks(monkeypatch)
    _interrupt_when(monkeypatch, lambda: bool(sim.tasks))
    result = runner.invoke(main, ["generate", "a fox", "--out", str(tmp_path), "--simulate"])
    assert 130 == result.exit_code, result.output
    [task_id] = sim.tasks
    assert f"`evolink task get {task_id}`" in result.output
    assert "abandoned: stopped: interrupted: the task was created" in result.output
    assert not re.search(r"abandoned:\s*$", result.output, re.MULTILINE)


def test_generate_interrupted_during_create_prints_the_key(tmp_path, sim, runner, monkeypatch):
    """Stopped while the create is on its way: the idempotency key and how to use it; the
    command run again with that key gets the task made then, not a second one."""
    hanging = _HangingCreates(sim)
    use(monkeypatch, types.SimpleNamespace(transport=lambda: hanging))
    _interrupt_when(monkeypatch, lambda: bool(creates(sim)))
    out = str(tmp_path)
    first = runner.invoke(main, ["generate", "a fox", "--out", out, "--simulate", "--json"])
    assert 130 == first.exit_code, first.output
    sent_key = creates(sim)[0].idempotency_key
    assert f"--idempotency-key {sent_key}" in first.stderr
    assert "uncertain" == json.loads(first.stdout)["results"][0]["status"]
    monkeypatch.undo()  # answers come again; `--simulate` keeps the same simulator
    use(monkeypatch, sim)
    again = runner.invoke(
        main, ["generate", "a fox", "--out", out, "--simulate", "--idempotency-key", sent_key]
    )
    assert 0 == again.exit_code, again.output
    assert 1 == len(sim.tasks)
    assert [sent_key, sent_key] == [r.idempotency_key for r in creates(sim)]


def test_generate_refuses_a_malformed_key(tmp_path, sim, runner):
    """--idempotency-key takes only what the API takes (exit 2, nothing sent)."""
    result = runner.invoke(
        main, ["generate", "fox", "--out", str(tmp_path), "--simulate", "--idempotency-key", "x"]
    )
    assert 2 == result.exit_code
    assert [] == sim.requests


def test_interrupted_inputs_are_not_counted_failed(tmp_path, runner, monkeypatch):
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
    sim = _slow_tasks(monkeypatch)
    _interrupt_when(monkeypatch, lambda: len(sim.tasks) == 2)
    source = tmp_path / "p.txt"
    source.write_text("a fox\nan owl\n")
    result = runner.invoke(
        main, ["batch", str(source), "--out", str(tmp_path / "out"), "--simulate"]
    )
    assert 130 == result.exit_code, result.output
    last = seen[-1]
    assert (0, 2, 2) == (last.failed, last.interrupted, last.finished)
