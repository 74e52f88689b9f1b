"""Regressions for the CLI review: one run per folder, the demo's own folder, hostile text."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner

from evolink import JournalError
from evolink._downloads import Downloader, DownloadError
from evolink.cli import main
from evolink.cli._input import Defaults, read_prompt_file
from evolink.cli._run_folder import FolderJournal


def test_two_runs_cannot_share_a_folder(tmp_path):
    """While one run holds a folder's journal, a second is refused (it would create twice)."""
    first = FolderJournal.open(tmp_path)
    try:
        with pytest.raises(JournalError, match="another evolink run"):
            FolderJournal.open(tmp_path)
    finally:
        first.close()
    FolderJournal.open(tmp_path).close()  # free again once the first is done


def test_the_demo_does_not_clear_another_runs_folder(tmp_path):
    """`evolink demo --out` on a batch's folder refuses (exit 2) and deletes nothing."""
    out = tmp_path / "out"
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox\n")
    runner = CliRunner()
    batch = runner.invoke(main, ["batch", str(prompts), "--out", str(out), "--simulate", "--plain"])
    assert 0 == batch.exit_code, batch.output
    images = sorted(out.glob("*.png"))
    demo = runner.invoke(main, ["demo", "--out", str(out), "-n", "1", "--plain"])
    assert 2 == demo.exit_code
    assert "another run" in demo.output
    assert images == sorted(out.glob("*.png"))
    assert (out / "journal.sqlite3").exists()


def test_prompt_lines_split_at_newlines_only(tmp_path):
    """A prompt holding U+2028 or a form feed stays one prompt; JSON with U+2028 stays one row."""
    text = tmp_path / "p.txt"
    text.write_text("a fox\u2028in snow\nan owl\fat night\n", encoding="utf-8")
    assert ["a fox\u2028in snow", "an owl\fat night"] == [
        r.prompt for r in read_prompt_file(text, Defaults()).rows
    ]
    lines = tmp_path / "p.jsonl"
    lines.write_text(json.dumps({"prompt": "a\u2028b"}, ensure_ascii=False) + "\n", "utf-8")
    rows = read_prompt_file(lines, Defaults()).rows
    assert [(True, 1)] == [(r.valid, r.line) for r in rows]


@pytest.mark.anyio
async def test_a_folder_in_the_way_is_a_download_error(anyio_backend, tmp_path):
    """A directory where the image should go fails that download, not the whole run."""
    (tmp_path / "0001-x-1.png").mkdir()
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, headers={"Content-Type": "image/png"}, content=b"\x89PNG\r\n\x1a\n" + b"x" * 32
        )
    )
    async with httpx.AsyncClient(transport=transport) as client:
        downloader = Downloader(client=client, folder=tmp_path, backoff=0.001)
        with pytest.raises(DownloadError, match="cannot write"):
            await downloader.fetch("https://cdn.test/a.png", "0001-x-1")


@pytest.mark.anyio
async def test_a_dripping_download_is_cut_at_its_deadline(anyio_backend, tmp_path):
    """A body that arrives too slowly in all ends as a (transient) DownloadError."""

    async def drip():
        import anyio  # noqa: PLC0415

        for _ in range(100):
            await anyio.sleep(0.05)
            yield b"x"

    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"Content-Type": "image/png"}, content=drip())
    )
    async with httpx.AsyncClient(transport=transport) as client:
        downloader = Downloader(
            client=client, folder=tmp_path, backoff=0.001, attempts=1, deadline=0.2
        )
        with pytest.raises(DownloadError, match="not done in") as caught:
            await downloader.fetch("https://cdn.test/a.png", "0001-x-1")
    assert caught.value.transient
    assert [] == list(tmp_path.iterdir())  # no .part left behind


def test_the_budget_holds_across_a_resume(tmp_path):
    """`--max-credits` bounds the whole input: a resume does not spend it a second time."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox\nan owl\na heron\n")
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["batch", str(prompts), "--out", str(out), "--simulate", "--plain", "--json"]
    first = runner.invoke(main, [*args, "--max-credits", "3"])
    assert 1 == first.exit_code, first.output  # one done, two skipped for budget
    second = runner.invoke(main, [*args, "--max-credits", "3", "--resume"])
    charged = json.loads(second.stdout)["credits"]["charged"]
    assert 2.5 >= float(charged)
