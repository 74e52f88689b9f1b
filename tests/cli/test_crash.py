"""Crash safety, end to end: the CLI as a subprocess against the simulator served on loopback.

SIGKILL mid-batch, then `--resume`: from the simulator's request record, no create body went
out under two idempotency keys and no input made two tasks; every prompt ends with its
images on disk, and no local reference image is uploaded twice. SIGINT stops cleanly with
exit 130 and a hint to resume.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from evolink.testing import Faults, Simulator

PROMPTS = [f"prompt number {i} of the crash test" for i in range(16)]


@pytest.fixture
def served() -> Iterator[tuple[Simulator, str]]:
    """The simulator on 127.0.0.1 (a thread): 1-1.5 s tasks, some create answers lost."""
    simulator = Simulator(seed=7, durations=(1.0, 1.5), faults=Faults(lost_create_response=0.1))
    with simulator.serve_in_thread() as url:
        yield simulator, url


def _start(source: Path, out: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "EVOLINK_API_KEY": "sk-evo-crash-test-key-0000"}
    return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "evolink.cli",
            "batch",
            str(source),
            "--out",
            str(out),
            "--base-url",
            url,
            "--max-in-flight",
            "4",
            "-n",
            "2",
            "--plain",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_images(out: Path, process: subprocess.Popen[str], at_least: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = len(list(out.glob("*.png")))
        if found >= at_least:
            return found
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    raise AssertionError("no image appeared")


def _check_everything_made_once(simulator: Simulator, out: Path) -> None:
    keys: dict[str, set[str | None]] = defaultdict(set)
    for request in simulator.requests:
        if request.method == "POST" and request.path == "/v1/images/generations":
            keys[request.body["prompt"]].add(request.idempotency_key)
    # No create body went out under two keys, so no input can have made two tasks.
    assert dict.fromkeys(PROMPTS, 1) == {p: len(k) for p, k in keys.items()}
    tasks: dict[str, int] = defaultdict(int)
    for task in simulator.tasks.values():
        tasks[task.prompt] += 1
    assert dict.fromkeys(PROMPTS, 1) == dict(tasks)
    for index in range(len(PROMPTS)):
        assert len(list(out.glob(f"{index + 1:04d}-prompt-number-{index}-*-[12].png"))) == 2
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert ["completed"] * len(PROMPTS) == [m["status"] for m in manifest]


def test_sigkill_then_resume_creates_nothing_twice(tmp_path, served):
    """Killed with SIGKILL mid-batch, a --resume finishes every prompt with one task each."""
    simulator, url = served
    source = tmp_path / "prompts.txt"
    source.write_text("\n".join(PROMPTS) + "\n")
    out = tmp_path / "out"
    first = _start(source, out, url)
    seen = _wait_for_images(out, first, at_least=1)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    assert seen < 2 * len(PROMPTS)
    created_before = len(simulator.tasks)
    assert 0 < created_before < len(PROMPTS) + 4
    second = _start(source, out, url, "--resume")
    stdout, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stdout + stderr
    _check_everything_made_once(simulator, out)
    assert not list(out.glob(".*.part"))


def test_sigint_stops_cleanly_with_130(tmp_path, served):
    """Ctrl-C stops the run with exit 130 and a hint; --resume then completes it."""
    simulator, url = served
    source = tmp_path / "prompts.txt"
    source.write_text("\n".join(PROMPTS) + "\n")
    out = tmp_path / "out"
    first = _start(source, out, url)
    _wait_for_images(out, first, at_least=1)
    first.send_signal(signal.SIGINT)
    stdout, stderr = first.communicate(timeout=30)
    assert first.returncode == 130, stdout + stderr
    assert "--resume" in stdout
    assert (out / "manifest.jsonl").exists()
    second = _start(source, out, url, "--resume")
    stdout, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stdout + stderr
    _check_everything_made_once(simulator, out)


def test_sigkill_then_resume_uploads_no_local_file_again(tmp_path, served):
    """A CSV naming local files (three contents): killed with SIGKILL once an image is
    saved, the run had uploaded each content once; `--resume` uploads nothing again."""
    from test_local_images_resume import write_csv  # noqa: PLC0415 - a sibling's helper

    simulator, url = served
    source = write_csv(tmp_path, rows=6)
    out = tmp_path / "out"
    first = _start(source, out, url)
    _wait_for_images(out, first, at_least=1)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    uploaded = simulator.count("POST", "/api/v1/files/upload")
    second = _start(source, out, url, "--resume")
    stdout, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stdout + stderr
    assert 3 == uploaded == simulator.count("POST", "/api/v1/files/upload")
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert ["completed"] * 6 == [m["status"] for m in manifest]
