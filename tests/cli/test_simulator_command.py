"""`evolink simulator` has every option `python -m evolink.testing` has, from one definition."""

from __future__ import annotations

import click
import httpx
import pytest

from evolink.cli import main
from evolink.testing import (
    TEST_API_KEY,
    Estimates,
    LinearProgress,
    NoProgress,
    PowerProgress,
    ScaledClock,
    ShareProgress,
    Simulator,
    SteppedProgress,
    VirtualClock,
)
from evolink.testing import __main__ as served
from evolink.testing._serve import SERVE_OPTIONS

ANCHOR = 1_767_225_600.0


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
    assert {
        "host": "127.0.0.2",
        "port": 8123,
        "log_level": "warning",
        "record": None,
        **knobs,
    } == call
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
        pytest.param(["--progress", "wobbly"], id="unknown-progress"),
        pytest.param(["--estimates", "optimistic"], id="unknown-estimates"),
        pytest.param(["--speed", "0"], id="speed-zero"),
        pytest.param(["--speed", "-2"], id="speed-negative"),
    ],
)
def test_simulator_command_refuses_bad_values(runner, monkeypatch, args):
    """A value the simulator cannot take is a usage error (exit 2), nothing served."""
    calls = []
    monkeypatch.setattr("evolink.testing.serve", lambda **kwargs: calls.append(kwargs))
    result = runner.invoke(main, ["simulator", *args])
    assert 2 == result.exit_code, result.output
    assert [] == calls


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(["--task-failure", "2"], "task_failure", id="probability-over-1"),
        pytest.param(["--progress", "wobbly"], "wobbly", id="unknown-progress"),
        pytest.param(["--speed", "0"], "speed", id="speed-zero"),
    ],
)
def test_python_m_refuses_a_bad_value(capsys, args, named):
    """`python -m evolink.testing` stops with argparse's usage error, not a traceback."""
    with pytest.raises(SystemExit) as exited:
        served.knobs_from_args(args)
    assert 2 == exited.value.code
    assert named in capsys.readouterr().err


def test_server_behaviour_options_become_knobs(runner, monkeypatch):
    """`--progress`, `--estimates`, `--no-accept-retired` and `--speed`/`--anchor` reach the
    Simulator as its knobs, the same from `evolink simulator` and `python -m`."""
    calls = []
    monkeypatch.setattr("evolink.testing.serve", lambda **kwargs: calls.append(kwargs))
    args = [
        "--progress",
        "steps",
        "--estimates",
        "double",
        "--no-accept-retired",
        "--speed",
        "10",
        "--anchor",
        str(ANCHOR),
    ]
    result = runner.invoke(main, ["simulator", *args])
    assert result.exit_code == 0, result.output
    [call] = calls
    _, knobs = served.knobs_from_args(args)
    assert {
        "host": "127.0.0.1",
        "port": 8000,
        "log_level": "warning",
        "record": None,
        **knobs,
    } == call
    assert (SteppedProgress(25), Estimates(factor=2.0), False, ScaledClock(10, anchor=ANCHOR)) == (
        call["progress"],
        call["estimates"],
        call["accept_retired"],
        call["clock"],
    )
    assert f"ScaledClock(10, anchor={ANCHOR!r})" in result.output


def test_server_behaviour_defaults_are_the_simulator_defaults():
    """Without the new options the served simulator is today's: linear progress, honest
    estimates, retired models accepted, and the system clock (no `clock` knob)."""
    _, knobs = served.knobs_from_args([])
    assert "clock" not in knobs
    assert (LinearProgress(), Estimates(), True) == (
        knobs["progress"],
        knobs["estimates"],
        knobs["accept_retired"],
    )


def test_speed_without_anchor_anchors_on_a_whole_second(runner, monkeypatch):
    """`--speed` alone anchors the clock on the current whole second, and the banner says
    which, so a client can make the same `ScaledClock`."""
    calls = []
    monkeypatch.setattr("evolink.testing.serve", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr("time.time", lambda: ANCHOR + 0.75)
    result = runner.invoke(main, ["simulator", "--speed", "4"])
    assert result.exit_code == 0, result.output
    [call] = calls
    assert ScaledClock(4, anchor=ANCHOR) == call["clock"]
    assert f"ScaledClock(4, anchor={ANCHOR!r})" in result.output


@pytest.mark.parametrize(
    ("name", "model"),
    [
        pytest.param("linear", LinearProgress(), id="linear"),
        pytest.param("steps", SteppedProgress(25), id="steps"),
        pytest.param("none", NoProgress(), id="none"),
        pytest.param("slow-then-fast", PowerProgress(3), id="slow-then-fast"),
        pytest.param("fast-then-slow", PowerProgress(1 / 3), id="fast-then-slow"),
        pytest.param("half-told", ShareProgress(0.5), id="half-told"),
    ],
)
def test_progress_names(name, model):
    """Each `--progress` name is the progress model the simulator docs describe."""
    _, knobs = served.knobs_from_args(["--progress", name])
    assert model == knobs["progress"]


@pytest.mark.parametrize(
    ("name", "estimates"),
    [
        pytest.param("honest", Estimates(), id="honest"),
        pytest.param("double", Estimates(factor=2.0), id="double"),
        pytest.param("missing", Estimates(missing=True), id="missing"),
        pytest.param("noisy", Estimates(noise=0.5), id="noisy"),
    ],
)
def test_estimates_names(name, estimates):
    """Each `--estimates` name is the `Estimates` the simulator docs describe."""
    _, knobs = served.knobs_from_args(["--estimates", name])
    assert estimates == knobs["estimates"]


@pytest.mark.anyio
async def test_a_simulator_made_from_the_options_behaves_so():
    """The knobs are the Simulator's own: `--no-accept-retired --progress none --estimates
    missing` refuses gpt-4o-image, and a running task reads progress 0 with no estimate."""
    _, knobs = served.knobs_from_args(
        ["--no-accept-retired", "--progress", "none", "--estimates", "missing"]
    )
    clock = VirtualClock()
    sim = Simulator(**{**knobs, "clock": clock})
    async with httpx.AsyncClient(
        transport=sim.transport(),
        base_url="http://sim.invalid",
        headers={"Authorization": f"Bearer {TEST_API_KEY}"},
    ) as http:
        retired = await http.post(
            "/v1/images/generations", json={"model": "gpt-4o-image", "prompt": "a fox"}
        )
        created = await http.post(
            "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "a fox"}
        )
        assert 200 == created.status_code, created.text
        task_id = created.json()["id"]
        clock.advance(sim.task(task_id).duration * 0.9)
        read = (await http.get(f"/v1/tasks/{task_id}")).json()
    assert (403, "model_access_denied") == (
        retired.status_code,
        retired.json()["error"]["code"],
    )
    assert ("processing", 0) == (read["status"], read["progress"])
    assert "estimated_time" not in read["task_info"]


def test_simulator_command_without_uvicorn(runner, monkeypatch):
    """If the simulator cannot be served, the command says why (exit 2)."""

    def serve(**_):
        raise RuntimeError("serving the simulator needs uvicorn")

    monkeypatch.setattr("evolink.testing.serve", serve)
    result = runner.invoke(main, ["simulator"])
    assert result.exit_code == 2
    assert "needs uvicorn" in result.output
