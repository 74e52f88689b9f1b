"""Hostile fakes of the Evolink API, written from SPEC.md and the issue, not from the SDK.

`FakeAPI` is an in-process fake (an `httpx.MockTransport` handler) whose tasks run on a
`VirtualClock`; every knob is a misbehaviour the issue names. `SocketFake` is the same idea
served over a real loopback socket in a thread, for the CLI and for real-time timeouts.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from evolink import AsyncEvolink, OutcomeKind
from evolink.testing import VirtualClock

API_KEY = "sk-evo-hostile-0123456789abcdefQUOTED"
OTHER_SECRET = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
BASE_URL = "https://api.evolink.ai"
CREATE_PATH = "/v1/images/generations"
BATCH_PATH = "/v1/tasks/batch"
TASKS_PREFIX = "/v1/tasks/"
# A fake stops a read storm by ending the task after this many reads of it.
STORM_BREAKER = 400
TERMINAL = {"completed", "failed", "cancelled"}


def error_body(code: str, message: str, type_: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": type_}}


@dataclass
class Recorded:
    method: str
    path: str
    raw_path: str
    query: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeTask:
    id: str
    index: int
    created_at: float
    created_unix: int
    duration: float
    estimated_time: Any
    credits_reserved: Any
    status_while_running: str
    progress: Callable[[float], Any]
    error: dict[str, Any] | None = None
    reads: int = 0

    def body(self, now: float) -> dict[str, Any]:
        elapsed = now - self.created_at
        out: dict[str, Any] = {
            "id": self.id,
            "object": "image.generation.task",
            "created": self.created_unix,
            "model": "gpt-4o-image",
            "type": "image",
            "task_info": {"can_cancel": True},
            "usage": {
                "billing_rule": "per_call",
                "credits_reserved": self.credits_reserved,
                "user_group": "default",
            },
        }
        if elapsed >= self.duration or self.reads > STORM_BREAKER:
            if self.error is not None:
                out.update(status="failed", progress=100, error=self.error)
            else:
                out.update(status="completed", progress=100, results=[result_url(self.id)])
        elif elapsed < 0.5:
            out.update(status="pending", progress=0)
        else:
            out.update(status=self.status_while_running, progress=self.progress(elapsed))
        return out


def result_url(task_id: str) -> str:
    return f"https://cdn.hostile.test/{urllib.parse.quote(task_id, safe='')}/0.png"


def linear(duration: float) -> Callable[[float], Any]:
    return lambda elapsed: min(99, int(100 * elapsed / duration))


@dataclass
class FakeAPI:
    """An Evolink API that misbehaves on request. Times are virtual seconds."""

    clock: VirtualClock
    duration: float = 3.0
    estimated_time: Any = 10
    credits_reserved: Any = 2.5
    task_credits_reserved: Any = None  # what reads say; default: the create's value
    status_while_running: str = "processing"
    progress: Callable[[float], Any] | None = None
    # "ok", "404", an int status with an error envelope, "envelope", "dict", or "nonjson".
    batch_mode: Any = "ok"
    ids: Callable[[int], str] | None = None
    durations: dict[int, float] = field(default_factory=dict)
    statuses: dict[int, str] = field(default_factory=dict)
    errors: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Creates with these indexes sleep (on the virtual clock) this long before answering.
    slow_creates: dict[int, float] = field(default_factory=dict)
    # Creates with these indexes answer this (status, body) instead of a task.
    refused_creates: dict[int, tuple[int, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    created_ids: list[str] = field(default_factory=list)
    foreign_reads: list[str] = field(default_factory=list)
    # (idempotency key, task id) of every create the fake answered with a task.
    keyed_creates: list[tuple[str, str]] = field(default_factory=list)
    # Called with a create's index just before its answer (with a task) is returned.
    before_create_answer: Callable[[int], None] | None = None
    creates: int = 0

    # -- what the tests count --------------------------------------------------------------
    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path == path)

    def reads_of(self, task_id: str) -> int:
        return self.tasks[task_id].reads

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, **kwargs: Any) -> AsyncEvolink:
        kwargs.setdefault("api_key", API_KEY)
        kwargs.setdefault("base_url", BASE_URL)
        return AsyncEvolink(transport=self.transport(), clock=self.clock, **kwargs)

    # -- the server ------------------------------------------------------------------------
    async def handle(self, request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path.decode("ascii", "replace")
        path = raw.split("?", 1)[0]
        try:
            body = json.loads(request.content) if request.content else None
        except ValueError:
            body = request.content
        self.requests.append(
            Recorded(
                method=request.method,
                path=request.url.path,
                raw_path=raw,
                query=request.url.query.decode("ascii", "replace"),
                headers=dict(request.headers),
                body=body,
            )
        )
        if request.method == "POST" and path == CREATE_PATH:
            before = len(self.created_ids)
            response = await self._create()
            if len(self.created_ids) > before:
                key = request.headers.get("idempotency-key", "")
                self.keyed_creates.append((key, self.created_ids[-1]))
                if self.before_create_answer is not None:
                    self.before_create_answer(len(self.created_ids) - 1)
            return response
        if request.method == "POST" and path == BATCH_PATH:
            return self._batch(body)
        if request.method == "GET" and path.startswith(TASKS_PREFIX):
            return self._read(urllib.parse.unquote(path[len(TASKS_PREFIX) :]))
        return json_response(404, error_body("not_found", "no such route", "invalid_request"))

    async def _create(self) -> httpx.Response:
        index = self.creates
        self.creates += 1
        if index in self.slow_creates:
            await self.clock.sleep(self.slow_creates[index])
        if index in self.refused_creates:
            status, body = self.refused_creates[index]
            return json_response(status, body)
        task_id = self.ids(index) if self.ids else f"task-unified-1767225600-h{index:05d}"
        if task_id not in self.tasks:
            self.tasks[task_id] = FakeTask(
                id=task_id,
                index=index,
                created_at=self.clock.monotonic(),
                created_unix=int(self.clock.time()),
                duration=self.durations.get(index, self.duration),
                estimated_time=self.estimated_time,
                credits_reserved=(
                    self.credits_reserved
                    if self.task_credits_reserved is None
                    else self.task_credits_reserved
                ),
                status_while_running=self.statuses.get(index, self.status_while_running),
                progress=self.progress or linear(self.durations.get(index, self.duration)),
                error=self.errors.get(index),
            )
        self.created_ids.append(task_id)
        task = self.tasks[task_id]
        answer = task.body(self.clock.monotonic())
        answer.update(status="pending", progress=0)
        answer.pop("results", None)
        answer["task_info"] = {"can_cancel": True, "estimated_time": self.estimated_time}
        answer["usage"]["credits_reserved"] = self.credits_reserved
        return json_response(200, answer)

    def _read(self, task_id: str) -> httpx.Response:
        task = self.tasks.get(task_id)
        if task is None:
            self.foreign_reads.append(task_id)
            return json_response(404, error_body("task_not_found", "no such task", "not_found"))
        task.reads += 1
        return json_response(200, task.body(self.clock.monotonic()))

    def _batch(self, body: Any) -> httpx.Response:
        mode = self.batch_mode
        if mode == "404":
            return json_response(404, error_body("not_found", "no such route", "invalid_request"))
        if isinstance(mode, int):
            return json_response(
                mode, error_body("batch_refused", "this key may not batch", "invalid_request_error")
            )
        if mode == "nonjson":
            return httpx.Response(
                200, content=b"<html><body>Gateway says hi</body></html>", headers=HTML
            )
        ids = body.get("task_ids", []) if isinstance(body, dict) else []
        found = []
        for task_id in ids:
            task = self.tasks.get(task_id)
            if task is not None:
                task.reads += 1
                found.append(task.body(self.clock.monotonic()))
        if mode == "envelope":
            return json_response(200, {"object": "list", "tasks": found})
        if mode == "dict":
            return json_response(200, {"data": {t["id"]: t for t in found}})
        return json_response(200, {"data": found})


HTML = {"content-type": "text/html"}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    # allow_nan: a hostile server sends NaN and Infinity as bare JSON tokens.
    content = json.dumps(body, allow_nan=True).encode()
    merged = {"content-type": "application/json", **(headers or {})}
    return httpx.Response(status, content=content, headers=merged)


async def run_batch(client: AsyncEvolink, entry: str, prompts: list[str], **options: Any) -> Any:
    """Run prompts through `generate_many` or through `client.batch()` and return the report."""
    if entry == "generate_many":
        return await client.images.generate_many(prompts, **options)
    async with client.batch(**options) as batch:
        await batch.submit_all(prompts)
    return batch.report()


ENTRIES = ["generate_many", "client.batch"]
VALID_KINDS = set(OutcomeKind)


# -- a fake over a real socket -------------------------------------------------------------


class SocketFake:
    """A threaded HTTP server on loopback; `app(handler, method, path, body)` answers."""

    def __init__(self, app: Callable[[SocketFake, Handler, str, str, Any], None]) -> None:
        self.app = app
        self.requests: list[Recorded] = []
        self.release = threading.Event()  # set at teardown: hanging handlers return
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {}
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self.server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"

    def count(self, method: str, path: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.method == method and r.path == path)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                msg = "the fake server never saw what the test waited for"
                raise AssertionError(msg)
            time.sleep(0.02)

    @contextmanager
    def serving(self) -> Iterator[SocketFake]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            thread.join(5)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:
        return

    def _handle(self) -> None:
        fake: SocketFake = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        path = self.path.split("?", 1)[0]
        with fake.lock:
            fake.requests.append(
                Recorded(
                    method=self.command,
                    path=urllib.parse.unquote(path),
                    raw_path=self.path,
                    query=self.path.partition("?")[2],
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
            )
        try:
            fake.app(fake, self, self.command, path, body)
        except (BrokenPipeError, ConnectionResetError):
            return

    do_GET = _handle  # noqa: N815 - the stdlib's names
    do_POST = _handle  # noqa: N815

    def send_json(self, status: int, body: Any) -> None:
        content = json.dumps(body).encode()
        self.send_bytes(status, content, "application/json")

    def send_bytes(self, status: int, content: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)
        self.wfile.flush()


def task_body(task_id: str, status: str, created: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": task_id,
        "object": "image.generation.task",
        "created": created,
        "model": "gpt-4o-image",
        "status": status,
        "progress": 100 if status in TERMINAL else 0,
        "type": "image",
        "task_info": {"can_cancel": True, "estimated_time": 10},
        "usage": {"billing_rule": "per_call", "credits_reserved": 2.5, "user_group": "default"},
    }
    body.update(extra)
    return body


class BigBody:
    """An async byte stream of `size` bytes of a JSON string, counting what was taken."""

    def __init__(self, size: int, chunk: int = 1 << 16) -> None:
        self.size = size
        self.chunk = b"x" * chunk
        self.head = (
            b'{"id": "task-unified-1767225600-big", "object": "image.generation.task", "p": "'
        )
        self.tail = b'"}'
        self.produced = 0
        self._stage = 0

    @property
    def total(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        await anyio.lowlevel.checkpoint()
        if self._stage == 0:
            self._stage = 1
            self.produced += len(self.head)
            return self.head
        if self._stage == 1:
            left = self.size - (self.produced - len(self.head))
            if left > 0:
                piece = self.chunk if left >= len(self.chunk) else self.chunk[:left]
                self.produced += len(piece)
                return piece
            self._stage = 2
            self.produced += len(self.tail)
            return self.tail
        raise StopAsyncIteration


async def timed_batch(
    client: AsyncEvolink, clock: VirtualClock, entry: str, prompts: list[str], **options: Any
) -> tuple[Any, dict[int, float]]:
    """Run a batch; return its report and, per input, virtual seconds from the create's
    answer to the outcome (measured with the hooks: `Outcome.elapsed` is not relied on)."""
    created_at: dict[int, float] = {}
    delays: dict[int, float] = {}

    def on_created(index: int, _task: Any) -> None:
        created_at.setdefault(index, clock.monotonic())

    def on_outcome(outcome: Any) -> None:
        if outcome.index in created_at:
            delays[outcome.index] = clock.monotonic() - created_at[outcome.index]

    report = await run_batch(
        client, entry, prompts, on_created=on_created, on_outcome=on_outcome, **options
    )
    return report, delays
