"""A hostile fake of Evolink's API, written from the public docs only (attack12).

It is an `httpx.MockTransport` handler: each request is logged *when the server receives
it* (so `len(api.log)` is what a server log would show), then answered by a rule that a
test sets. Rules name what the server does with one request:

create actions: "ok", "500", "502", "503", "504", "429" (Retry-After seconds), "429-date"
  (Retry-After as an HTTP date), "429-none" (no Retry-After), "lost" (the task is made, the
  connection drops before the answer), "lost-before" (dropped, nothing made), "garbled" (the
  task is made, a 200 with broken JSON), "401" (quoting the key back), "hang" (the task is
  made, the answer never comes).
read actions: "ok", "500", "429", "other" (answers with another task), "garbled", "401".
batch modes: "ok", "404", "bare-list", "by-id", "data-dict", "garbled", "500", "401",
  "other", "empty".
"""

from __future__ import annotations

import email.utils
import itertools
import json
from collections.abc import Callable
from typing import Any

import anyio
import attrs
import httpx

from evolink.testing import VirtualClock

API = "https://api.example-evolink.test"
KEY = "sk-evo-ATTACK12-very-secret-key-0123456789abcdef"


@attrs.define
class Hit:
    method: str
    path: str
    key: str | None
    action: str
    body: Any = None


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"code": code, "message": message, "type": "evo_api_error"}},
        headers=headers or {},
    )


