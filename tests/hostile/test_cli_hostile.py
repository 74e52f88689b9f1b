"""Promises 4 and 5 through the CLI (Ctrl-C, the key quoted back) and the CSV extra.

The CLI runs as a subprocess (`python -m evolink.cli`) against a hostile fake served on a
loopback socket in a thread."""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib

import pytest
from _hostile_fake import API_KEY, OTHER_SECRET, SocketFake, error_body, task_body

pytest.importorskip("click")

TASK_ID = "task-unified-1767225600-sigint0001"
CREATE = "/v1/images/generations"


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
    env["EVOLINK_API_KEY"] = API_KEY
    env["PYTHONUNBUFFERED"] = "1"
    env["TERM"] = "dumb"
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "evolink.cli", *args]


def _interrupt(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the CLI did not stop within 20 s of Ctrl-C: {err[-2000:]}")
    return out, err


# -- 4. Ctrl-C during `evolink generate` ---------------------------------------------------


def _slow_task_app(fake, handler, method, path, _body):
    if method == "POST" and path == CREATE:
        body = task_body(TASK_ID, "pending", int(time.time()))
        body["task_info"]["estimated_time"] = 60
        handler.send_json(200, body)
        fake.state["answered"] = True
    elif method == "GET" and path.startswith("/v1/tasks/"):
        handler.send_json(200, task_body(TASK_ID, "processing", int(time.time()), progress=10))
    else:
        handler.send_json(404, error_body("not_found", "no such route", "invalid_request"))


def _hanging_create_app(fake, handler, method, path, _body):
    if method == "POST" and path == CREATE:
        fake.release.wait(30)
        handler.send_json(500, error_body("internal_error", "too late", "api_error"))
    else:
        handler.send_json(404, error_body("not_found", "no such route", "invalid_request"))


def test_generate_interrupted_after_create_prints_the_task_id(tmp_path):
    """Promise 4: Ctrl-C while `evolink generate` waits for a created task prints its id."""
    fake = SocketFake(_slow_task_app)
    with fake.serving():
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            _cli(
                "generate",
                "a red fox in snow",
                "--out",
                str(tmp_path / "out"),
                "--plain",
                "--base-url",
                fake.base_url,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        try:
            fake.wait_for(lambda: fake.state.get("answered", False))
            time.sleep(0.7)
        except AssertionError:
            proc.kill()
            raise
        out, err = _interrupt(proc)
    assert TASK_ID in out + err, f"Ctrl-C after the create did not print the task id:\n{err}"


def test_generate_interrupted_during_create_prints_the_idempotency_key(tmp_path):
    """Promise 4: Ctrl-C while the create is in flight prints its idempotency key."""
    fake = SocketFake(_hanging_create_app)
    with fake.serving():
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            _cli(
                "generate",
                "a red fox in snow",
                "--out",
                str(tmp_path / "out"),
                "--plain",
                "--base-url",
                fake.base_url,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        try:
            fake.wait_for(lambda: fake.count("POST", CREATE) >= 1)
            time.sleep(0.5)
        except AssertionError:
            proc.kill()
            raise
        out, err = _interrupt(proc)
    # The CLI may read the balance first: the create is the request that carries a key.
    creates = [r for r in fake.requests if r.method == "POST" and r.path == CREATE]
    key = creates[0].headers.get("idempotency-key")
    assert key, "the create carried no Idempotency-Key"
    assert key in out + err, f"Ctrl-C during the create did not print its key:\n{err}"


# -- 5. the key quoted back, through the CLI ------------------------------------------------

QUOTED_401 = {
    "error": {
        "code": "unauthorized",
        "message": f"Invalid API key provided: {API_KEY}",
        "type": "authentication_error",
    }
}


def _leaky_app(fake, handler, method, path, _body):
    with fake.lock:
        tasks = fake.state.setdefault("tasks", {})
    if method == "GET" and path.startswith("/img/"):
        handler.send_bytes(200, _png(), "image/png")
    elif method == "POST" and path == CREATE:
        with fake.lock:
            index = fake.state["creates"] = fake.state.get("creates", -1) + 1
        if index >= 2:
            handler.send_json(401, QUOTED_401)
            return
        task_id = f"task-unified-1767225600-leak{index:04d}"
        tasks[task_id] = index
        body = task_body(task_id, "pending", int(time.time()))
        body["task_info"]["estimated_time"] = 1
        handler.send_json(200, body)
    elif method == "GET" and path.startswith("/v1/tasks/"):
        task_id = path.rsplit("/", 1)[-1]
        if task_id not in tasks:
            handler.send_json(404, error_body("task_not_found", "no such task", "not_found"))
        elif tasks[task_id] == 0:
            url = f"{fake.base_url}/img/{task_id}.png"
            handler.send_json(200, task_body(task_id, "completed", int(time.time()), results=[url]))
        else:
            error = {
                "code": "service_error",
                "message": f"provider refused {OTHER_SECRET}; your key {API_KEY} is fine",
                "type": "task_error",
            }
            handler.send_json(200, task_body(task_id, "failed", int(time.time()), error=error))
    else:
        handler.send_json(404, error_body("not_found", "no such route", "invalid_request"))


def _leaks(text: bytes) -> list[str]:
    found = []
    if API_KEY.encode() in text:
        found.append("the API key")
    if OTHER_SECRET.encode() in text:
        found.append("another sk- secret")
    return found


@pytest.mark.parametrize("mode", ["--plain", "--json"])
def test_batch_cli_never_writes_a_quoted_key(tmp_path, mode):
    """Promise 5: a server quoting the key (a 401) and another sk- secret (a failed task's
    message): neither reaches the CLI's stdout, stderr, manifest, gallery or journal."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red fox in snow\na cat on a mat\na dog in the rain\n")
    out_dir = tmp_path / "out"
    fake = SocketFake(_leaky_app)
    with fake.serving():
        result = subprocess.run(  # noqa: S603 - our own CLI
            _cli(
                "batch",
                str(prompts),
                "--out",
                str(out_dir),
                mode,
                "--max-in-flight",
                "1",
                "--base-url",
                fake.base_url,
            ),
            capture_output=True,
            env=_env(),
            timeout=60,
            check=False,
        )
    assert fake.count("POST", CREATE) >= 3, result.stderr.decode()[-2000:]
    assert (out_dir / "manifest.jsonl").exists(), result.stderr.decode()[-2000:]
    problems = []
    for name, data in [("stdout", result.stdout), ("stderr", result.stderr)]:
        problems += [f"{what} in {name}" for what in _leaks(data)]
    for path in sorted(out_dir.rglob("*")):
        if path.is_file():
            problems += [f"{what} in {path.name}" for what in _leaks(path.read_bytes())]
    assert not problems, problems


def test_generate_cli_never_prints_a_quoted_key(tmp_path):
    """Promise 5: `evolink generate` refused with a 401 quoting the key."""

    def refuse(fake, handler, method, path, _body):
        handler.send_json(401, QUOTED_401)

    fake = SocketFake(refuse)
    with fake.serving():
        result = subprocess.run(  # noqa: S603 - our own CLI
            _cli(
                "generate",
                "a red fox",
                "--out",
                str(tmp_path / "out"),
                "--plain",
                "--base-url",
                fake.base_url,
            ),
            capture_output=True,
            env=_env(),
            timeout=60,
            check=False,
        )
    assert result.returncode != 0
    # Refused before any create (the CLI checks the key with a balance read) or at it:
    # either way the server's quoting answer was read.
    assert fake.requests
    assert not _leaks(result.stdout + result.stderr), result.stderr.decode()[-2000:]


# -- extra: a CSV with an unterminated quote ------------------------------------------------


def test_csv_with_unterminated_quote_is_refused_with_its_line(tmp_path):
    """Extra: `evolink batch` refuses a CSV whose quote never closes, naming its line,
    before anything is sent (exit 2, zero creates)."""
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(
        "prompt,size\n"
        "a red fox in snow,1:1\n"
        "a cat on a mat,1:1\n"
        '"an unterminated quote,1:1\n'
        "a dog in the rain,1:1\n"
        "a boat at sea,1:1\n"
    )

    def answer(fake, handler, method, path, _body):
        if method == "POST" and path == CREATE:
            handler.send_json(200, task_body("task-unified-1767225600-csv0", "completed", 0))
        else:
            handler.send_json(404, error_body("not_found", "no such route", "invalid_request"))

    fake = SocketFake(answer)
    with fake.serving():
        result = subprocess.run(  # noqa: S603 - our own CLI
            _cli(
                "batch",
                str(prompts),
                "--out",
                str(tmp_path / "out"),
                "--plain",
                "--base-url",
                fake.base_url,
            ),
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
            check=False,
        )
    output = result.stdout + result.stderr
    assert fake.count("POST", CREATE) == 0, "a create was sent for a broken CSV"
    assert result.returncode == 2, f"exit {result.returncode}: {output[-1500:]}"
    assert re.search(r"line\s*4\b|:4\b", output, re.IGNORECASE), output[-1500:]
