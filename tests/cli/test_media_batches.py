"""`evolink batch --model <video or audio model> --simulate`: playable files and a gallery."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from evolink.cli import main


@pytest.mark.parametrize(
    ("model", "param", "extension", "magic", "element"),
    [
        pytest.param("kling-v3-text-to-video", "duration=5", "mp4", b"ftyp", "<video", id="video"),
        pytest.param(
            "doubao-seed-audio-1-0", "format=mp3", "mp3", b"\xff\xfb", "<audio", id="audio"
        ),
    ],
)
def test_a_media_batch_downloads_playable_files_and_a_gallery(
    tmp_path, model, param, extension, magic, element
):
    """Each prompt's result lands with its media's extension, and the gallery plays it."""
    source = tmp_path / "prompts.txt"
    source.write_text("a fox running through snow\nan owl at dusk\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "batch",
            str(source),
            "--model",
            model,
            "--param",
            param,
            "--simulate",
            "--out",
            str(out),
            "--plain",
        ],
    )
    assert 0 == result.exit_code, result.output
    # Each line and the summary count files, not images.
    assert 2 == result.output.count("  1 file(s)"), result.output
    assert "image" not in result.output
    assert re.search(r"^\s*files\s+2\s*$", result.output, re.MULTILINE), result.output
    files = sorted(out.glob(f"*.{extension}"))
    assert 2 == len(files)
    for path in files:
        head = path.read_bytes()[:16]
        assert magic in head, (path.name, head)
    gallery = (out / "index.html").read_text()
    assert gallery.count(element) == 2
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {model} == {row["request"]["model"] for row in rows}


def test_a_parameter_out_of_range_is_refused_once(tmp_path):
    """`--param duration=99` for a model taking 3-15 s stops before anything is sent."""
    source = tmp_path / "prompts.txt"
    source.write_text("a fox\nan owl\n")
    result = CliRunner().invoke(
        main,
        [
            "batch",
            str(source),
            "--model",
            "kling-v3-text-to-video",
            "--param",
            "duration=99",
            "--simulate",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert 2 == result.exit_code
    assert 1 == result.output.count("duration")
    assert "--param duration" in result.output
