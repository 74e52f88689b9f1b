"""A fake Evolink of our own on a virtual clock: creates, GETs, batch reads, faults.

Every request is logged as (virtual time, method, path, ids, status) so that two runs of
the same scenario (old code, new code) can be compared request by request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import attrs
import httpx

API = "https://api.evolink.test"
MODEL = "gpt-4o-image"

Fault = Callable[["FakeServer", str, str, tuple[str, ...], float], httpx.Response | None]


@attrs.define
class FakeTask:
    id: str
    index: int
    created: float  # monotonic
    duration: float
    estimate: int | None
    callback_url: str | None = None


def _linear(elapsed: float, duration: float) -> int:
    if not math.isfinite(duration):
        return min(95, int(elapsed / 10))
    return max(0, min(99, int(100 * elapsed / duration)))


@attrs.define(eq=False)
class FakeServer:
    clock: Any
    #: Seconds each task (by creation index) runs; inf: never ends.
    duration: Callable[[int], float] = lambda _i: 20.0
    #: estimated_time reported (by index); None: missing.
    estimate: Callable[[int], int | None] = lambda _i: None
    #: "linear", "none" (always 0), "share" (share of the truth).
    progress: str = "linear"
    share: float = 0.4
    batch: bool = True
    latency: float = 0.0
    fault: Fault | None = None
    #: How long a 429 it sends may brake the client's requests (for the checks).
    retry_after: float = 0.0
    tasks: dict[str, FakeTask] = attrs.field(factory=dict)
    log: list[tuple[float, str, str, tuple[str, ...], int]] = attrs.field(factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def now(self) -> float:
        return self.clock.monotonic()

    def end_of(self, task_id: str) -> float:
        task = self.tasks[task_id]
        return task.created + task.duration

    def view(self, task: FakeTask) -> dict[str, Any]:
        elapsed = self.now() - task.created
        done = elapsed >= task.duration
        if self.progress == "none":
            progress = 0
        elif self.progress == "share":
            progress = int(self.share * _linear(elapsed, task.duration))
        else:
            progress = _linear(elapsed, task.duration)
        info: dict[str, Any] = {"can_cancel": not done}
        if not done and task.estimate is not None:
            info["estimated_time"] = task.estimate
        body: dict[str, Any] = {
            "created": int(self.clock.time() - elapsed),
            "id": task.id,
            "model": MODEL,
            "object": "image.generation.task",
            "progress": 100 if done else progress,
            "status": "completed" if done else ("processing" if elapsed > 0 else "pending"),
            "task_info": info,
            "type": "image",
            "usage": {"billing_rule": "per_call", "credits_reserved": 1.0, "user_group": "x"},
        }
        if done:
            body["results"] = [f"{API}/r/{task.id}.png"]
        return body

    async def handle(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        body = json.loads(request.content) if request.content else {}
        ids: tuple[str, ...] = ()
        if method == "POST" and path == "/v1/tasks/batch":
            ids = tuple(body.get("task_ids", ()))
        elif method == "GET" and path.startswith("/v1/tasks/"):
            ids = (path.rsplit("/", 1)[1],)
        if self.latency:
            await self.clock.sleep(self.latency)
        answer = self.answer(method, path, body, ids)
        self.log.append((round(self.now(), 6), method, path, ids, answer.status_code))
        return answer

    def answer(self, method: str, path: str, body: Any, ids: tuple[str, ...]) -> httpx.Response:
        now = self.now()
        if self.fault is not None:
            refused = self.fault(self, method, path, ids, now)
            if refused is not None:
                return refused
        if method == "POST" and path == "/v1/tasks/batch":
            if not self.batch:
                return _error(404, "not_found")
            data = [self.view(self.tasks[i]) for i in ids if i in self.tasks]
            return httpx.Response(200, json={"data": data})
        if method == "GET" and path.startswith("/v1/tasks/"):
            task = self.tasks.get(ids[0])
            if task is None:
                return _error(404, "not_found")
            return httpx.Response(200, json=self.view(task))
        if method == "POST":
            index = len(self.tasks)
            task_id = f"task-unified-{index:05d}-fake"
            task = FakeTask(
                task_id,
                index,
                now,
                self.duration(index),
                self.estimate(index),
                body.get("callback_url"),
            )
            self.tasks[task_id] = task
            return httpx.Response(200, json=self.view(task))
        return _error(404, "not_found")

    def reads(self) -> list[tuple[float, str, tuple[str, ...], int]]:
        """(time, method, ids, status) of every read request."""
        return [(t, m, ids, s) for t, m, p, ids, s in self.log if p.startswith("/v1/tasks/")]

    def read_times(self, task_id: str) -> list[float]:
        """When each answered read of `task_id` was answered."""
        return [t for t, _m, ids, s in self.reads() if task_id in ids and s == 200]


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"code": code, "message": code, "type": "error"}},
        headers=headers or {},
    )


def rate_limited(retry_after: float) -> httpx.Response:
    return _error(429, "rate_limit_exceeded", {"Retry-After": f"{retry_after:g}"})


def server_error() -> httpx.Response:
    return _error(503, "service_unavailable")
