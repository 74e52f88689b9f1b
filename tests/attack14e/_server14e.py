"""Our own fake Evolink server (an httpx.MockTransport handler) on a VirtualClock.

Each created task gets a duration and a progress function of (index, fraction, age);
the server answers creates, `GET /v1/tasks/{id}` and (optionally) `POST /v1/tasks/batch`,
and records every read of every task.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import httpx

from evolink import AsyncEvolink
from evolink.testing import VirtualClock

#: (task index, fraction of its duration elapsed in [0, 1), age in seconds) -> percent.
ProgressFn = Callable[[int, float, float], int]
BASE_URL = "https://fake14e.test"
API_KEY = "sk-evo-attack14e-0000000000"


@attrs.define
class FakeTask:
    index: int
    id: str
    created: float  # clock.time()
    created_mono: float  # clock.monotonic()
    duration: float
    estimate: float | None
    model: str
    reads: int = 0
    reads_running: int = 0
    seen_done_at: float | None = None  # monotonic
    read_times: list[float] = attrs.field(factory=list)  # monotonic


@attrs.define
class FakeServer:
    clock: VirtualClock
    durations: Sequence[float]
    progress: ProgressFn
    estimates: Sequence[float | None] | None = None
    batch_endpoint: bool = False
    #: The progress the create's answer carries (0 by default, as a fresh task).
    create_progress: Callable[[int], int] = lambda _i: 0
    create_status: Callable[[int], str] = lambda _i: "pending"
    tasks: dict[str, FakeTask] = attrs.field(factory=dict)
    order: list[FakeTask] = attrs.field(factory=list)
    gets: int = 0
    batch_requests: int = 0
    creates: int = 0
    unknown: list[str] = attrs.field(factory=list)

    def client(self, **kwargs: Any) -> AsyncEvolink:
        return AsyncEvolink(
            api_key=API_KEY,
            base_url=BASE_URL,
            transport=httpx.MockTransport(self.handle),
            clock=self.clock,
            max_retries=0,
            **kwargs,
        )

    # -- the API ------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.endswith("/generations"):
            return self._create(request)
        if request.method == "POST" and path == "/v1/tasks/batch":
            if not self.batch_endpoint:
                return _error(404, "not_found", f"no route {path}")
            return self._batch(request)
        if request.method == "GET" and path.startswith("/v1/tasks/"):
            return self._get(path.removeprefix("/v1/tasks/"))
        self.unknown.append(f"{request.method} {path}")
        return _error(404, "not_found", f"no route {path}")

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        index = self.creates
        self.creates += 1
        duration = self.durations[index % len(self.durations)]
        estimate = None if self.estimates is None else self.estimates[index % len(self.estimates)]
        task = FakeTask(
            index=index,
            id=f"task-unified-14e{index:07d}",
            created=self.clock.time(),
            created_mono=self.clock.monotonic(),
            duration=duration,
            estimate=estimate,
            model=str(body.get("model", "gpt-image-2")),
        )
        self.tasks[task.id] = task
        self.order.append(task)
        view = self._view(task, created=True)
        return httpx.Response(200, json=view)

    def _get(self, task_id: str) -> httpx.Response:
        self.gets += 1
        task = self.tasks.get(task_id)
        if task is None:
            return _error(404, "task_not_found", "The requested task could not be found")
        return httpx.Response(200, json=self._read(task))

    def _batch(self, request: httpx.Request) -> httpx.Response:
        self.batch_requests += 1
        body = json.loads(request.content or b"{}")
        ids = body.get("task_ids", [])
        data = [self._read(self.tasks[i]) for i in dict.fromkeys(ids) if i in self.tasks]
        return httpx.Response(200, json={"data": data})

    def _read(self, task: FakeTask) -> dict[str, Any]:
        now = self.clock.monotonic()
        task.reads += 1
        task.read_times.append(now)
        view = self._view(task)
        if view["status"] == "completed":
            if task.seen_done_at is None:
                task.seen_done_at = now
        else:
            task.reads_running += 1
        return view

    def _view(self, task: FakeTask, *, created: bool = False) -> dict[str, Any]:
        now = self.clock.monotonic()
        age = now - task.created_mono
        done = age >= task.duration
        if created:
            status = self.create_status(task.index)
            progress = self.create_progress(task.index)
        elif done:
            status, progress = "completed", 100
        else:
            status = "processing"
            progress = self.progress(task.index, age / task.duration, age)
        task_info: dict[str, Any] = {"can_cancel": not done}
        if not done and task.estimate is not None:
            task_info["estimated_time"] = task.estimate
        view: dict[str, Any] = {
            "created": int(task.created),
            "id": task.id,
            "model": task.model,
            "object": "image.generation.task",
            "progress": progress,
            "status": status,
            "task_info": task_info,
            "type": "image",
            "usage": {
                "billing_rule": "per_call",
                "credits_reserved": 1.0,
                "user_group": "default",
            },
        }
        if status == "completed":
            view["usage"]["credits_used"] = 1.0
            view["results"] = [f"{BASE_URL}/results/{task.id}/0.png"]
        return view

    # -- figures --------------------------------------------------------------------------

    def reads_per_task(self) -> float:
        return sum(t.reads for t in self.order) / max(1, len(self.order))

    def seen_over_duration(self) -> list[float]:
        return [
            (t.seen_done_at - t.created_mono) / t.duration
            for t in self.order
            if t.seen_done_at is not None
        ]


def _error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"code": code, "message": message, "type": "invalid_request_error"}},
    )


def loop_wall(durations: Sequence[float], in_flight: int, step: float = 1.0) -> float:
    """What a plain loop reading each task every `step` s would take, slots refilled."""
    import heapq  # noqa: PLC0415

    free, wall = [0.0] * in_flight, 0.0
    for duration in durations:
        end = heapq.heappop(free) + math.ceil(duration / step - 1e-9) * step
        heapq.heappush(free, end)
        wall = max(wall, end)
    return wall
