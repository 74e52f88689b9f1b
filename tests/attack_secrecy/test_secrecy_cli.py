"""The `evolink` command, as a subprocess, against a hostile server over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from _secrecy_hostile import PLAIN_KEY, SK_KEY, assert_clean, error_body, partly_escaped

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _app(body: bytes, status: int, key: str) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"x-request-id", f"req-{key}".encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="critical", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(5)


def _cli(args: list[str], key: str, base_url: str, cwd: Path) -> str:
    env = {**os.environ, "EVOLINK_API_KEY": key, "EVOLINK_BASE_URL": base_url}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "evolink.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0, done.stdout + done.stderr
    texts = [done.stdout, done.stderr]
    for path in cwd.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(texts)


COMMANDS = {
    "generate": ["generate", "a red fox in snow", "--out", "out", "--plain"],
    "task-get": ["task", "get", "task-unified-1700000000-abc"],
    "batch": ["batch", "prompts.txt", "--out", "out", "--plain", "--json"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("key", [SK_KEY, PLAIN_KEY], ids=["sk", "plain"])
def test_cli_with_the_key_quoted_verbatim(
    serve: Any, tmp_path: Path, key: str, command: str
) -> None:
    (tmp_path / "prompts.txt").write_text("a fox\na kite\n")
    base_url = serve(_app(error_body(key), 401, key))
    assert_clean(_cli(COMMANDS[command], key, base_url, tmp_path), key, what=command)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_cli_with_the_key_quoted_json_escaped(serve: Any, tmp_path: Path, command: str) -> None:
    (tmp_path / "prompts.txt").write_text("a fox\na kite\n")
    base_url = serve(_app(error_body(partly_escaped(SK_KEY)), 401, SK_KEY))
    assert_clean(_cli(COMMANDS[command], SK_KEY, base_url, tmp_path), SK_KEY, what=command)
