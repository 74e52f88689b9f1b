"""A hostile Evolink written from the public docs alone (issue 15's attack).

It answers in the shapes PLATFORM.md and the vendored manual allow, but the way a real
platform may and the project's own simulator might not: several SKUs per model, prices in
other currencies, 304s without a body, lost answers after the work was done, pages that
shift under the reader, error bodies that quote the caller's key back.

Every hook is a plain attribute a test overrides; `log` records every request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

SECRET = "sk-evo-ATTACK15-s3cr3t-d0-n0t-l3ak-9f8e7d"
META = {
    "schema_version": 1,
    "catalog_version": "2026-09-01.1",
    "updated_at": "2026-09-01T00:00:00Z",
    "fresh_until": "2026-09-01T00:05:00Z",
}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def png(tag: bytes = b"") -> bytes:
    """A valid PNG whose content (and so its sha256) differs by `tag`."""
    return PNG + tag


def sku(model: str, sku_id: str, **overrides: Any) -> dict[str, Any]:
    """One price row of `GET /v1/catalog/pricing` (PLATFORM.md's field list)."""
    row: dict[str, Any] = {
        "sku_id": sku_id,
        "model_id": model,
        "role": "output",
        "currency": "credits",
        "unit": "image",
        "price": 1,
        "official_price": 2,
        "effective_at": "2026-01-01T00:00:00Z",
        "source_url": "https://evolink.example/pricing",
    }
    row.update(overrides)
    return row


def model_row(model: str, lifecycle: str = "active", **overrides: Any) -> dict[str, Any]:
    """One model of `GET /v1/catalog/models` (PLATFORM.md's field list)."""
    row: dict[str, Any] = {
        "model_id": model,
        "display_name": model.upper(),
        "provider": "someone",
        "aliases": [],
        "capabilities": ["image"],
        "protocols": ["openai"],
        "lifecycle": lifecycle,
        "deprecates_at": None,
    }
    row.update(overrides)
    return row


def envelope_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message, "type": "invalid_request_error"}}
    )


def files_ok(data: Any) -> httpx.Response:
    return httpx.Response(
        200, json={"success": True, "code": 200, "msg": "ok", "data": data, "request_id": "req_1"}
    )


def files_fail(code: int, msg: str, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status,
        json={"success": False, "code": code, "msg": msg, "data": None, "request_id": "req_2"},
    )


class Lost(Exception):  # noqa: N818 - a fault, named as the tests say it
    """Raised by a hook: the work was done but the answer never reaches the client."""


@dataclass
class StoredThen:
    """An upload fault: the file is stored, then `response` is what the client gets."""

    response: httpx.Response


def _no_fault(*_args: object) -> None:
    return None


