"""A hostile fake Evolink server with its own ledger, as an httpx async transport.

Written from ../shared/api/SPEC.md and the SDK's public docs only. Time comes from an
`evolink.testing.VirtualClock`, so tasks of minutes end in no real time.

The server keeps the truth: every task it made (and under which idempotency key), every
credit it reserved, charged and released, and the peak of what it had committed (reserved
and not released, plus charged) at any moment. Tests compare the SDK's report with it.

Faults are scripted per prompt (a list consumed one attempt at a time) so that concurrency
never changes which input meets which fault.
"""

from __future__ import annotations

import enum
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from evolink.testing import VirtualClock

SECRET_KEY = "sk-evo-LEDGERsecret0123456789abcdefXYZ"
BASE_URL = "https://api.evolink.test"
PRICE = Decimal(2)  # credits per image, this server's price for every model

_MISSING = object()


class Create(enum.Enum):
    """What the server does with one create attempt."""

    OK = "ok"
    TIMEOUT_AFTER_CREATE = "timeout_after_create"  # task made, answer never comes (read timeout)
    RESET_AFTER_CREATE = "reset_after_create"  # task made, connection dropped mid-answer
    BAD_GATEWAY_AFTER_CREATE = "502_after_create"  # task made, a proxy answers 502
    ISE_NO_TASK = "500_no_task"  # 500, nothing made (the client cannot know)
    GARBAGE_AFTER_CREATE = "garbage_after_create"  # task made, body cut in half
    RATE_LIMIT = "429"  # 429 with Retry-After
    RATE_LIMIT_NO_HEADER = "429_no_header"
    UNAVAILABLE = "503"  # explicit 503, nothing made
    NO_CREDITS = "402"  # 402 insufficient_quota quoting the key
    CONFLICT = "409"  # 409 idempotency_conflict
    UNAUTHORIZED = "401"  # 401 quoting the key
    CONNECT_ERROR = "connect_error"  # never reached the server


@dataclass
class TaskPlan:
    """How one task behaves on the server."""

    duration: float = 10.0
    final: str = "completed"  # completed | failed | cancelled | never
    images_made: int | None = None  # default: n (completed), 0 otherwise
    credits_used: Any = _MISSING  # _MISSING: the server's own rule; None: omitted
    reserve_field: Any = _MISSING  # what the create's answer says in credits_reserved
    read_reserve_field: Any = _MISSING  # what reads say in credits_reserved
    error_code: str = "service_error"
    reserved: Decimal | None = None  # what the server truly reserves (default PRICE * n)


@dataclass
class ServerTask:
    id: str
    prompt: str | None
    model: str
    n: int
    key: str | None
    created: float
    plan: TaskPlan
    reserved: Decimal
    settled: bool = False
    charged: Decimal = Decimal(0)
    released: Decimal = Decimal(0)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def ends_at(self) -> float:
        return self.created + self.plan.duration


@dataclass
class Seen:
    """One request the server received."""

    number: int
    time: float
    method: str
    path: str
    body: Any
    key: str | None
    status: int | str
    task_id: str | None = None


