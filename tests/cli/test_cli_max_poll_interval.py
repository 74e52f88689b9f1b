"""`--max-poll-interval`: `batch` and `generate` give it to the client that waits for their
tasks (what the client does with it: tests/batch/test_max_poll_interval.py)."""

from __future__ import annotations

from typing import Any

import pytest

from evolink import AsyncEvolink
from evolink.cli import main


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> list[AsyncEvolink]:
    """Every SDK client the command makes."""
    made: list[AsyncEvolink] = []

    class Recorded(AsyncEvolink):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            made.append(self)

    monkeypatch.setattr("evolink.cli._backend.AsyncEvolink", Recorded)
    return made


@pytest.mark.parametrize("command", ["generate", "batch"])
@pytest.mark.parametrize("interval", [None, 0.25])
def test_the_interval_reaches_the_client(tmp_path, sim, runner, clients, command, interval):
    if command == "generate":
        args = ["generate", "a fox"]
    else:
        source = tmp_path / "prompts.txt"
        source.write_text("a fox\na hare\n")
        args = ["batch", str(source)]
    if interval is not None:
        args += ["--max-poll-interval", str(interval)]
    result = runner.invoke(main, [*args, "--out", str(tmp_path / "out"), "--simulate", "--plain"])
    assert 0 == result.exit_code, result.output
    assert [client.max_poll_interval for client in clients] == [interval]
    assert any(r.path.endswith("/generations") for r in sim.requests)


@pytest.mark.parametrize("value", ["0", "0.05", "-1", "soon"])
def test_a_bad_interval_is_a_usage_error(tmp_path, sim, runner, value):
    result = runner.invoke(
        main,
        ["generate", "a fox", "--out", str(tmp_path), "--simulate", "--max-poll-interval", value],
    )
    assert 2 == result.exit_code
    assert "--max-poll-interval" in result.output
    assert [] == sim.requests
