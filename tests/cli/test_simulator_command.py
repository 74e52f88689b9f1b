"""`evolink simulator` has every option `python -m evolink.testing` has, from one definition."""

from __future__ import annotations

import click
import pytest

from evolink.cli import main
from evolink.testing import __main__ as served
from evolink.testing._serve import SERVE_OPTIONS


def _flags(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in param.opts if opt.startswith("--")}


def test_every_served_option_is_a_simulator_option():
    """Each flag of `python -m evolink.testing` (`--allow-local-callbacks` among them) is
    one of `evolink simulator`'s, and the other way round."""
    argparse_flags = {
        flag
        for action in served._parser()._actions
        for flag in action.option_strings
        if flag.startswith("--") and flag != "--help"
    }
    command = main.commands["simulator"]
    assert "--allow-local-callbacks" in argparse_flags
    assert argparse_flags == _flags(command) - {"--help"}
    assert {o.flag for o in SERVE_OPTIONS} == argparse_flags


def test_simulator_command_serves_with_its_options(runner, monkeypatch):
    """The options become serve arguments and Simulator knobs, as `python -m` makes them."""
    calls = []
    monkeypatch.setattr("evolink.testing.serve", lambda **kwargs: calls.append(kwargs))
    args = [
        "--port",
        "8123",
        "--host",
        "127.0.0.2",
        "--allow-local-callbacks",
        "--durations",
        "2",
        "6",
        "--task-failure",
        "0.25",
        "--no-idempotency",
    ]
    result = runner.invoke(main, ["simulator", *args])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.2:8123" in result.output
    [call] = calls
    _, knobs = served.knobs_from_args(args)
    assert {"host": "127.0.0.2", "port": 8123, "log_level": "warning", **knobs} == call
    assert (True, (2.0, 6.0), 0.25, False) == (
        call["allow_local_callbacks"],
        call["durations"],
        call["faults"].task_failure,
        call["idempotency"],
    )


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--task-failure", "1.5"], id="probability-over-1"),
        pytest.param(["--port", "70000"], id="port-out-of-range"),
    ],
)
def test_simulator_command_refuses_bad_values(runner, monkeypatch, args):
    """A value the simulator cannot take is a usage error (exit 2), nothing served."""
    calls = []
    monkeypatch.setattr("evolink.testing.serve", lambda **kwargs: calls.append(kwargs))
    result = runner.invoke(main, ["simulator", *args])
    assert 2 == result.exit_code, result.output
    assert [] == calls


def test_python_m_refuses_a_bad_probability(capsys):
    """`python -m evolink.testing` stops with argparse's usage error, not a traceback."""
    with pytest.raises(SystemExit) as exited:
        served.knobs_from_args(["--task-failure", "2"])
    assert 2 == exited.value.code
    assert "task_failure" in capsys.readouterr().err


def test_simulator_command_without_uvicorn(runner, monkeypatch):
    """If the simulator cannot be served, the command says why (exit 2)."""

    def serve(**_):
        raise RuntimeError("serving the simulator needs uvicorn")

    monkeypatch.setattr("evolink.testing.serve", serve)
    result = runner.invoke(main, ["simulator"])
    assert result.exit_code == 2
    assert "needs uvicorn" in result.output
