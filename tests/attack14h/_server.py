"""A small hand-written Evolink server for the hurry attack: records every request with its time."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from evolink.testing import VirtualClock

API = "https://api.evolink.ai"
MODEL = "gpt-image-2"


def _error(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": "no", "type": "invalid_request_error"}}


@dataclass
class Plan:
    """What a task does: its duration, and whether it fails (with a code) at its end."""

    duration: float
    fail_code: str | None = None
    estimate: int | None = None


@dataclass
class SrvTask:
    id: str
    prompt: str
    created: float  # virtual monotonic seconds
    plan: Plan
    attempt: int


@dataclass
class Read:
    """One read of one task: when it was sent, when it was answered, how, what it saw."""

    task_id: str
    start: float
    end: float = -1.0
    via: str = "get"  # "get" or "batch"
    status: str = ""


@dataclass
class Server:
    clock: VirtualClock
    plan_for: Callable[[str, int], Plan]
    batch_endpoint: bool = True
    latency: Callable[[], float] | None = None
    tasks: dict[str, SrvTask] = field(default_factory=dict)
    reads: list[Read] = field(default_factory=list)
    creates: list[tuple[float, str, str]] = field(default_factory=list)  # (t, prompt, id)
    other: list[tuple[float, str, str]] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)
    overlaps: list[tuple[float, str]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    _n: int = 0

    def now(self) -> float:
        return self.clock.monotonic()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- task state ------------------------------------------------------------------
    def body(self, task: SrvTask, now: float) -> dict[str, Any]:
        age = now - task.created
        info: dict[str, Any] = {"can_cancel": True}
        if task.plan.estimate is not None:
            info["estimated_time"] = task.plan.estimate
        out: dict[str, Any] = {
            "id": task.id,
            "object": "image.generation.task",
            "created": int(self.clock.time() - age),
            "model": MODEL,
            "type": "image",
            "task_info": info,
            "usage": {"billing_rule": "per_call", "credits_reserved": 2.5, "user_group": "default"},
        }
        if age >= task.plan.duration:
            if task.plan.fail_code is None:
                out.update(
                    status="completed", progress=100, results=[f"https://img.example/{task.id}.png"]
                )
            else:
                out.update(
                    status="failed",
                    progress=0,
                    error={"code": task.plan.fail_code, "message": "x", "type": "task_error"},
                )
        else:
            out.update(status="pending" if age < 0.05 else "processing", progress=0)
        return out

    def done_at(self, task_id: str) -> float:
        t = self.tasks[task_id]
        return t.created + t.plan.duration

    # -- HTTP ------------------------------------------------------------------------
    async def _lag(self) -> None:
        if self.latency is not None:
            lag = self.latency()
            if lag > 0:
                await self.clock.sleep(lag)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        now = self.now()
        if request.method == "POST" and path == "/v1/images/generations":
            payload = json.loads(request.content)
            prompt = payload["prompt"]
            attempt = self.attempts.get(prompt, 0)
            self.attempts[prompt] = attempt + 1
            self._n += 1
            task_id = f"task-unified-{int(self.clock.time())}-{self._n:08d}"
            task = SrvTask(task_id, prompt, now, self.plan_for(prompt, attempt), attempt)
            self.tasks[task_id] = task
            self.creates.append((now, prompt, task_id))
            await self._lag()
            return httpx.Response(200, json=self.body(task, self.now()))
        if request.method == "GET" and path.startswith("/v1/tasks/"):
            task_id = path.rsplit("/", 1)[1]
            if task_id not in self.tasks:
                return httpx.Response(404, json=_error("task_not_found"))
            read = self._begin([task_id], "get")[0]
            await self._lag()
            body = self.body(self.tasks[task_id], self.now())
            self._finish([read], [body])
            return httpx.Response(200, json=body)
        if request.method == "POST" and path == "/v1/tasks/batch" and self.batch_endpoint:
            ids = [i for i in json.loads(request.content)["task_ids"] if i in self.tasks]
            reads = self._begin(ids, "batch")
            await self._lag()
            bodies = [self.body(self.tasks[i], self.now()) for i in ids]
            self._finish(reads, bodies)
            return httpx.Response(200, json={"data": bodies})
        self.other.append((now, request.method, path))
        return httpx.Response(404, json=_error("not_found"))

    def _begin(self, ids: list[str], via: str) -> list[Read]:
        now = self.now()
        out = []
        for i in ids:
            if self.in_flight.get(i, 0) > 0:
                self.overlaps.append((now, i))
            self.in_flight[i] = self.in_flight.get(i, 0) + 1
            read = Read(i, now, via=via)
            self.reads.append(read)
            out.append(read)
        return out

    def _finish(self, reads: list[Read], bodies: list[dict[str, Any]]) -> None:
        now = self.now()
        for read, body in zip(reads, bodies, strict=True):
            read.end = now
            read.status = body["status"]
            self.in_flight[read.task_id] -= 1

    # -- analysis --------------------------------------------------------------------
    def reads_of(self, task_id: str) -> list[Read]:
        return sorted((r for r in self.reads if r.task_id == task_id), key=lambda r: r.start)

    def age(self, task_id: str, t: float) -> float:
        return t - self.tasks[task_id].created

    def first_done_read(self, task_id: str) -> float:
        return min(r.end for r in self.reads_of(task_id) if r.status in ("completed", "failed"))

    def running_at(self, t: float) -> list[str]:
        """Tasks created and not yet *seen* done by the client at time t."""
        out = []
        for task_id, task in self.tasks.items():
            if task.created <= t and self._seen_done(task_id) > t:
                out.append(task_id)
        return out

    def _seen_done(self, task_id: str) -> float:
        done = [r.end for r in self.reads_of(task_id) if r.status in ("completed", "failed")]
        return min(done) if done else float("inf")


def seeded(seed: int) -> random.Random:
    return random.Random(seed)
