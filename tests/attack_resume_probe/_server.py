"""A small fake Evolink server of our own, as an httpx transport (not the SDK's simulator).

Configurable per test: whether it honours `Idempotency-Key`, whether a replay says
`Idempotency-Replayed: true`, which creates lose their answer (the task is made, then the
connection drops), which never reach it (dropped before any work), which are refused, and
how its task listing lies.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import anyio
import httpx

API_KEY = "sk-evo-attackresumeprobe0123456789SECRET"
BASE_URL = "https://fake-evolink.invalid"
PRICE = 4.0  # credits reserved (and charged) per image


class Task:
    def __init__(self, tid: str, prompt: str, model: str, created: float, key: str | None, n: int):
        self.id = tid
        self.prompt = prompt
        self.model = model
        self.created = created
        self.key = key
        self.n = n

    def view(self, now: float, duration: float) -> dict[str, Any]:
        done = now >= self.created + duration
        usage: dict[str, Any] = {
            "billing_rule": "per_call",
            "credits_reserved": PRICE * self.n,
            "user_group": "default",
        }
        view: dict[str, Any] = {
            "created": int(self.created),
            "id": self.id,
            "model": self.model,
            "object": "image.generation.task",
            "progress": 100 if done else 10,
            "status": "completed" if done else "processing",
            "task_info": {"can_cancel": not done},
            "type": "image",
            "usage": usage,
        }
        if done:
            usage["credits_used"] = PRICE * self.n
            view["results"] = [f"{BASE_URL}/results/{self.id}/0.png"]
        return view


class FakeServer(httpx.AsyncBaseTransport):
    """The fake API.

    `create_action(prompt, attempt_number_for_that_prompt) -> str` decides each create:
    "ok" answer it; "lose" make (or replay) the task, then drop the connection;
    "drop" drop the connection before doing anything; "hang" make the task then never
    answer (until the test cancels); "402"/"409"/"400" refuse it.
    """

    def __init__(
        self,
        clock: Any,
        *,
        honour_keys: bool = True,
        replay_header: bool = True,
        duration: float = 20.0,
        batch_endpoint: bool = False,
    ) -> None:
        self.clock = clock
        self.honour_keys = honour_keys
        self.replay_header = replay_header
        self.duration = duration
        self.batch_endpoint = batch_endpoint
        self.tasks: dict[str, Task] = {}
        self.order: list[str] = []  # creation order
        self.by_key: dict[str, str] = {}
        self.create_action: Callable[[str, int], str] = lambda prompt, n: "ok"
        self.create_attempts: dict[str, int] = {}
        self.requests: list[tuple[str, str]] = []
        self.create_log: list[tuple[str, str | None, str]] = []  # (prompt, key, action)
        # listing tampering: extra fake rows and whether to duplicate rows
        self.listing_extra: list[dict[str, Any]] = []
        self.listing_duplicates = False
        self.listing_status: int | None = None
        self.hanging = 0
        self.on_hang: Callable[[], None] | None = None

    # -- helpers for the tests ----------------------------------------------------------

    def tasks_of(self, prompt: str) -> list[Task]:
        return [self.tasks[t] for t in self.order if self.tasks[t].prompt == prompt]

    def made_task(self, prompt: str, model: str, key: str | None, n: int) -> Task:
        now = self.clock.time()
        tid = f"task-unified-{int(now)}-{secrets.token_hex(4)}"
        task = Task(tid, prompt, model, now, key, n)
        self.tasks[tid] = task
        self.order.append(tid)
        if key is not None and self.honour_keys:
            self.by_key[key] = tid
        return task

    # -- transport ----------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await anyio.lowlevel.checkpoint()
        path = request.url.path
        self.requests.append((request.method, path))
        auth = request.headers.get("authorization")
        if auth != f"Bearer {API_KEY}":
            return self._error(401, "unauthorized", "Authentication required")
        if request.method == "POST" and path == "/v1/images/generations":
            return await self._create(request)
        if request.method == "GET" and path == "/v1/tasks":
            return self._list(request)
        if request.method == "GET" and path.startswith("/v1/tasks/"):
            tid = path.rsplit("/", 1)[1]
            task = self.tasks.get(tid)
            if task is None:
                return self._error(404, "task_not_found", "The requested task could not be found")
            return self._json(200, task.view(self.clock.time(), self.duration))
        if request.method == "POST" and path == "/v1/tasks/batch" and self.batch_endpoint:
            ids = json.loads(request.content)["task_ids"]
            now = self.clock.time()
            data = [self.tasks[t].view(now, self.duration) for t in ids if t in self.tasks]
            return self._json(200, {"data": data})
        return self._error(404, "not_found", "no such route")

    async def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        prompt = body.get("prompt", "")
        key = request.headers.get("idempotency-key")
        attempt = self.create_attempts.get(prompt, 0) + 1
        self.create_attempts[prompt] = attempt
        action = self.create_action(prompt, attempt)
        self.create_log.append((prompt, key, action))
        if action == "400-leak":
            return self._error(400, "invalid_request", f"bad request from key {API_KEY}")
        if action == "drop":
            raise httpx.RemoteProtocolError("server disconnected before reading the body")
        if action == "429":
            response = self._error(429, "rate_limit_exceeded", "Rate limit exceeded")
            response.headers["Retry-After"] = "60"
            return response
        if action in ("402", "409", "400"):
            code = {
                "402": "insufficient_quota",
                "409": "idempotency_conflict",
                "400": "invalid_request",
            }[action]
            return self._error(int(action), code, "refused")
        replayed = False
        if self.honour_keys and key is not None and key in self.by_key:
            task = self.tasks[self.by_key[key]]
            replayed = True
        else:
            task = self.made_task(prompt, body.get("model", "?"), key, int(body.get("n") or 1))
        if action == "lose":
            raise httpx.RemoteProtocolError("server disconnected without sending a response")
        if action == "lose-leak":
            raise httpx.RemoteProtocolError(
                f"peer closed; request had Authorization: Bearer {API_KEY}"
            )
        if action == "hang":
            self.hanging += 1
            if self.on_hang is not None:
                self.on_hang()
            await anyio.sleep_forever()
        headers = {"Idempotency-Replayed": "true"} if replayed and self.replay_header else {}
        return self._json(200, task.view(self.clock.time(), self.duration), headers)

    def _list(self, request: httpx.Request) -> httpx.Response:
        if self.listing_status is not None:
            return self._error(self.listing_status, "internal_error", "listing down")
        q = parse_qs(request.url.query.decode())
        page = int(q.get("page", ["1"])[0])
        size = int(q.get("page_size", ["20"])[0])
        now = self.clock.time()
        rows = [self.tasks[t].view(now, self.duration) for t in reversed(self.order)]
        rows = list(self.listing_extra) + rows
        if self.listing_duplicates:
            rows = [r for row in rows for r in (row, dict(row))]
        start = (page - 1) * size
        return self._json(
            200,
            {
                "data": rows[start : start + size],
                "total": len(rows),
                "page": page,
                "page_size": size,
            },
        )

    @staticmethod
    def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        h = {"Content-Type": "application/json", "X-Request-Id": secrets.token_hex(6)}
        h.update(headers or {})
        return httpx.Response(status, content=json.dumps(body).encode(), headers=h)

    def _error(self, status: int, code: str, message: str) -> httpx.Response:
        return self._json(
            status, {"error": {"code": code, "message": message, "type": "invalid_request_error"}}
        )
