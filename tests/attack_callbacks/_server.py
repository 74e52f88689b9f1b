"""A fake Evolink written for these tests: every answer can be held, delayed, stale or reordered.

It is an `httpx.AsyncBaseTransport` on a `VirtualClock`: a task's state is a function of the
clock (pending, processing, then its end at `created + duration`), and each request takes
its state when it *arrives* (a snapshot) and answers it after its latency (a sleep on the
clock), so an answer can be overtaken by the task's end and by its callback, as a loaded
server or network does.

Knobs, all settable per test:

- `fate(index, body) -> Fate`: each created task's duration, end and `estimated_time`;
- `create_latency(index) -> seconds`: how long a create's answer takes (the task is made,
  and `on_create` told, when the request arrives);
- `read_latency(read) -> seconds`: per read (a GET, or a batch POST), given the `Read`;
- `stale_by(read) -> seconds`: the read answers the state of that many seconds ago;
- `read_status(read) -> int | None`: answer an error status instead (the key quoted back);
- `batch_endpoint`, `shuffle_batch`, `drop_from_batch(ids) -> ids left out`.

Every request is recorded (`reads`, `creates`, `other`), and `peak_in_flight` keeps, per
task id, the most reads of it in flight at once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from evolink.testing import VirtualClock

API = "https://api.evolink.ai"
#: The key the tests use: it must never show in a log line or an error.
KEY = "sk-evo-attackcallbacks7Q3xZ9SECRETKEY"
PENDING_FOR = 0.5  # a task is `pending` this long, then `processing`


@dataclass
class Fate:
    """How a created task will go."""

    duration: float | None = 30.0  # None: runs until `end_now` (or for ever)
    final: str = "completed"  # completed | failed | cancelled
    estimated_time: int | None = 60
    progress: bool = False  # linear progress while running (else 0 until the end)
    error_code: str = "content_policy_violation"  # a failed task's code


@dataclass
class FakeTask:
    id: str
    index: int
    created_at: float  # clock.monotonic()
    created_stamp: int  # clock.time(), whole seconds (as the API's `created`)
    fate: Fate
    body: dict[str, Any]
    ended_at: float | None = None  # set from the fate, or by `end_now`

    def __post_init__(self) -> None:
        if self.fate.duration is not None:
            self.ended_at = self.created_at + self.fate.duration

    def status_at(self, t: float) -> str:
        if self.ended_at is not None and t >= self.ended_at:
            return self.fate.final
        if t < self.created_at + PENDING_FOR:
            return "pending"
        return "processing"

    def results(self) -> list[str]:
        return [f"https://files.example/{self.id}/{i}.png" for i in range(self.n)]

    @property
    def n(self) -> int:
        n = self.body.get("n", 1)
        return n if isinstance(n, int) and n > 0 else 1

    def payload_at(self, t: float) -> dict[str, Any]:
        """The task as a read at time `t` (clock.monotonic()) answers it."""
        status = self.status_at(t)
        task_info: dict[str, Any] = {"can_cancel": status in ("pending", "processing")}
        if self.fate.estimated_time is not None:
            task_info["estimated_time"] = self.fate.estimated_time
        progress = 0
        if status == "completed":
            progress = 100
        elif status == "processing" and self.fate.progress and self.fate.duration:
            progress = min(99, int(100 * (t - self.created_at) / self.fate.duration))
        out: dict[str, Any] = {
            "created": self.created_stamp,
            "id": self.id,
            "model": self.body.get("model", "gpt-image-2"),
            "object": "image.generation.task",
            "progress": progress,
            "status": status,
            "task_info": task_info,
            "type": "image",
            "usage": {
                "billing_rule": "per_call",
                "credits_reserved": 2.5 * self.n,
                "user_group": "default",
            },
        }
        if status == "completed":
            out["results"] = self.results()
        if status == "failed":
            out["error"] = {
                "code": self.fate.error_code,
                "message": "the prompt was refused",
                "type": "task_error",
            }
        return out


@dataclass
class Read:
    """One read request: a GET of one task or a batch POST of several."""

    kind: str  # "get" | "batch"
    ids: list[str]
    sent: float  # clock.monotonic() on arrival
    answered: float | None = None
    statuses: dict[str, str] = field(default_factory=dict)
    http_status: int = 200


def _const(value: float) -> Callable[..., float]:
    return lambda *_: value


class FakeEvolink(httpx.AsyncBaseTransport):
    def __init__(
        self,
        clock: VirtualClock,
        *,
        fate: Callable[[int, dict[str, Any]], Fate] | Fate | None = None,
        create_latency: Callable[[int], float] | float = 0.05,
        read_latency: Callable[[Read], float] | float = 0.05,
        stale_by: Callable[[Read], float] | float = 0.0,
        read_status: Callable[[Read], int | None] | None = None,
        batch_endpoint: bool = True,
        shuffle_batch: bool = False,
        drop_from_batch: Callable[[list[str]], set[str]] | None = None,
        seed: int = 0,
    ) -> None:
        self.clock = clock
        if fate is None:
            fate = Fate()
        self.fate = fate if callable(fate) else (lambda *_, _f=fate: _f)
        self.create_latency = create_latency if callable(create_latency) else _const(create_latency)
        self.read_latency = read_latency if callable(read_latency) else _const(read_latency)
        self.stale_by = stale_by if callable(stale_by) else _const(stale_by)
        self.read_status = read_status
        self.batch_endpoint = batch_endpoint
        self.shuffle_batch = shuffle_batch
        self.drop_from_batch = drop_from_batch
        self.rng = random.Random(seed)
        self.tasks: dict[str, FakeTask] = {}
        self.order: list[str] = []
        self.reads: list[Read] = []
        self.creates: list[tuple[float, str]] = []
        self.other: list[tuple[str, str]] = []
        self.on_create: list[Callable[[FakeTask], None]] = []
        self.in_flight: dict[str, int] = {}
        self.peak_in_flight: dict[str, int] = {}
        self.bad_auth = 0

    # -- what the tests ask -------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.monotonic()

    def task(self, task_id: str) -> FakeTask:
        return self.tasks[task_id]

    def id_of(self, prompt: str) -> str:
        """The id of the task made for `prompt` (creates may reach the server in any order)."""
        (task_id,) = [t.id for t in self.tasks.values() if t.body.get("prompt") == prompt]
        return task_id

    def truth(self, task_id: str) -> dict[str, Any]:
        """The task as it is now."""
        return self.tasks[task_id].payload_at(self.now())

    def final_body(self, task_id: str) -> dict[str, Any]:
        """The body a genuine callback carries: the task at its end."""
        task = self.tasks[task_id]
        assert task.ended_at is not None, "the task has no end yet"
        return task.payload_at(task.ended_at)

    def lie(self, task_id: str, status: str, **extra: Any) -> dict[str, Any]:
        """A callback body that says `status` whatever the task is."""
        task = self.tasks[task_id]
        body = task.payload_at(self.now())
        body["status"] = status
        if status == "completed":
            body["progress"] = 100
            body["results"] = [f"https://evil.example/{task_id}/forged.png"]
        if status == "failed":
            body["error"] = {"code": "service_error", "message": "forged", "type": "task_error"}
        body.update(extra)
        return body

    def end_now(self, task_id: str, final: str = "completed") -> None:
        task = self.tasks[task_id]
        task.fate = Fate(
            duration=self.now() - task.created_at,
            final=final,
            estimated_time=task.fate.estimated_time,
            progress=task.fate.progress,
            error_code=task.fate.error_code,
        )
        task.ended_at = self.now()

    def reads_of(self, task_id: str, since: float = float("-inf")) -> list[Read]:
        """Reads (GETs and batch POSTs) that asked for `task_id`, sent at or after `since`."""
        return [r for r in self.reads if task_id in r.ids and r.sent >= since]

    def read_requests(self, since: float = float("-inf")) -> list[Read]:
        return [r for r in self.reads if r.sent >= since]

    # -- the transport ------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        path = request.url.path
        if auth != f"Bearer {KEY}":
            self.bad_auth += 1
            return self._error(401, "unauthorized", "authentication_error", "bad key")
        body: Any = None
        content = await request.aread()
        if content:
            try:
                body = json.loads(content)
            except ValueError:
                body = None
        if request.method == "POST" and path.endswith("/generations"):
            return await self._create(body if isinstance(body, dict) else {})
        if request.method == "GET" and path.startswith("/v1/tasks/"):
            return await self._read("get", [path.removeprefix("/v1/tasks/")])
        if request.method == "POST" and path == "/v1/tasks/batch":
            if not self.batch_endpoint:
                self.other.append((request.method, path))
                return self._error(404, "not_found", "invalid_request_error", "no such route")
            ids = body.get("task_ids") if isinstance(body, dict) else None
            if not isinstance(ids, list):
                return self._error(400, "invalid_request", "invalid_request_error", "task_ids")
            return await self._read("batch", [str(i) for i in ids])
        self.other.append((request.method, path))
        return self._error(404, "not_found", "invalid_request_error", "no such route")

    async def _create(self, body: dict[str, Any]) -> httpx.Response:
        index = len(self.order)
        stamp = int(self.clock.time())
        task_id = f"task-unified-{stamp}-{index:08d}"
        task = FakeTask(
            id=task_id,
            index=index,
            created_at=self.now(),
            created_stamp=stamp,
            fate=self.fate(index, body),
            body=body,
        )
        self.tasks[task_id] = task
        self.order.append(task_id)
        self.creates.append((self.now(), task_id))
        answer = task.payload_at(self.now())
        for hook in self.on_create:
            hook(task)
        await self.clock.sleep(self.create_latency(index))
        return httpx.Response(200, json=answer)

    async def _read(self, kind: str, ids: list[str]) -> httpx.Response:
        read = Read(kind=kind, ids=ids, sent=self.now())
        self.reads.append(read)
        for task_id in ids:
            self.in_flight[task_id] = self.in_flight.get(task_id, 0) + 1
            self.peak_in_flight[task_id] = max(
                self.peak_in_flight.get(task_id, 0), self.in_flight[task_id]
            )
        try:
            seen_at = self.now() - self.stale_by(read)
            snapshot = {i: self.tasks[i].payload_at(seen_at) for i in ids if i in self.tasks}
            status = self.read_status(read) if self.read_status is not None else None
            await self.clock.sleep(self.read_latency(read))
        finally:
            for task_id in ids:
                self.in_flight[task_id] -= 1
        read.answered = self.now()
        if status is not None:
            read.http_status = status
            # A hostile server quotes the key back in its error, body and header.
            response = self._error(
                status, "internal_error", "api_error", f"upstream broke for Bearer {KEY}"
            )
            response.headers["X-Request-Id"] = f"req-{KEY}"
            return response
        read.statuses = {i: t["status"] for i, t in snapshot.items()}
        if kind == "get":
            task_id = ids[0]
            if task_id not in snapshot:
                read.http_status = 404
                return self._error(
                    404, "task_not_found", "invalid_request_error", f"no such task for {KEY}"
                )
            return httpx.Response(200, json=snapshot[task_id])
        data = [snapshot[i] for i in ids if i in snapshot]
        if self.drop_from_batch is not None:
            dropped = self.drop_from_batch(ids)
            data = [t for t in data if t["id"] not in dropped]
            for i in dropped:
                read.statuses.pop(i, None)
        if self.shuffle_batch:
            self.rng.shuffle(data)
        return httpx.Response(200, json={"data": data})

    @staticmethod
    def _error(status: int, code: str, type_: str, message: str) -> httpx.Response:
        return httpx.Response(
            status, json={"error": {"code": code, "message": message, "type": type_}}
        )