class HostileServer(httpx.AsyncBaseTransport):
    def __init__(
        self,
        clock: VirtualClock,
        *,
        balance: Decimal | int = 10_000,
        honour_keys: bool = True,
        batch_endpoint: str = "ok",  # ok | missing | drop | duplicate | foreign | stale
        listing: bool = True,
        retry_after: str | None = "1",
    ) -> None:
        self.clock = clock
        self.balance = Decimal(balance)
        self.honour_keys = honour_keys
        self.batch_endpoint = batch_endpoint
        self.listing = listing
        self.retry_after = retry_after
        self.tasks: dict[str, ServerTask] = {}
        self.seen: list[Seen] = []
        self.create_faults: dict[str, list[Create]] = {}
        self.plans: dict[str, TaskPlan] = {}
        self.plan_queue: dict[str, list[TaskPlan]] = {}  # per prompt, one plan per new task
        self.default_plan = TaskPlan()
        self.keys: dict[str, tuple[str, str]] = {}  # idempotency key -> (body json, task id)
        self.reuse_task_of: dict[str, str] = {}  # prompt -> the prompt whose task to answer with
        self.events: list[tuple[float, str, str, Decimal]] = []  # (time, task, kind, amount)
        self.peak_committed = Decimal(0)
        self.cancel_scope: anyio.CancelScope | None = None
        self.cancel_at: int | None = None  # request number at which to cancel the scope
        self.cancel_before_work = False
        self.dropped_ids: set[str] = set()  # ids the batch endpoint leaves out
        self.create_delay = 0.0  # clock seconds a create's answer takes, once its work is done
        self._ids = itertools.count(1)
        self._numbers = itertools.count(1)

    # ----- the truth -----

    @property
    def reserved(self) -> Decimal:
        return sum((t.reserved for t in self.tasks.values()), Decimal(0))

    @property
    def charged(self) -> Decimal:
        return sum((t.charged for t in self.tasks.values()), Decimal(0))

    @property
    def released(self) -> Decimal:
        return sum((t.released for t in self.tasks.values()), Decimal(0))

    @property
    def outstanding(self) -> Decimal:
        return sum((t.reserved for t in self.tasks.values() if not t.settled), Decimal(0))

    @property
    def committed(self) -> Decimal:
        return self.outstanding + self.charged

    def tasks_for(self, prompt: str) -> list[ServerTask]:
        return [t for t in self.tasks.values() if t.prompt == prompt]

    def creates(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path == "/v1/images/generations"]

    def creates_for(self, prompt: str) -> list[Seen]:
        return [s for s in self.creates() if (s.body or {}).get("prompt") == prompt]

    def _note(self, task: ServerTask, kind: str, amount: Decimal) -> None:
        self.events.append((self.clock.time(), task.id, kind, amount))
        self.peak_committed = max(self.peak_committed, self.committed)

    def settle(self) -> None:
        """Settle every task whose end has passed, in end order (lazy, exact)."""
        now = self.clock.time()
        due = sorted(
            (
                t
                for t in self.tasks.values()
                if not t.settled and t.plan.final != "never" and t.ends_at <= now
            ),
            key=lambda t: t.ends_at,
        )
        for task in due:
            charge = self._charge_of(task)
            task.settled = True
            task.charged = charge
            task.released = max(task.reserved - charge, Decimal(0))
            self._note(task, "charge", charge)

    def _made(self, task: ServerTask) -> int:
        if task.plan.final != "completed":
            return 0
        return task.n if task.plan.images_made is None else task.plan.images_made

    def _charge_of(self, task: ServerTask) -> Decimal:
        used = task.plan.credits_used
        if used is not _MISSING and used is not None:
            return Decimal(str(used))
        return task.reserved * self._made(task) / task.n

    # ----- task bodies -----

    def _status(self, task: ServerTask) -> tuple[str, int]:
        age = self.clock.time() - task.created
        if task.plan.final == "never" or age < task.plan.duration:
            if age < 1:
                return "pending", 0
            progress = min(99, int(100 * age / task.plan.duration))
            return "processing", progress
        return task.plan.final, 100 if task.plan.final == "completed" else 50

    def task_body(self, task: ServerTask, *, on_create: bool = False) -> dict[str, Any]:
        status, progress = ("pending", 0) if on_create else self._status(task)
        usage: dict[str, Any] = {"billing_rule": "per_call", "user_group": "default"}
        field_value = task.plan.reserve_field if on_create else task.plan.read_reserve_field
        if field_value is _MISSING and not on_create:
            field_value = task.plan.reserve_field
        if field_value is _MISSING:
            usage["credits_reserved"] = float(task.reserved)
        elif field_value is not None:
            usage["credits_reserved"] = field_value
        body: dict[str, Any] = {
            "created": int(task.created),
            "id": task.id,
            "model": task.model,
            "object": "image.generation.task",
            "progress": progress,
            "status": status,
            "type": "image",
            "usage": usage,
        }
        if status in {"pending", "processing"}:
            body["task_info"] = {"can_cancel": True, "estimated_time": int(task.plan.duration)}
        else:
            body["task_info"] = {"can_cancel": False}
            used = task.plan.credits_used
            if used is _MISSING:
                usage["credits_used"] = float(self._charge_of(task))
            elif used is not None:
                usage["credits_used"] = used
        if status == "completed":
            body["results"] = [
                f"{BASE_URL}/results/{task.id}/{i}.png" for i in range(self._made(task))
            ]
        elif status == "failed":
            body["error"] = {
                "code": task.plan.error_code,
                "message": f"upstream refused the job of {SECRET_KEY}",
                "type": "task_error",
            }
        return body

    # ----- transport -----

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        number = next(self._numbers)
        raw = await request.aread()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        seen = Seen(
            number=number,
            time=self.clock.time(),
            method=request.method,
            path=request.url.path,
            body=body,
            key=request.headers.get("Idempotency-Key"),
            status="?",
        )
        self.seen.append(seen)
        if self.cancel_at == number and self.cancel_before_work:
            await self._cancel_now()
        self.settle()
        try:
            response = await self._route(request, seen)
        except httpx.HTTPError as exc:
            seen.status = type(exc).__name__
            if self.cancel_at == number:
                await self._cancel_now()
            raise
        seen.status = response.status_code
        if self.cancel_at == number:
            await self._cancel_now()
        return response

    async def _cancel_now(self) -> None:
        assert self.cancel_scope is not None
        self.cancel_scope.cancel()
        await anyio.lowlevel.checkpoint()  # the cancellation lands inside the request

    async def _route(self, request: httpx.Request, seen: Seen) -> httpx.Response:
        path = request.url.path
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {SECRET_KEY}":
            return _error(401, "unauthorized", f"Invalid API key provided: {auth[7:]}")
        if request.method == "POST" and path == "/v1/images/generations":
            return await self._create(request, seen)
        if request.method == "GET" and path.startswith("/v1/tasks/"):
            task = self.tasks.get(path.removeprefix("/v1/tasks/"))
            if task is None:
                return _error(404, "task_not_found", "no such task")
            return httpx.Response(200, json=self.task_body(task))
        if request.method == "POST" and path == "/v1/tasks/batch":
            return self._batch_read(seen.body or {})
        if request.method == "GET" and path == "/v1/tasks":
            return self._list(request)
        if request.method == "GET" and path == "/v1/credits":
            remaining = float(self.balance - self.committed)
            data = {"remaining_credits": remaining, "used_credits": float(self.charged)}
            return httpx.Response(
                200,
                json={"success": True, "message": "", "data": {"token": data, "user": data}},
            )
        return _error(404, "not_found", f"no route {path}")

    async def _create(self, request: httpx.Request, seen: Seen) -> httpx.Response:
        body = seen.body or {}
        prompt = body.get("prompt")
        queue = self.create_faults.get(prompt or "")
        fault = queue.pop(0) if queue else Create.OK
        if fault is Create.CONNECT_ERROR:
            raise httpx.ConnectError("connection refused", request=request)
        refusal = self._refusal(fault)
        if refusal is not None:
            return refusal
        made = self._make_or_replay(body, seen)
        if isinstance(made, httpx.Response):
            return made
        task, replayed = made
        seen.task_id = task.id
        answer = self.task_body(task, on_create=True)
        if self.create_delay:
            await self.clock.sleep(self.create_delay)
        headers = {"Idempotency-Replayed": "true"} if replayed else {}
        if fault is Create.TIMEOUT_AFTER_CREATE:
            raise httpx.ReadTimeout("timed out reading the answer", request=request)
        if fault is Create.RESET_AFTER_CREATE:
            raise httpx.RemoteProtocolError("peer closed connection mid-body", request=request)
        if fault is Create.BAD_GATEWAY_AFTER_CREATE:
            return _error(502, "upstream_error", "bad gateway")
        if fault is Create.GARBAGE_AFTER_CREATE:
            text = json.dumps(answer)
            return httpx.Response(200, content=text[: len(text) // 2].encode(), headers=headers)
        return httpx.Response(200, json=answer, headers=headers)

    def _refusal(self, fault: Create) -> httpx.Response | None:
        """The answer of a create refused up front (nothing made), if it is one."""
        if fault is Create.RATE_LIMIT:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return _error(429, "rate_limit_exceeded", "slow down", headers=headers)
        refusals = {
            Create.RATE_LIMIT_NO_HEADER: (429, "rate_limit_exceeded", "slow down"),
            Create.UNAVAILABLE: (503, "service_unavailable", "try later"),
            Create.ISE_NO_TASK: (500, "internal_error", "boom"),
            Create.NO_CREDITS: (402, "insufficient_quota", f"key {SECRET_KEY} has no credits"),
            Create.CONFLICT: (409, "idempotency_conflict", "key reused"),
            Create.UNAUTHORIZED: (401, "unauthorized", f"Invalid API key provided: {SECRET_KEY}"),
        }
        if fault in refusals:
            return _error(*refusals[fault])
        return None

    def _make_or_replay(
        self, body: dict[str, Any], seen: Seen
    ) -> tuple[ServerTask, bool] | httpx.Response:
        """Make the task (reserving its credits), or find the one made under this key."""
        prompt = body.get("prompt")
        key = seen.key
        canonical = json.dumps(body, sort_keys=True)
        replayed = False
        if self.honour_keys and key and key in self.keys:
            first_body, task_id = self.keys[key]
            if first_body != canonical:
                return _error(409, "idempotency_conflict", "key reused with another body")
            task = self.tasks[task_id]
            replayed = True
        else:
            queued = self.plan_queue.get(prompt or "")
            plan = queued[0] if queued else self.plans.get(prompt or "", self.default_plan)
            n = int(body.get("n") or 1)
            reserved = plan.reserved if plan.reserved is not None else PRICE * n
            if self.committed + reserved > self.balance:
                return _error(402, "insufficient_quota", f"key {SECRET_KEY} cannot cover it")
            donor = self.tasks_for(self.reuse_task_of.get(prompt or "", "\0"))
            if donor:
                task = donor[0]  # a server reusing an id: one task, one reservation
            else:
                task_id = f"task-unified-{int(self.clock.time())}-{next(self._ids):06d}"
                task = ServerTask(
                    id=task_id,
                    prompt=prompt,
                    model=str(body.get("model")),
                    n=n,
                    key=key,
                    created=self.clock.time(),
                    plan=plan,
                    reserved=reserved,
                    body=body,
                )
                self.tasks[task_id] = task
                if queued and len(queued) > 1:
                    queued.pop(0)
                self._note(task, "reserve", reserved)
            if self.honour_keys and key:
                self.keys[key] = (canonical, task.id)
        return task, replayed

    def _batch_read(self, body: dict[str, Any]) -> httpx.Response:
        if self.batch_endpoint == "missing":
            return _error(404, "not_found", "no route /v1/tasks/batch")
        ids = [i for i in body.get("task_ids", []) if isinstance(i, str)]
        found = [self.tasks[i] for i in ids if i in self.tasks]
        data = []
        for task in found:
            if self.batch_endpoint == "drop" and task.id in self.dropped_ids:
                continue
            if self.batch_endpoint == "stale" and task.id in self.dropped_ids:
                stale = self.task_body(task)
                stale.update(status="processing", progress=10, results=[])
                stale.pop("error", None)
                data.append(stale)
                continue
            data.append(self.task_body(task))
            if self.batch_endpoint == "duplicate":
                data.append(self.task_body(task))
        if self.batch_endpoint == "foreign":
            data.append(_foreign_task(self.clock.time()))
        return httpx.Response(200, json={"data": data})

    def _list(self, request: httpx.Request) -> httpx.Response:
        if not self.listing:
            return _error(404, "not_found", "no route /v1/tasks")
        page = int(request.url.params.get("page", "1"))
        size = int(request.url.params.get("page_size", "20"))
        newest = sorted(self.tasks.values(), key=lambda t: (t.created, t.id), reverse=True)
        chunk = newest[(page - 1) * size : page * size]
        data = [self.task_body(t) for t in chunk]
        return httpx.Response(
            200, json={"data": data, "total": len(newest), "page": page, "page_size": size}
        )


def _error(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"code": code, "message": message, "type": "api_error"}},
        headers=headers or {},
    )


def _foreign_task(now: float) -> dict[str, Any]:
    """A task nobody asked for, ended and expensive: another key's, leaked by a proxy."""
    return {
        "created": int(now) - 50,
        "id": "task-unified-1-foreign",
        "model": "gpt-image-2",
        "object": "image.generation.task",
        "progress": 100,
        "status": "completed",
        "type": "image",
        "task_info": {"can_cancel": False},
        "usage": {"billing_rule": "per_call", "credits_reserved": 999, "credits_used": 999},
        "results": [f"{BASE_URL}/results/foreign/0.png"],
    }
