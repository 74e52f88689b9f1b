"""Helpers: a real server process, the CLI as a real process, SIGKILL, and the oracles."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from evolink.testing._png import render_png

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"
KEY = "sk-evo-attack-resume-cli-000000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return env


@contextlib.contextmanager
def server(config: dict) -> Iterator[str]:
    port = _free_port()
    log = Path(tempfile.gettempdir()) / f"attack-resume-server-{port}.log"
    with log.open("w") as err:
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, str(HERE / "_server.py"), str(port), json.dumps(config)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(url + "/__record", timeout=1).read()  # noqa: S310
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start: " + log.read_text()) from None
                time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def record(url: str) -> dict:
    with urllib.request.urlopen(url + "/__record", timeout=10) as r:  # noqa: S310
        return json.loads(r.read())


def control(url: str, **changes) -> dict:
    req = urllib.request.Request(  # noqa: S310
        url + "/__control", data=json.dumps(changes).encode(), method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
        return json.loads(r.read())


def write_prompts(path: Path, n: int, tag: str) -> list[str]:
    prompts = [f"attack {tag} prompt number {i:03d} a lighthouse in fog" for i in range(n)]
    path.write_text("\n".join(prompts) + "\n")
    return prompts


class Cli:
    def __init__(self, source: Path, out: Path, url: str, *extra: str) -> None:
        self.source, self.out, self.url, self.extra = source, out, url, extra
        self.sessions: list[dict] = []

    def start(self, resume: bool) -> subprocess.Popen[str]:
        env = _env()
        env["EVOLINK_API_KEY"] = KEY
        env["EVOLINK_BASE_URL"] = self.url
        args = [
            sys.executable,
            "-m",
            "evolink.cli",
            "batch",
            str(self.source),
            "--out",
            str(self.out),
            "--plain",
            *self.extra,
        ]
        if resume:
            args.append("--resume")
        log = self.out.parent / f"{self.out.name}-stderr-{len(self.sessions)}.log"
        with log.open("w") as err:
            proc = subprocess.Popen(  # noqa: S603
                args, env=env, stdout=subprocess.PIPE, stderr=err, text=True
            )
        self.sessions.append({"proc": proc, "resume": resume, "killed": False})
        return proc

    def kill_after(
        self,
        proc: subprocess.Popen[str],
        rng: random.Random,
        lo: float,
        hi: float,
        creates_seen=None,
    ) -> bool:
        """SIGKILL a random moment after the journal exists (or `creates_seen()` says go)."""
        deadline = time.monotonic() + 25
        while not (self.out / "journal.sqlite3").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        wait = rng.uniform(lo, hi)
        fire = time.monotonic() + wait
        while time.monotonic() < fire:
            if proc.poll() is not None:
                return False
            if creates_seen is not None and creates_seen():
                break
            time.sleep(0.01)
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        self.sessions[-1]["killed"] = True
        return True

    def finish(self, proc: subprocess.Popen[str], timeout: float = 40) -> tuple[int, str]:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        return proc.returncode, out

    def stderr(self) -> str:
        text = []
        for i in range(len(self.sessions)):
            text.append((self.out.parent / f"{self.out.name}-stderr-{i}.log").read_text())
        return "\n".join(text)


def manifest(out: Path) -> list[dict]:
    path = out / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tasks_by_prompt(rec: dict) -> dict[str, list[dict]]:
    by = defaultdict(list)
    for t in rec["tasks"]:
        by[t["prompt"]].append(t)
    return by


def creates_by_prompt(rec: dict) -> dict[str, list[dict]]:
    by = defaultdict(list)
    for r in rec["requests"]:
        if r["method"] == "POST" and r["path"] == "/v1/images/generations":
            by[r["prompt"]].append(r)
    return by


def png_belongs_to(data: bytes, prompt: str, n: int) -> bool:
    """Whether the PNG is one the simulator renders for `prompt` (any index < n+2)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    width, height = struct.unpack(">II", data[16:24])
    return any(render_png(prompt, width, height, i) == data for i in range(n + 2))


def check_images(out: Path, lines: list[dict], prompts: list[str], n: int) -> list[str]:
    problems = []
    for line in lines:
        prompt = prompts[line["index"]]
        for f in line["files"]:
            data = (out / f).read_bytes() if (out / f).exists() else None
            if data is None:
                problems.append(f"input {line['index']}: file {f} missing")
            elif not png_belongs_to(data, prompt, n):
                owner = [p for p in prompts if png_belongs_to(data, p, n)]
                problems.append(
                    f"input {line['index']}: file {f} is not of its prompt (is {owner})"
                )
    return problems