@dataclass
class Hostile:
    """The server's state and its hooks. Call it with an `httpx.Request`."""

    now: Callable[[], float] = lambda: 1_767_225_600.0
    models: list[dict[str, Any]] = field(default_factory=list)
    prices: list[dict[str, Any]] = field(default_factory=list)
    catalog_etag: str | None = 'W/"cat-1"'
    pricing_etag: str | None = '"price-1"'
    # Return a Response to answer instead of the catalog / pricing (a fault), or None.
    catalog_fault: Callable[[httpx.Request], httpx.Response | None] = lambda _r: None
    pricing_fault: Callable[[httpx.Request], httpx.Response | None] = lambda _r: None
    balance_body: dict[str, Any] | None = None
    # Credits a create reserves, from its body; `create_fault` may answer instead.
    reserve: Callable[[dict[str, Any]], Decimal] = lambda body: Decimal(body.get("n") or 1)
    create_fault: Callable[[httpx.Request, dict[str, Any]], httpx.Response | None] = _no_fault
    task_seconds: float = 30.0
    result_base: str = "https://cdn.evolink.example"
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    creates: list[dict[str, Any]] = field(default_factory=list)
    committed: Decimal = Decimal(0)
    peak: Decimal = Decimal(0)
    committed_at_each_create: list[Decimal] = field(default_factory=list)
    list_tasks: Callable[[httpx.Request], httpx.Response] | None = None
    # Files API: what is stored, by id, and which idempotency key stored what.
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    file_keys: dict[str, str] = field(default_factory=dict)
    upload_fault: Callable[
        [httpx.Request, int], httpx.Response | StoredThen | type[Lost] | None
    ] = lambda _r, _n: None
    upload_expires_in: float = 72 * 3600.0
    file_list: Callable[[httpx.Request], httpx.Response] | None = None
    quota_body: dict[str, Any] | None = None
    log: list[httpx.Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Seconds (on `sleep`'s clock) an answer to a create takes to come back, after the
    # server has acted on it: so many creates can be in flight before any answer.
    create_latency: float = 0.0
    sleep: Callable[[float], Awaitable[None]] | None = None

    # --- plumbing ---------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.answer)

    async def answer(self, request: httpx.Request) -> httpx.Response:
        response = self(request)
        if self.create_latency and request.url.path.endswith("/generations"):
            assert self.sleep is not None
            await self.sleep(self.create_latency)
        return response

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.log.append(request)
            try:
                return self.route(request)
            except Lost:
                raise httpx.ReadError("connection reset by peer", request=request) from None

    def paths(self, method: str | None = None) -> list[str]:
        return [r.url.path for r in self.log if method is None or r.method == method]

    def count(self, path: str, method: str = "POST") -> int:
        return sum(1 for r in self.log if r.url.path == path and r.method == method)

    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/results/"):  # result files need no key, like a CDN
            return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
        if request.headers.get("authorization") != f"Bearer {SECRET}":
            return envelope_error(401, "unauthorized", f"Invalid API key {SECRET}")
        if path == "/v1/catalog/models":
            return self.catalog(request)
        if path == "/v1/catalog/pricing":
            return self.pricing(request)
        if path == "/v1/credits":
            return self.credits()
        if path in ("/v1/images/generations", "/v1/videos/generations", "/v1/audios/generations"):
            return self.create(request)
        if path == "/v1/tasks" and request.method == "GET":
            if self.list_tasks is None:
                return envelope_error(404, "not_found", "no listing here")
            return self.list_tasks(request)
        if path.startswith("/v1/tasks/") and request.method == "GET":
            return self.read(path.rsplit("/", 1)[1])
        if path.startswith("/api/v1/files/"):
            return self.files_api(request)
        return envelope_error(404, "not_found", f"no route {request.method} {path}")

    # --- control plane ------------------------------------------------------------
    def catalog(self, request: httpx.Request) -> httpx.Response:
        fault = self.catalog_fault(request)
        if fault is not None:
            return fault
        return self.revalidated(request, self.catalog_etag, {"meta": META, "models": self.models})

    def pricing(self, request: httpx.Request) -> httpx.Response:
        fault = self.pricing_fault(request)
        if fault is not None:
            return fault
        return self.revalidated(request, self.pricing_etag, {"meta": META, "prices": self.prices})

    @staticmethod
    def revalidated(request: httpx.Request, etag: str | None, body: Any) -> httpx.Response:
        if etag is not None and request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers={"etag": etag})  # no body, as HTTP says
        headers = {"etag": etag} if etag else {}
        return httpx.Response(200, json=body, headers=headers)

    def credits(self) -> httpx.Response:
        body = self.balance_body or {
            "success": True,
            "message": "",
            "data": {
                "token": {"remaining_credits": 1e6, "unlimited_credits": False, "used_credits": 0},
                "user": {"remaining_credits": 1e6, "used_credits": 0},
            },
        }
        return httpx.Response(200, json=body)

    # --- tasks ----------------------------------------------------------------------
    def create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        fault = self.create_fault(request, body)
        if fault is not None:
            return fault
        key = request.headers.get("idempotency-key")
        if key and key in self.keys:
            return httpx.Response(200, json=self.view(self.tasks[self.keys[key]]))
        reserved = self.reserve(body)
        task_id = f"task-unified-1767225600-{len(self.tasks):08d}"
        kind = request.url.path.split("/")[2][:-1]
        task = {
            "id": task_id,
            "body": body,
            "kind": kind,
            "reserved": reserved,
            "created": self.now(),
            "ends": self.now() + self.task_seconds,
        }
        self.tasks[task_id] = task
        if key:
            self.keys[key] = task_id
        self.creates.append(body)
        self.committed += reserved
        self.committed_at_each_create.append(self.committed)
        self.peak = max(self.peak, self.committed)
        return httpx.Response(200, json=self.view(task))

    def view(self, task: dict[str, Any]) -> dict[str, Any]:
        done = self.now() >= task["ends"]
        elapsed = self.now() - task["created"]
        body: dict[str, Any] = {
            "created": int(task["created"]),
            "id": task["id"],
            "model": task["body"].get("model"),
            "object": f"{task['kind']}.generation.task",
            "progress": 100 if done else min(99, int(100 * elapsed / self.task_seconds)),
            "status": "completed" if done else ("processing" if elapsed > 0 else "pending"),
            "task_info": {"can_cancel": not done, "estimated_time": int(self.task_seconds)},
            "type": task["kind"],
            "usage": {
                "billing_rule": "per_call",
                "credits_reserved": float(task["reserved"]),
                "user_group": "default",
            },
            "a_field_from_next_year": {"harmless": True},
        }
        if done:
            n = int(task["body"].get("n") or 1)
            body["results"] = [f"{self.result_base}/results/{task['id']}/{i}.png" for i in range(n)]
        return body

    def read(self, task_id: str) -> httpx.Response:
        task = self.tasks.get(task_id)
        if task is None:
            return envelope_error(404, "task_not_found", "no such task")
        return httpx.Response(200, json=self.view(task))

    # --- files API --------------------------------------------------------------------
    def files_api(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/api/v1/files/upload/") and request.method == "POST":
            return self.upload(request)
        if path == "/api/v1/files/list" and request.method == "GET":
            if self.file_list is not None:
                return self.file_list(request)
            files = sorted(self.files.values(), key=lambda f: f["file_id"])
            return files_ok({"files": files, "total": len(files), "page": 1, "page_size": 20})
        if path == "/api/v1/files/quota" and request.method == "GET":
            data = self.quota_body or {
                "user_group": "default",
                "used_files": len(self.files),
                "max_files": 2000,
                "remain_files": 2000 - len(self.files),
                "is_custom": False,
                "quota_reason": "",
            }
            return files_ok(data)
        if request.method == "DELETE":
            file_id = path.removeprefix("/api/v1/files/")
            if self.files.pop(file_id, None) is None:
                return files_fail(404, f"file {file_id} not found", status=404)
            return files_ok(None)
        return files_fail(404, "no such route", status=404)

    def upload(self, request: httpx.Request) -> httpx.Response:
        attempt = sum(1 for r in self.log if r.url.path.startswith("/api/v1/files/upload/"))
        key = request.headers.get("idempotency-key")
        if key and key in self.file_keys:
            # An idempotent server answers a repeat with what the first one stored.
            return files_ok(self.files[self.file_keys[key]])
        fault = self.upload_fault(request, attempt)
        if isinstance(fault, httpx.Response):
            return fault
        file_id = f"file_{len(self.files) + 1:04d}"
        now = self.now()
        stored = {
            "file_id": file_id,
            "file_name": f"{file_id}.png",
            "original_name": "upload.png",
            "file_size": len(request.content),
            "mime_type": "image/png",
            "upload_path": "images",
            "file_url": f"https://files.evolink.example/images/{file_id}.png",
            "download_url": f"https://files.evolink.example/api/v1/files/download/{file_id}",
            "upload_time": _iso(now),
            "expires_at": _iso(now + self.upload_expires_in),
        }
        self.files[file_id] = stored
        if key:
            self.file_keys[key] = file_id
        if fault is Lost:
            raise Lost
        if isinstance(fault, StoredThen):
            return fault.response
        return files_ok(stored)


def _iso(ts: float) -> str:
    import datetime as dt  # noqa: PLC0415 - local: only timestamps need it

    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat()


class AsgiServer:
    """`Hostile` served over real HTTP on 127.0.0.1 (for the CLI, which takes a URL)."""

    def __init__(self, hostile: Hostile) -> None:
        self.hostile = hostile
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode()
        url = f"http://127.0.0.1:{self.port}{scope['path']}" + (f"?{query}" if query else "")
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        request = httpx.Request(scope["method"], url, headers=headers, content=body)
        try:
            response = self.hostile(request)
        except httpx.ReadError:
            return  # the answer is lost: close without one
        payload = response.content
        out_headers = [
            (k.encode(), v.encode())
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding")
        ]
        out_headers.append((b"content-length", str(len(payload)).encode()))
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": out_headers}
        )
        await send({"type": "http.response.body", "body": payload})

    def __enter__(self) -> AsgiServer:
        import socket  # noqa: PLC0415

        import uvicorn  # noqa: PLC0415

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="error", lifespan="off", interface="asgi3")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[sock])), daemon=True
        )
        self._thread.start()
        while not self._server.started:
            threading.Event().wait(0.01)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        assert self._thread is not None
        self._thread.join(timeout=5)
