"""A small scripted Evolink server for the batch tests, at the httpx transport.

Deliberately simpler than `evolink.testing.Simulator`: every behaviour a test needs is a
plain attribute it sets, and prompts script their own task's fate (`"fail:service_error"`,
`"cancel"`, `"partial"`, `"slow"`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import httpx

from evolink.testing import VirtualClock


@attrs.define
class FakeTask:
    id: str
    prompt: str
    n: int
    created: float
    duration: float
    key: str | None


@attrs.define(slots=False)  # tests may swap `view`
class FakeEvolink:
    clock: VirtualClock
    duration: float = 4.0
    price: Decimal = Decimal("2.5")
    balance: Decimal | None = None
    batch_endpoint: bool = True
    # The status a server without the batch endpoint answers it with.
    no_batch_status: int = 404
    # Statuses to answer the next creates with before serving them (e.g. [429, 500]).
    create_script: list[int] = attrs.field(factory=list)
    # For a scripted 5xx: make the task anyway (a lost answer) before failing.
    create_anyway: bool = False
    retry_after: str | None = None
    # Statuses to answer the next reads (GET or batch) with before serving them.
    read_script: list[int] = attrs.field(factory=list)
    # Bodies to answer the next batch reads with (status 200), before serving them.
    batch_bodies: list[Any] = attrs.field(factory=list)
    # Creates to refuse with a connection error (nothing reaches the server).
    refuse_connections: int = 0
    tasks: dict[str, FakeTask] = attrs.field(factory=dict)
    by_key: dict[str, str] = attrs.field(factory=dict)
    requests: list[tuple[str, str, Any]] = attrs.field(factory=list)
    in_flight_peak: int = 0
    on_request: Callable[[httpx.Request], None] | None = None
    # The body to answer `GET /v1/credits` with (None: the route is unknown, 404).
    credits: Any = None

    # -- what tests read ------------------------------------------------------------------

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p.startswith(prefix))

    def create_keys(self) -> Counter[str]:
        return Counter(
            body["_key"] for m, p, body in self.requests if p == "/v1/images/generations"
        )

    def unfinished(self) -> int:
        now = self.clock.time()
        return sum(1 for t in self.tasks.values() if t.created + t.duration > now)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- the server -----------------------------------------------------------------------

    def view(self, task: FakeTask) -> dict[str, Any]:
        elapsed = self.clock.time() - task.created
        out: dict[str, Any] = {
            "id": task.id,
            "created": int(task.created),
            "model": "gpt-image-2",
            "object": "image.generation.task",
            "type": "image",
            "task_info": {"can_cancel": True, "estimated_time": round(task.duration)},
            "usage": {
                "billing_rule": "per_call",
                "credits_reserved": float(self.price * task.n),
                "user_group": "default",
            },
        }
        if elapsed < task.duration:
            out.update(status="processing", progress=int(100 * elapsed / task.duration))
            return out
        out["progress"] = 100
        fate = task.prompt.split(":", 1)
        if fate[0] == "fail":
            out["status"] = "failed"
            out["error"] = {"code": fate[1], "message": "it failed", "type": "task_error"}
        elif fate[0] == "cancel":
            out["status"] = "cancelled"
        else:
            out["status"] = "completed"
            made = 1 if fate[0] == "partial" else task.n
            out["results"] = [f"https://img.test/{task.id}/{i}.png" for i in range(made)]
        return out

    def _error(self, status: int, code: str) -> httpx.Response:
        headers = {"Retry-After": self.retry_after} if self.retry_after and status == 429 else {}
        body = {"error": {"code": code, "message": code, "type": "test_error"}}
        return httpx.Response(status, json=body, headers=headers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.on_request is not None:
            self.on_request(request)
        path = request.url.path
        body = json.loads(request.content) if request.content else None
        if isinstance(body, dict):
            body["_key"] = request.headers.get("Idempotency-Key")
        self.requests.append((request.method, path, body))
        if path.startswith("/v1/tasks") and self.read_script:
            status = self.read_script.pop(0)
            if status == 200:
                return httpx.Response(200, content=b"{not json")
            return self._error(status, "scripted")
        if request.method == "POST" and path == "/v1/images/generations":
            if self.refuse_connections:
                self.refuse_connections -= 1
                raise httpx.ConnectError("connection refused", request=request)
            return self._create(body or {})
        if request.method == "POST" and path == "/v1/tasks/batch":
            if not self.batch_endpoint:
                return self._error(self.no_batch_status, "not_found")
            if self.batch_bodies:
                return httpx.Response(200, json=self.batch_bodies.pop(0))
            ids = (body or {})["task_ids"]
            assert len(ids) <= 50
            return httpx.Response(
                200, json={"data": [self.view(self.tasks[i]) for i in ids if i in self.tasks]}
            )
        if request.method == "GET" and path.startswith("/v1/tasks/"):
            task = self.tasks.get(path.rsplit("/", 1)[1])
            if task is None:
                return self._error(404, "task_not_found")
            return httpx.Response(200, json=self.view(task))
        if request.method == "GET" and path == "/v1/credits" and self.credits is not None:
            return httpx.Response(200, json=self.credits)
        return self._error(404, "not_found")

    def _create(self, body: dict[str, Any]) -> httpx.Response:
        key = body["_key"]
        if key in self.by_key:
            task = self.tasks[self.by_key[key]]
            return httpx.Response(
                200, json=self.view(task), headers={"Idempotency-Replayed": "true"}
            )
        scripted = self.create_script.pop(0) if self.create_script else None
        if scripted is not None and not (scripted >= 500 and self.create_anyway):
            code = {429: "rate_limit_exceeded", 402: "insufficient_quota"}.get(scripted, "boom")
            return self._error(scripted, code)
        n = body.get("n", 1)
        cost = self.price * n
        if self.balance is not None:
            if cost > self.balance:
                return self._error(402, "insufficient_quota")
            self.balance -= cost
        task_id = f"task-unified-{len(self.tasks) + 1:06d}"
        duration = self.duration * (3 if body["prompt"] == "slow" else 1)
        task = FakeTask(task_id, body["prompt"], n, self.clock.time(), duration, key)
        self.tasks[task_id] = task
        self.by_key[key] = task_id
        self.in_flight_peak = max(self.in_flight_peak, self.unfinished())
        if scripted is not None:
            return self._error(scripted, "internal_error")  # made, but the answer is lost
        return httpx.Response(200, json=self.view(task))
