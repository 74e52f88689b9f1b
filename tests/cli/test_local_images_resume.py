"""`evolink batch` with a CSV whose `image_urls` name local files: each distinct file goes up
once, and a `--resume` after the run was stopped uploads nothing again."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from _cli_sim import creates, quick, use

from evolink.cli import main
from evolink.testing import Simulator
from evolink.testing._png import render_png

UPLOADS = "/api/v1/files/upload"


def write_csv(folder: Path, rows: int = 12) -> Path:
    """A CSV of `rows` prompts naming four paths of three contents (`a-copy.png` is
    `a.png`), every content among the first three rows."""
    for name, index in (("a", 1), ("b", 2), ("c", 3), ("a-copy", 1)):
        (folder / f"{name}.png").write_bytes(render_png(f"reference {index}", 8, 8, index))
    names = ("a.png", "b.png", "c.png", "a-copy.png")
    lines = [f"product shot {i},{names[i % 4]}" for i in range(rows)]
    source = folder / "prompts.csv"
    source.write_text("prompt,image_urls\n" + "\n".join(lines) + "\n")
    return source


def _statuses(out: Path) -> list[str]:
    lines = (out / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line)["status"] for line in lines]


def test_resume_after_a_stop_uploads_nothing_again(tmp_path, runner, monkeypatch):
    """Stopped after four creates (the run's own interrupt, as Ctrl-C), then resumed: three
    uploads in all, none by the resumed run, and every row completed with an uploaded URL."""
    sim: Simulator = use(monkeypatch, quick())

    async def interrupt(scope, state):
        while len(creates(sim)) < 4:
            await anyio.sleep(0.005)
        state.interrupted = True
        scope.cancel()

    monkeypatch.setattr("evolink.cli._run._interrupt_on_sigint", interrupt)
    source = write_csv(tmp_path)
    out = tmp_path / "out"
    args = ["batch", str(source), "--out", str(out), "--simulate", "--max-in-flight", "6"]

    stopped = runner.invoke(main, args, catch_exceptions=False)
    uploaded = sim.count("POST", UPLOADS)
    monkeypatch.undo()
    use(monkeypatch, sim)
    resumed = runner.invoke(main, [*args, "--resume"], catch_exceptions=False)

    assert 130 == stopped.exit_code, stopped.output
    assert 0 == resumed.exit_code, resumed.output
    assert 3 == uploaded == sim.count("POST", UPLOADS)
    assert ["completed"] * 12 == _statuses(out)
    sent = {r.body["image_urls"][0] for r in creates(sim)}
    assert 3 == len(sent)
    assert all(url.startswith("http") for url in sent)


@pytest.mark.parametrize("rows", [1, 5])
def test_each_distinct_file_is_uploaded_once(tmp_path, runner, monkeypatch, rows):
    """A single run: one upload per distinct content among the rows."""
    sim: Simulator = use(monkeypatch, quick())
    source = write_csv(tmp_path, rows)
    result = runner.invoke(
        main, ["batch", str(source), "--out", str(tmp_path / "out"), "--simulate"]
    )
    assert 0 == result.exit_code, result.output
    assert min(rows, 3) == sim.count("POST", UPLOADS)
