"""An independent fake Evolink task server for the attack suite (not evolink.testing.Simulator).

It runs on the same `VirtualClock` as the client, so tasks take virtual time. Knobs:
durations (a function of the create's ordinal), progress shapes, estimate behaviours,
failures per create, request latency, the batch-read endpoint on or off. Every read is
logged with its virtual send and answer times, and reads of one task in flight at once
are counted.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

RESERVED = Decimal("2.5")

PROGRESS_SHAPES = ("linear", "steps", "none", "slowfast", "garbage")
ESTIMATES = ("honest", "double", "half", "missing", "noisy", "garbage")


@dataclass
class Read:
    task_id: str
    sent: float  # monotonic, virtual
    answered: float
    status: str
    batched: bool


@dataclass
class TaskRec:
    id: str
    ordinal: int
    created: float  # monotonic, virtual
    duration: float
    fail_code: str | None
    reserved: Decimal
    reads: list[Read] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    @property
    def ends(self) -> float:
        return self.created + self.duration

    @property
    def seen_done(self) -> float | None:
        for read in self.reads:
            if read.status in {"completed", "failed"}:
                return read.answered
        return None


def _garbage(rng: random.Random) -> Any:
    return rng.choice(
        [-7, 0, -0.0, 1e12, "soon", None, [], {"a": 1}, 2**70, float("nan"), float("inf")]
    )


class FakeServer:
    def __init__(
        self,
        clock: Any,
        *,
        durations: Callable[[int], float] | None = None,
        progress: str = "linear",
        estimate: str = "honest",
        fail: Callable[[int], str | None] | None = None,
        batch_endpoint: bool = False,
        latency: float = 0.0,
        seed: int = 14,
        model: str = "gpt-image-2",
    ) -> None:
        self.clock = clock
        self.rng = random.Random(seed)
        self.durations = durations or (lambda _i: 2.0 + 4.0 * self.rng.random())
        self.progress = progress
        self.estimate = estimate
        self.fail = fail or (lambda _i: None)
        self.batch_endpoint = batch_endpoint
        self.latency = latency
        self.model = model
        self.tasks: dict[str, TaskRec] = {}
        self.order: list[TaskRec] = []
        self.requests: list[tuple[str, str, float]] = []
        self.batch_requests = 0
        self.get_requests = 0
        self.creates = 0

    # -- knobs seen by tests ---------------------------------------------------------------

    def transport(self) -> httpx.AsyncBaseTransport:
        return _Transport(self)

    @property
    def reserved(self) -> Decimal:
        return sum((t.reserved for t in self.order), Decimal(0))

    def reads_of(self, task_id: str) -> list[Read]:
        return self.tasks[task_id].reads

    # -- answers -----------------------------------------------------------------------------

    def _status(self, rec: TaskRec, now: float) -> str:
        age = now - rec.created
        if age >= rec.duration:
            return "failed" if rec.fail_code else "completed"
        return "pending" if age < 0.3 else "processing"

    def _progress(self, rec: TaskRec, now: float) -> Any:
        frac = min(max((now - rec.created) / rec.duration, 0.0), 1.0)
        if frac >= 1.0:
            return 100
        shape = self.progress
        if shape == "linear":
            return int(100 * frac)
        if shape == "steps":
            return int(frac * 4) * 25
        if shape == "none":
            return 0
        if shape == "slowfast":
            return int(100 * frac**3)
        return _garbage(self.rng)

    def _estimated(self, rec: TaskRec) -> Any:
        kind = self.estimate
        if kind == "honest":
            return max(1, round(rec.duration))
        if kind == "double":
            return max(1, round(2 * rec.duration))
        if kind == "half":
            return max(1, round(rec.duration / 2))
        if kind == "noisy":
            return max(1, round(rec.duration * math.exp(self.rng.gauss(0, 0.5))))
        if kind == "missing":
            return None
        return _garbage(self.rng)

    def _body(self, rec: TaskRec, now: float) -> dict[str, Any]:
        status = self._status(rec, now)
        body: dict[str, Any] = {
            "created": int(self.clock.time() - (now - rec.created)),
            "id": rec.id,
            "model": self.model,
            "object": "image.generation.task",
            "progress": self._progress(rec, now) if status != "completed" else 100,
            "status": status,
            "type": "image",
            "usage": {
                "billing_rule": "per_call",
                "credits_reserved": float(rec.reserved),
                "user_group": "default",
            },
        }
        est = self._estimated(rec)
        if self.estimate != "missing":
            body["task_info"] = {"can_cancel": True, "estimated_time": est}
        if status == "completed":
            body["results"] = [f"https://cdn.example/{rec.id}/0.png"]
        if status == "failed":
            body["error"] = {"code": rec.fail_code, "message": "boom", "type": "task_error"}
        return body

    def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
        now = self.clock.monotonic()
        ordinal = self.creates
        self.creates += 1
        task_id = f"task-unified-{int(self.clock.time())}-{ordinal:08d}"
        rec = TaskRec(
            id=task_id,
            ordinal=ordinal,
            created=now,
            duration=float(self.durations(ordinal)),
            fail_code=self.fail(ordinal),
            reserved=RESERVED,
        )
        if body.get("model"):
            self.model = body["model"]
        self.tasks[task_id] = rec
        self.order.append(rec)
        return 200, self._body(rec, now)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        method = request.method
        sent = self.clock.monotonic()
        self.requests.append((method, path, sent))
        if method == "POST" and path == "/v1/images/generations":
            await self._pause()
            status, payload = self._create(json.loads(request.content or b"{}"))
            await self._pause()
            return _json(status, payload)
        if method == "GET" and path.startswith("/v1/tasks/") and path.count("/") == 3:
            task_id = path.rsplit("/", 1)[1]
            rec = self.tasks.get(task_id)
            if rec is None:
                return _json(404, _err("task_not_found", "invalid_request_error"))
            self.get_requests += 1
            return await self._read([rec], sent, batched=False)
        if method == "POST" and path == "/v1/tasks/batch":
            if not self.batch_endpoint:
                return _json(404, _err("not_found", "invalid_request_error"))
            self.batch_requests += 1
            ids = json.loads(request.content or b"{}").get("task_ids", [])
            recs = [self.tasks[i] for i in ids if i in self.tasks]
            return await self._read(recs, sent, batched=True)
        return _json(404, _err("not_found", "invalid_request_error"))

    async def _pause(self) -> None:
        if self.latency > 0:
            await self.clock.sleep(self.latency / 2)

    async def _read(self, recs: list[TaskRec], sent: float, *, batched: bool) -> httpx.Response:
        for rec in recs:
            rec.in_flight += 1
            rec.max_in_flight = max(rec.max_in_flight, rec.in_flight)
        try:
            await self._pause()
            now = self.clock.monotonic()
            bodies = [self._body(rec, now) for rec in recs]
            await self._pause()
        finally:
            for rec in recs:
                rec.in_flight -= 1
        answered = self.clock.monotonic()
        for rec, body in zip(recs, bodies, strict=True):
            rec.reads.append(Read(rec.id, sent, answered, body["status"], batched))
        if batched:
            return _json(200, {"data": bodies})
        return _json(200, bodies[0])


def _err(code: str, kind: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": code, "type": kind}}


def _json(status: int, payload: Any) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
    )


class _Transport(httpx.AsyncBaseTransport):
    def __init__(self, server: FakeServer) -> None:
        self.server = server

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return await self.server.handle(request)
