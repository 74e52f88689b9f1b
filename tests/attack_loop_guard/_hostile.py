"""A hand-written hostile Evolink server (httpx.MockTransport) on a VirtualClock.

Each task is given a `behaviour(age) -> (status, progress, estimated_time or None)` so a test
can say anything it likes on each read: estimates that move, progress that lies, tasks that
never end. Every read's time is recorded per task."""

from __future__ import annotations

import json
import math
import secrets
from collections import defaultdict
from collections.abc import Callable

import httpx

from evolink.testing import VirtualClock

Behaviour = Callable[[float], "tuple[str, int, int | None]"]


def ends_at(
    duration: float, progress: Callable[[float], int], estimate: Callable[[float], int | None]
) -> Behaviour:
    """A task that completes at `duration`; before that `progress(age)` and `estimate(age)`."""

    def behave(age: float) -> tuple[str, int, int | None]:
        if age >= duration:
            return "completed", 100, None
        return ("pending" if age < 0.5 else "processing"), progress(age), estimate(age)

    return behave


class HostileServer:
    def __init__(
        self,
        clock: VirtualClock,
        behaviours: Callable[[int], Behaviour],
        batch_endpoint: bool = False,
    ) -> None:
        self.clock = clock
        self.behaviours = behaviours
        self.batch_endpoint = batch_endpoint
        self.tasks: dict[str, tuple[float, Behaviour]] = {}
        self.order: list[str] = []
        self.reads: dict[str, list[float]] = defaultdict(list)
        self.other: list[str] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def _task(self, tid: str) -> dict:
        created, behave = self.tasks[tid]
        age = self.clock.time() - created
        status, progress, est = behave(age)
        body: dict = {
            "created": int(created),
            "id": tid,
            "model": "gpt-image-2",
            "object": "image.generation.task",
            "progress": progress,
            "status": status,
            "task_info": {"can_cancel": status in ("pending", "processing")},
            "type": "image",
            "usage": {"billing_rule": "per_call", "credits_reserved": 1.0, "user_group": "default"},
        }
        if est is not None and status in ("pending", "processing"):
            body["task_info"]["estimated_time"] = est
        if status == "completed":
            body["results"] = [f"https://cdn.invalid/{tid}/0.png"]
            body["usage"]["credits_used"] = 1.0
        return body

    def handle(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.time()
        path = request.url.path
        if request.method == "POST" and path == "/v1/images/generations":
            created = float(math.floor(now))  # created stamps are whole seconds
            created = now
            tid = f"task-unified-{int(created)}-{secrets.token_hex(4)}"
            self.tasks[tid] = (created, self.behaviours(len(self.order)))
            self.order.append(tid)
            return httpx.Response(200, json=self._task(tid))
        if request.method == "GET" and path.startswith("/v1/tasks/"):
            tid = path.rsplit("/", 1)[1]
            if tid not in self.tasks:
                return httpx.Response(
                    404,
                    json={
                        "error": {
                            "code": "task_not_found",
                            "message": "no",
                            "type": "invalid_request_error",
                        }
                    },
                )
            self.reads[tid].append(now)
            return httpx.Response(200, json=self._task(tid))
        if request.method == "POST" and path == "/v1/tasks/batch" and self.batch_endpoint:
            ids = json.loads(request.content)["task_ids"]
            data = []
            for tid in ids:
                if tid in self.tasks:
                    self.reads[tid].append(now)
                    data.append(self._task(tid))
            return httpx.Response(200, json={"data": data})
        self.other.append(f"{request.method} {path}")
        return httpx.Response(
            404,
            json={"error": {"code": "not_found", "message": "no", "type": "invalid_request_error"}},
        )

    def ages(self, tid: str) -> list[float]:
        created = self.tasks[tid][0]
        return [t - created for t in self.reads[tid]]
