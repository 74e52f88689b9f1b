"""`evolink models`, `estimate`, `files`, `task list`, and `batch --max-credits` up front."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _platform_support import png
from click.testing import CliRunner

from evolink.cli import main
from evolink.testing import Simulator


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """One quick simulator behind every `--simulate` of a test."""
    made = Simulator(seed=3, durations=(0.05, 0.1))
    monkeypatch.setattr("evolink.cli._backend.make_simulator", lambda **_: made)
    return made


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_models_table_and_json(runner: CliRunner, sim: Simulator):
    """A table of model, kind, lifecycle and price; `--json` for scripts."""
    table = runner.invoke(main, ["models", "--kind", "audio", "--simulate"])
    document = runner.invoke(main, ["models", "--kind", "video", "--simulate", "--json"])

    assert 0 == table.exit_code, table.output
    assert table.output.splitlines()[0].split() == ["model", "kind", "lifecycle", "price", "from"]
    assert "suno-v5" in table.output
    models = json.loads(document.output)
    assert {"video"} == {m["kind"] for m in models}


def test_models_shows_a_retirement_date(runner: CliRunner, sim: Simulator):
    sim.set_lifecycle("suno-v5", "deprecated", retires_at="2026-12-31")
    table = runner.invoke(main, ["models", "--kind", "audio", "--simulate"])
    assert "deprecated (2026-12-31)" in table.output


def test_estimate_a_prompt_file(runner: CliRunner, sim: Simulator, tmp_path: Path):
    """Three prompts at 2.5: 7.5 credits, with how it was computed; nothing created."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a fox\nan owl\na bear\n")

    result = runner.invoke(main, ["estimate", str(prompts), "--simulate"])
    document = runner.invoke(main, ["estimate", str(prompts), "--simulate", "--json"])

    assert 0 == result.exit_code, result.output
    assert "3 request(s): 7.5 credits" in result.output
    assert "7.5" == json.loads(document.output)["max_credits"]
    assert 0 == sim.count("POST")


def test_files_upload_list_quota(runner: CliRunner, sim: Simulator, tmp_path: Path):
    image = tmp_path / "product.png"
    image.write_bytes(png(1))

    upload = runner.invoke(main, ["files", "upload", str(image), "--simulate"])
    listed = runner.invoke(main, ["files", "list", "--simulate"])
    as_json = runner.invoke(main, ["files", "list", "--simulate", "--json"])
    quota = runner.invoke(main, ["files", "quota", "--simulate"])
    quota_json = runner.invoke(main, ["files", "quota", "--simulate", "--json"])

    assert 0 == upload.exit_code, upload.output
    assert "product.png: http" in upload.output
    assert "product.png" in listed.output
    assert 1 == len(json.loads(as_json.output))
    assert "files: 1 of 2000 used, 1999 left" in quota.output
    assert 1 == json.loads(quota_json.output)["used_files"]


def test_files_upload_refuses_a_non_image_unsent(runner: CliRunner, sim: Simulator, tmp_path: Path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = runner.invoke(main, ["files", "upload", str(text), "--simulate"])
    assert 0 != result.exit_code
    assert "not one of the image types" in result.output
    assert 0 == sim.count()


def test_task_list(runner: CliRunner, sim: Simulator, tmp_path: Path):
    """After a generate, `task list` shows it; `--status` filters; `--json` for scripts."""
    out = tmp_path / "out"
    generated = runner.invoke(main, ["generate", "a fox", "--out", str(out), "--simulate"])
    listed = runner.invoke(main, ["task", "list", "--simulate"])
    completed = runner.invoke(
        main, ["task", "list", "--status", "completed", "--json", "--simulate"]
    )
    pending = runner.invoke(main, ["task", "list", "--status", "pending", "--simulate"])

    assert 0 == generated.exit_code, generated.output
    assert "task-unified-" in listed.output
    assert 1 == len(json.loads(completed.output))
    assert "no tasks" in pending.output


def test_batch_says_how_many_fit_and_uploads_each_file_once(
    runner: CliRunner, sim: Simulator, tmp_path: Path
):
    """A CSV whose image_urls name two local files in six rows: two uploads; with
    `--max-credits 10` it says up front that 4 of 6 fit."""
    (tmp_path / "a.png").write_bytes(png(1))
    (tmp_path / "b.png").write_bytes(png(2))
    rows = "".join(f"fox {i},{'a.png' if i % 2 else 'b.png'}\n" for i in range(6))
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt,image_urls\n" + rows)

    result = runner.invoke(
        main,
        [
            "batch",
            str(prompts),
            "--out",
            str(tmp_path / "out"),
            "--simulate",
            "--plain",
            "--max-credits",
            "10",
        ],
    )

    assert "4 of 6 prompt(s) fit" in result.output
    assert 2 == sim.count("POST", "/api/v1/files/upload")
    assert 4 == sim.count("POST", "/v1/images/generations")


def test_batch_stops_when_the_balance_cannot_cover_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """An account with 3 credits, a batch needing 7.5 (budget 100): nothing is sent."""
    poor = Simulator(seed=1, balance=3)
    monkeypatch.setattr("evolink.cli._backend.make_simulator", lambda **_: poor)
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\nb\nc\n")

    result = CliRunner().invoke(
        main,
        ["batch", str(prompts), "--out", str(tmp_path / "o"), "--simulate", "--max-credits", "100"],
    )

    assert 1 == result.exit_code
    assert "the account has 3 credits" in result.output
    assert 0 == poor.count("POST")


def test_a_bad_local_file_in_a_csv_is_an_invalid_row(
    runner: CliRunner, sim: Simulator, tmp_path: Path
):
    """A CSV naming a local file that is no image: refused with the file read, nothing sent."""
    (tmp_path / "notes.png").write_text("not really a png")
    prompts = tmp_path / "prompts.csv"
    prompts.write_text("prompt,image_urls\nfox,notes.png\n")

    result = runner.invoke(
        main, ["batch", str(prompts), "--out", str(tmp_path / "o"), "--simulate"]
    )

    assert 2 == result.exit_code
    assert "image types" in result.output
    assert 0 == sim.count()
