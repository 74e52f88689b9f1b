"""The `evolink` command from docs/reference/cli.md, against a served simulator."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from evolink.cli import main
from evolink.testing import Faults, Simulator

ROOT = Path(__file__).resolve().parents[2]
GOOD = "sk-evo-good-key-0000000000000001"
BAD = "sk-evo-wrong-key-999999999999999"


@pytest.fixture
def runner(monkeypatch) -> CliRunner:
    monkeypatch.delenv("EVOLINK_API_KEY", raising=False)
    monkeypatch.delenv("EVOLINK_BASE_URL", raising=False)
    return CliRunner()


def _served(sim: Simulator) -> Iterator[str]:
    with sim.serve_in_thread() as url:
        yield url


@pytest.fixture
def fast_sim() -> Simulator:
    return Simulator(durations=(0.05, 0.1), pending_time=0.01, api_keys={GOOD})


@pytest.fixture
def served(fast_sim: Simulator) -> Iterator[str]:
    yield from _served(fast_sim)


def _prompts(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("".join(f"a paper boat, study {i}\n" for i in range(count)))
    return path


def _doc_options() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "reference" / "cli.md").read_text()
    found: dict[str, set[str]] = {}
    for block in re.finditer(
        r"<!-- generated: (.+?) -->(.*?)<!-- end generated -->", text, re.DOTALL
    ):
        opts = set(re.findall(r"^\| `([^`]+)`", block.group(2), re.MULTILINE))
        found[block.group(1).strip()] = {o.split(", ")[-1].split(" ")[0] for o in opts}
    return found


def _command(path: str) -> click.Command:
    command: click.Command = main
    for part in path.split()[1:]:
        assert isinstance(command, click.Group)
        command = command.commands[part]
    return command


def test_cli_reference_lists_every_command_and_option():
    documented = _doc_options()
    assert "evolink simulator" in documented
    assert "--allow-local-callbacks" in documented["evolink simulator"]
    commands: list[str] = []

    def walk(cmd: click.Command, path: str) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")
        else:
            commands.append(path)

    walk(main, "evolink")
    assert sorted(commands) == sorted(documented)
    for path in commands:
        real = {
            max(p.opts, key=len)
            for p in _command(path).params
            if isinstance(p, click.Option) and p.name != "help"
        }
        assert real == documented[path], path


def test_simulator_command_takes_allow_local_callbacks(runner):
    result = runner.invoke(main, ["simulator", "--help"])
    assert result.exit_code == 0
    assert "--allow-local-callbacks" in result.output


def test_resume_without_a_journal_is_refused(runner, tmp_path):
    prompts = _prompts(tmp_path, 3)
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(
        main, ["batch", str(prompts), "--out", str(out), "--resume", "--simulate", "--plain"]
    )
    assert result.exit_code == 2, result.output
    assert not (out / "manifest.jsonl").exists()
    missing = tmp_path / "missing"
    result = runner.invoke(
        main, ["batch", str(prompts), "--out", str(missing), "--resume", "--simulate"]
    )
    assert result.exit_code == 2, result.output


def test_a_bad_key_stops_batch_once_with_a_hint_and_zero_creates(
    runner, tmp_path, served, fast_sim
):
    prompts = _prompts(tmp_path, 5)
    result = runner.invoke(
        main,
        ["batch", str(prompts), "--out", str(tmp_path / "o"), "--plain"],
        env={"EVOLINK_API_KEY": BAD, "EVOLINK_BASE_URL": served},
    )
    assert result.exit_code == 2, result.output
    assert "EVOLINK_API_KEY" in result.output
    assert result.output.count("authentication failed") == 1
    assert BAD not in result.output
    assert fast_sim.count("POST", "/v1/images/generations") == 0


def test_a_bad_key_stops_generate_with_zero_creates(runner, tmp_path, served, fast_sim):
    result = runner.invoke(
        main,
        ["generate", "a fox", "--out", str(tmp_path / "o"), "--plain", "--api-key", BAD],
        env={"EVOLINK_BASE_URL": served},
    )
    assert result.exit_code == 2, result.output
    assert "EVOLINK_API_KEY" in result.output
    assert BAD not in result.output
    assert fast_sim.count("POST", "/v1/images/generations") == 0


def test_credits_with_a_bad_key_exit_2(runner, served):
    result = runner.invoke(
        main, ["credits"], env={"EVOLINK_API_KEY": BAD, "EVOLINK_BASE_URL": served}
    )
    assert result.exit_code == 2, result.output
    assert "EVOLINK_API_KEY" in result.output


def test_an_invalid_batch_size_is_reported_once(runner, tmp_path):
    prompts = _prompts(tmp_path, 6)
    result = runner.invoke(
        main,
        ["batch", str(prompts), "--out", str(tmp_path / "o"), "--size", "7:3", "--simulate"],
    )
    assert result.exit_code == 2, result.output
    assert result.output.count("7:3") == 1, result.output


def test_generate_with_an_invalid_size_does_not_suggest_skip_invalid(runner, tmp_path):
    result = runner.invoke(
        main, ["generate", "a fox", "--out", str(tmp_path / "o"), "--size", "7:3", "--simulate"]
    )
    assert result.exit_code == 2, result.output
    assert "7:3" in result.output
    assert "skip-invalid" not in result.output


def test_generate_json_against_a_served_simulator(runner, tmp_path, served):
    result = runner.invoke(
        main,
        ["generate", "a fox", "--out", str(tmp_path / "o"), "--json", "-n", "2"],
        env={"EVOLINK_API_KEY": GOOD, "EVOLINK_BASE_URL": served},
    )
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "o").glob("*.png"))) == 2


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_resume_retry_failed_retries_only_the_failed_rows(runner, tmp_path):
    sim = Simulator(
        durations=(0.05, 0.1),
        pending_time=0.01,
        seed=5,
        faults=Faults(task_failure=0.5, failure_codes=("service_error",)),
    )
    prompts = _prompts(tmp_path, 8)
    out = tmp_path / "out"
    for server in _served(sim):
        env = {"EVOLINK_API_KEY": GOOD, "EVOLINK_BASE_URL": server}
        args = ["batch", str(prompts), "--out", str(out), "--plain"]
        first = runner.invoke(main, args, env=env)
        rows = _manifest(out)
        failed = [r for r in rows if r["status"] == "failed"]
        assert first.exit_code == (1 if failed else 0), first.output
        assert failed, "seed 5 at 50% should fail some rows"
        creates_before = sim.count("POST", "/v1/images/generations")
        assert creates_before == 8

        plain = runner.invoke(main, [*args, "--resume"], env=env)
        assert plain.exit_code == 1, plain.output
        assert sim.count("POST", "/v1/images/generations") == creates_before

        again = runner.invoke(main, [*args, "--resume", "--retry-failed"], env=env)
        assert again.exit_code in (0, 1), again.output
        created = [r for r in sim.requests if r.method == "POST" and r.path.endswith("generations")]
        prompts_created = [r.body["prompt"] for r in created if r.body]
        retried = prompts_created[8:]
        assert sorted(retried) == sorted(r["prompt"] for r in failed)
        assert len(_manifest(out)) == 8


def test_retry_failed_without_resume_is_a_usage_error_or_harmless(runner, tmp_path):
    prompts = _prompts(tmp_path, 2)
    result = runner.invoke(
        main,
        ["batch", str(prompts), "--out", str(tmp_path / "o"), "--retry-failed", "--simulate"],
    )
    assert result.exit_code in (0, 2), result.output
