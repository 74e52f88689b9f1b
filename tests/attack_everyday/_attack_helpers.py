"""A small fake Evolink API and result host, written from the public docs only."""

from __future__ import annotations

import json
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

KEY = "sk-evo-attack16-SECRET-0123456789abcdef"
API = "https://api.evolink.test"
TASK_ID = "task-unified-1757156493-imcg5zqt"


def png_bytes() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


PNG = png_bytes()
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\x00" * 64
    + b"\xff\xd9"
)


def task_json(
    status: str = "completed",
    *,
    task_id: str = TASK_ID,
    results: list[str] | None = None,
    error: dict[str, Any] | None = None,
    progress: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": task_id,
        "object": "image.generation.task",
        "created": 1757156493,
        "model": "gpt-4o-image",
        "status": status,
        "progress": progress if progress is not None else (100 if status == "completed" else 0),
        "type": "image",
        "task_info": {"can_cancel": True, "estimated_time": 10},
        "usage": {"billing_rule": "per_call", "credits_reserved": 2.5, "user_group": "default"},
    }
    if results is not None:
        body["results"] = results
    if error is not None:
        body["error"] = error
    body.update(extra)
    return body


def error_json(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message, "type": "evo_api_error"}}
    )


class FakeAPI:
    """An httpx handler: `routes` maps (method, path) to a function of the request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return error_json(404, "task_not_found", f"no route {request.url.path}")
        return handler(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path.startswith(prefix))


def dump(obj: Any) -> str:
    return json.dumps(obj)


class _Handler(BaseHTTPRequestHandler):
    server: _ResultServer

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers.items())))
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, headers, body = route
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        del args


class _ResultServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}


@contextmanager
def result_server() -> Iterator[_ResultServer]:
    """A real HTTP server on loopback for result images (to see what the SDK sends)."""
    server = _ResultServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def base(server: _ResultServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"
