"""Crash safety, end to end: the CLI as a subprocess against an API served on loopback.

SIGKILL mid-batch, then `--resume`: no input gets two tasks, no create body goes out under
two idempotency keys, and every prompt ends with its images on disk. SIGINT stops cleanly
with exit 130 and a hint to resume.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from _fake_api import FakeAPI

PROMPTS = [f"prompt number {i} of the crash test" for i in range(16)]


@pytest.fixture
def served() -> Iterator[tuple[FakeAPI, str]]:
    """The fake API on 127.0.0.1 (a thread), tasks taking a second."""
    api = FakeAPI(duration=1.0)
    config = uvicorn.Config(
        api.asgi, host="127.0.0.1", port=0, log_level="error", lifespan="off", interface="asgi3"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    api.image_base = f"{url}/files"
    yield api, url
    server.should_exit = True
    thread.join(timeout=10)


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


def _check_everything_made_once(api: FakeAPI, out: Path) -> None:
    keys: dict[str, set[str]] = defaultdict(set)
    for request in api.creates():
        keys[json.loads(request.content)["prompt"]].add(request.headers["Idempotency-Key"])
    assert dict.fromkeys(PROMPTS, 1) == {p: len(k) for p, k in keys.items()}
    tasks = defaultdict(int)
    for task in api.tasks.values():
        tasks[task["body"]["prompt"]] += 1
    assert dict.fromkeys(PROMPTS, 1) == dict(tasks)
    for index in range(len(PROMPTS)):
        assert len(list(out.glob(f"{index + 1:04d}-prompt-number-{index}-*-[12].png"))) == 2
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert ["completed"] * len(PROMPTS) == [m["status"] for m in manifest]


def test_sigkill_then_resume_creates_nothing_twice(tmp_path, served):
    """Killed with SIGKILL mid-batch, a --resume finishes every prompt with one task each."""
    api, url = served
    source = tmp_path / "prompts.txt"
    source.write_text("\n".join(PROMPTS) + "\n")
    out = tmp_path / "out"
    first = _start(source, out, url)
    seen = _wait_for_images(out, first, at_least=1)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    assert seen < 2 * len(PROMPTS)
    created_before = len(api.tasks)
    assert 0 < created_before < len(PROMPTS) + 4
    second = _start(source, out, url, "--resume")
    stdout, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stdout + stderr
    _check_everything_made_once(api, out)
    assert not list(out.glob(".*.part"))


def test_sigint_stops_cleanly_with_130(tmp_path, served):
    """Ctrl-C stops the run with exit 130 and a hint; --resume then completes it."""
    api, url = served
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
    _check_everything_made_once(api, out)