class HostileAPI:
    def __init__(
        self,
        clock: VirtualClock,
        *,
        honour_keys: bool = True,
        duration: float = 12.0,
        api_key: str = KEY,
    ) -> None:
        self.clock = clock
        self.honour_keys = honour_keys
        self.duration = duration
        self.api_key = api_key
        self.log: list[Hit] = []
        self.tasks: dict[str, dict[str, Any]] = {}
        self.task_prompt: dict[str, str] = {}
        self.key_task: dict[str, str] = {}
        self._ids = itertools.count(1)
        self.create_rule: Callable[[int, str | None, dict[str, Any]], str] = lambda n, k, b: "ok"
        self.read_rule: Callable[[int, str], str] = lambda n, tid: "ok"
        self.batch_mode: str = "ok"
        self.fail_tasks: bool = False  # tasks end failed, their message quoting the key
        self.on_create: Callable[[Hit], None] | None = None

    # -- views ----------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def count(self, method: str | None = None, prefix: str = "") -> int:
        return sum(
            1
            for h in self.log
            if (method is None or h.method == method) and h.path.startswith(prefix)
        )

    @property
    def creates(self) -> list[Hit]:
        return [h for h in self.log if h.method == "POST" and h.path.endswith("/generations")]

    def sends_per_key(self) -> dict[str | None, int]:
        out: dict[str | None, int] = {}
        for h in self.creates:
            out[h.key] = out.get(h.key, 0) + 1
        return out

    def tasks_per_prompt(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for prompt in self.task_prompt.values():
            out[prompt] = out.get(prompt, 0) + 1
        return out

    # -- tasks ----------------------------------------------------------------------------
    def _new_task(self, body: dict[str, Any]) -> str:
        n = next(self._ids)
        tid = f"task-unified-{1767225600 + n}-atk{n:05d}"
        self.tasks[tid] = {
            "born": self.clock.monotonic(),
            "created": int(self.clock.time()),
            "model": body.get("model", "gpt-image-2"),
        }
        self.task_prompt[tid] = str(body.get("prompt"))
        return tid

    def task_json(self, tid: str) -> dict[str, Any]:
        t = self.tasks[tid]
        age = self.clock.monotonic() - t["born"]
        status, progress = "pending", 0
        if age >= self.duration:
            status, progress = ("failed" if self.fail_tasks else "completed"), 100
        elif age >= 1:
            status, progress = "processing", min(99, int(100 * age / self.duration))
        out: dict[str, Any] = {
            "id": tid,
            "object": "image.generation.task",
            "created": t["created"],
            "model": t["model"],
            "status": status,
            "progress": progress,
            "type": "image",
            "task_info": {
                "can_cancel": status in ("pending", "processing"),
                "estimated_time": self.duration,
            },
            "usage": {"billing_rule": "per_call", "credits_reserved": 2.5, "user_group": "default"},
        }
        if status == "completed":
            out["results"] = [f"https://cdn.example-evolink.test/{tid}/0.png"]
        if status == "failed":
            out["error"] = {
                "code": "content_policy_violation",
                "message": f"refused for key {self.api_key}",
                "type": "task_error",
            }
        return out

    # -- the handler -----------------------------------------------------------------------
    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        key = request.headers.get("Idempotency-Key")
        try:
            body = json.loads(request.content) if request.content else None
        except ValueError:
            body = None
        hit = Hit(request.method, path, key, "?", body)
        self.log.append(hit)
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.api_key}":
            hit.action = "unauthorized"
            return _error(401, "unauthorized", f"Invalid API key provided: {auth}")
        if request.method == "POST" and path.endswith("/generations"):
            n = len(self.creates) - 1
            hit.action = action = self.create_rule(n, key, body or {})
            if self.on_create is not None:
                self.on_create(hit)
            return await self._create(request, action, key, body or {})
        if request.method == "GET" and path.startswith("/v1/tasks/"):
            tid = path.rsplit("/", 1)[1]
            n = self.count("GET", "/v1/tasks/") - 1
            hit.action = action = self.read_rule(n, tid)
            return self._read(request, action, tid)
        if request.method == "POST" and path == "/v1/tasks/batch":
            hit.action = self.batch_mode
            return self._batch(request, body or {})
        if request.method == "GET" and path == "/v1/credits":
            hit.action = "ok"
            return httpx.Response(200, json={"success": True, "data": {"remaining_credits": 1000}})
        hit.action = "404"
        return _error(404, "not_found", "no such route")

    async def _create(
        self, request: httpx.Request, action: str, key: str | None, body: dict[str, Any]
    ) -> httpx.Response:
        if action in ("ok", "lost", "garbled", "hang"):
            if self.honour_keys and key and key in self.key_task:
                tid = self.key_task[key]
                return httpx.Response(
                    200, json=self.task_json(tid), headers={"Idempotency-Replayed": "true"}
                )
            tid = self._new_task(body)
            if key:
                self.key_task[key] = tid
            if action == "lost":
                raise httpx.ReadError("connection reset by peer", request=request)
            if action == "garbled":
                return httpx.Response(
                    200,
                    content=b'{"id": "task-unified-',
                    headers={"content-type": "application/json"},
                )
            if action == "hang":
                await anyio.sleep_forever()
            return httpx.Response(200, json=self.task_json(tid))
        if action == "lost-before":
            raise httpx.ReadError("connection reset by peer", request=request)
        return self._refusal(action)

    def _refusal(self, action: str) -> httpx.Response:
        if action in ("500", "502", "504"):
            return _error(int(action), "internal_error", f"boom (key {self.api_key})")
        if action == "503":
            return _error(503, "service_unavailable", "down", {"Retry-After": "2"})
        if action == "429":
            return _error(429, "rate_limit_exceeded", "slow down", {"Retry-After": "3"})
        if action == "429-date":
            when = email.utils.formatdate(self.clock.time() + 4, usegmt=True)
            return _error(429, "rate_limit_exceeded", "slow down", {"Retry-After": when})
        if action == "429-none":
            return _error(429, "rate_limit_exceeded", "slow down")
        if action == "401":
            return _error(401, "unauthorized", f"Invalid API key provided: {self.api_key}")
        raise AssertionError(f"unknown action {action}")

    def _read(self, _request: httpx.Request, action: str, tid: str) -> httpx.Response:
        if action == "ok":
            if tid not in self.tasks:
                return _error(404, "task_not_found", "no such task")
            return httpx.Response(200, json=self.task_json(tid))
        if action == "other":
            others = [t for t in self.tasks if t != tid]
            other = others[0] if others else self._new_task({"prompt": "intruder"})
            return httpx.Response(200, json=self.task_json(other))
        if action == "garbled":
            return httpx.Response(
                200, content=b"<html>oops", headers={"content-type": "application/json"}
            )
        return self._refusal(action)

    def _batch(self, _request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        ids = [i for i in body.get("task_ids", []) if i in self.tasks]
        tasks = [self.task_json(i) for i in ids]
        mode = self.batch_mode
        if mode == "ok":
            return httpx.Response(200, json={"data": tasks})
        if mode == "404":
            return _error(404, "not_found", "no such route")
        if mode == "bare-list":
            return httpx.Response(200, json=tasks)
        if mode == "by-id":
            return httpx.Response(200, json={"data": {t["id"]: t for t in tasks}})
        if mode == "data-dict":
            return httpx.Response(200, json={"data": {"tasks": tasks}})
        if mode == "garbled":
            return httpx.Response(200, content=b"{{{", headers={"content-type": "application/json"})
        if mode == "empty":
            return httpx.Response(200, json={})
        if mode == "other":
            intruder = self._new_task({"prompt": "intruder"})
            fake = self.task_json(intruder)
            return httpx.Response(200, json={"data": [fake for _ in ids]})
        return self._refusal(mode)
