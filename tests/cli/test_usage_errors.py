"""Usage and authentication errors: said once, with the right hint, exit 2, nothing created."""

from __future__ import annotations

import types
from functools import partial

import httpx
import pytest

from evolink import AsyncEvolink
from evolink.cli import main
from evolink.testing import Simulator

GOOD_KEY = "sk-evo-the-right-key-0123456789"
BAD_KEY = "sk-evo-a-revoked-key-0123456789"


def test_generate_bad_size_names_the_option_without_skip_invalid(tmp_path, sim, runner):
    """`generate --size 7:3` says what is wrong with --size and suggests no batch option."""
    result = runner.invoke(
        main,
        [
            "generate",
            "fox",
            "--model",
            "gpt-image-1.5",
            "--size",
            "7:3",
            "--out",
            str(tmp_path),
            "--simulate",
        ],
    )
    assert 2 == result.exit_code
    assert "--size: '7:3' is not one of" in result.output
    assert "--skip-invalid" not in result.output
    assert [] == sim.requests


def test_generate_bad_prompt_suggests_no_batch_option(tmp_path, sim, runner):
    """A prompt the model refuses is reported as such, without --skip-invalid."""
    result = runner.invoke(
        main,
        ["generate", "x" * 2001, "--model", "gpt-image-1.5", "--out", str(tmp_path), "--simulate"],
    )
    assert 2 == result.exit_code
    assert "PROMPT: is 2001 characters" in result.output.replace("prompt:", "PROMPT:")
    assert "--skip-invalid" not in result.output


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        pytest.param("--size", "7:3", "--size: '7:3' is not one of", id="size"),
        pytest.param("-n", "3", "-n: 3 is not one of 1", id="n"),
    ],
)
def test_batch_wide_option_is_checked_once(tmp_path, sim, runner, option, value, shown):
    """An invalid batch-wide option is one error, not one per row (exit 2, nothing sent)."""
    source = tmp_path / "p.txt"
    source.write_text("".join(f"prompt {i}\n" for i in range(30)))
    result = runner.invoke(
        main,
        [
            "batch",
            str(source),
            "--out",
            str(tmp_path / "out"),
            option,
            value,
            "--simulate",
            "--model",
            "gpt-image-1.5",
        ],
    )
    assert 2 == result.exit_code
    assert 1 == result.output.count(shown)
    assert "p.txt:" not in result.output
    assert [] == sim.requests


def test_malformed_csv_sends_nothing_even_with_skip_invalid(tmp_path, sim, runner):
    """An open quote in a CSV stops the run with its line (exit 2, zero creates)."""
    source = tmp_path / "p.csv"
    source.write_text('prompt\na fox\n"an owl\na heron\nan eel\n')
    result = runner.invoke(
        main,
        ["batch", str(source), "--out", str(tmp_path / "out"), "--simulate", "--skip-invalid"],
    )
    assert 2 == result.exit_code
    assert f"{source}:3: malformed CSV" in result.output
    assert [] == sim.requests


def test_malformed_jsonl_line_is_not_skipped(tmp_path, sim, runner):
    """--skip-invalid skips rows with bad values, not lines that are not JSON at all."""
    source = tmp_path / "p.jsonl"
    source.write_text('{"prompt": "a fox"}\n{"prompt": "an owl", \n{"prompt": "x", "n": 11}\n')
    result = runner.invoke(
        main,
        ["batch", str(source), "--out", str(tmp_path / "out"), "--simulate", "--skip-invalid"],
    )
    assert 2 == result.exit_code
    assert "1 malformed line(s)" in result.output
    assert "first at line 2" in result.output
    assert [] == sim.requests


@pytest.fixture
def guarded(monkeypatch):
    """The simulator accepting only GOOD_KEY, behind the real (not simulated) backend."""
    simulator = Simulator(api_keys=frozenset({GOOD_KEY}), durations=(0.05, 0.1))
    monkeypatch.setattr(
        "evolink.cli._backend.AsyncEvolink",
        partial(AsyncEvolink, transport=simulator.transport()),
    )
    monkeypatch.setattr(
        "evolink.cli._backend.httpx",
        types.SimpleNamespace(
            AsyncClient=partial(httpx.AsyncClient, transport=simulator.transport()),
            Timeout=httpx.Timeout,
        ),
    )
    monkeypatch.setenv("EVOLINK_API_KEY", BAD_KEY)
    return simulator


def _creates(simulator: Simulator) -> int:
    return simulator.count("POST", "/v1/images/generations")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["credits"], id="credits"),
        pytest.param(["task", "get", "task-unified-1757156493-00000001"], id="task-get"),
        pytest.param(["generate", "a fox", "--out", "OUT"], id="generate"),
    ],
)
def test_a_refused_key_says_check_the_key(tmp_path, guarded, runner, args):
    """A 401 says "authentication failed: ... — check EVOLINK_API_KEY", its status once."""
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    result = runner.invoke(main, args)
    assert 2 == result.exit_code, result.output
    assert "authentication failed: Invalid or expired token — check EVOLINK_API_KEY" in (
        result.output
    )
    assert "401 401" not in result.output
    assert 0 == _creates(guarded)


def test_a_refused_key_stops_a_batch_once(tmp_path, guarded, runner):
    """A bad key in `batch` is one clear stop (exit 2) before any create, not 100 failures;
    once the key is fixed, the same command (no --resume needed) runs."""
    source = tmp_path / "p.txt"
    source.write_text("".join(f"prompt {i}\n" for i in range(100)))
    out = tmp_path / "out"
    result = runner.invoke(main, ["batch", str(source), "--out", str(out), "--plain"])
    assert 2 == result.exit_code, result.output
    assert 1 == result.output.count("authentication failed")
    assert 0 == _creates(guarded)
    fixed = runner.invoke(
        main,
        ["batch", str(source), "--out", str(out), "--plain", "--api-key", GOOD_KEY],
    )
    assert 0 == fixed.exit_code, fixed.output[-2000:]
    assert 100 == _creates(guarded)
