"""A hostile Evolink server for the attack14c tests, on `VirtualClock` time.

Written from the API's documented task shape alone: `POST /v1/images/generations`,
`GET /v1/tasks/{id}`, the undocumented `POST /v1/tasks/batch` (`{"task_ids": [...]}` ->
`{"data": [task, ...]}`). Every knob is an attribute tests set (also mid-run):

- `duration_of(model)`: each new task's duration (seconds);
- `progress_of(task, age, read_no)` / `estimate_of(task, read_no)`: the hints (`MISSING`
  leaves the field out);
- `skew`: seconds the server's clock runs ahead of the client's (stamps, `Date`);
- `batch_mode`: "on", "off" (404 on the batch route), or a callable (request number) ->
  HTTP status for flapping;
- `batch_mangle(views)`: rewrite a batch answer (duplicates, drops, extras);
- `read_latency`: virtual seconds each read takes (a slow server);
- `rate_limit(read_no)`: seconds of `Retry-After` for a 429 on that read request, or None.

It records every read per task and counts overlaps: a read of a task arriving while
another read of the same task is still being answered.
"""

from __future__ import annotations

import email.utils
import json
import random
import string
from collections.abc import Callable
from typing import Any

import attrs
import httpx

from evolink import AsyncEvolink
from evolink.testing import VirtualClock

API_KEY = "sk-evo-" + "a1b2c3d4" * 6
BASE_URL = "https://api.attack14c.invalid"
MISSING = object()


def linear(task: FakeTask, age: float, _read_no: int) -> Any:
    return max(0, min(99, int(100 * age / task.duration)))


def no_progress(_task: FakeTask, _age: float, _read_no: int) -> Any:
    return 0


def no_estimate(_task: FakeTask, _read_no: int) -> Any:
    return MISSING


def honest_estimate(task: FakeTask, _read_no: int) -> Any:
    return max(1, round(task.duration))


@attrs.define(eq=False)
class FakeTask:
    id: str
    model: str
    created_at: float  # the client's clock (the truth)
    duration: float
    final: str = "completed"
    reads: int = 0
    read_times: list[float] = attrs.field(factory=list)
    in_flight: int = 0
    seen_terminal_at: float | None = None

    @property
    def end_at(self) -> float:
        return self.created_at + self.duration


@attrs.define(eq=False)
class HostileServer:
    clock: VirtualClock
    seed: int = 14
    skew: float = 0.0
    batch_mode: Any = "on"
    read_latency: float = 0.02
    duration_of: Callable[[str], float] = lambda _model: 4.0
    progress_of: Callable[[FakeTask, float, int], Any] = linear
    estimate_of: Callable[[FakeTask, int], Any] = honest_estimate
    batch_mangle: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
    rate_limit: Callable[[int], float | None] | None = None
    date_header: bool = True
    hints_on_create: bool = True  # False: the create's answer carries plain hints
    tasks: dict[str, FakeTask] = attrs.field(factory=dict)
    rng: random.Random = attrs.field(init=False)
    gets: int = 0
    batch_requests: int = 0
    batch_ids: int = 0
    read_requests: int = 0  # GETs of tasks + batch requests, 429s included
    rate_limited: int = 0
    creates: int = 0
    overlaps: list[str] = attrs.field(factory=list)
    other_requests: list[str] = attrs.field(factory=list)
    batch_sizes: list[int] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # -- making tasks --------------------------------------------------------------------

    def new_id(self) -> str:
        tail = "".join(self.rng.choices(string.ascii_lowercase + string.digits, k=8))
        return f"task-unified-{int(self.clock.time() + self.skew)}-{tail}"

    def add(
        self,
        *,
        model: str = "gpt-image-2",
        duration: float | None = None,
        age: float = 0.0,
        final: str = "completed",
    ) -> FakeTask:
        """A task made by someone else (another process), `age` seconds ago."""
        task = FakeTask(
            id=self.new_id(),
            model=model,
            created_at=self.clock.time() - age,
            duration=self.duration_of(model) if duration is None else duration,
            final=final,
        )
        self.tasks[task.id] = task
        return task

    # -- views ---------------------------------------------------------------------------

    def view(self, task: FakeTask, read_no: int) -> dict[str, Any]:
        now = self.clock.time()
        age = now - task.created_at
        done = age >= task.duration
        view: dict[str, Any] = {
            "id": task.id,
            "object": "image.generation.task",
            "created": int(task.created_at + self.skew),
            "model": task.model,
            "type": "image",
        }
        if done:
            view["status"] = task.final
            view["progress"] = 100
            view["task_info"] = {"can_cancel": False}
            if task.final == "completed":
                view["results"] = [f"https://files.attack14c.invalid/{task.id}.png"]
            elif task.final == "failed":
                view["error"] = {
                    "code": "content_policy_violation",
                    "message": "refused",
                    "type": "task_error",
                }
            return view
        view["status"] = "pending" if age < 0.2 else "processing"
        if read_no == 0 and not self.hints_on_create:
            view["progress"] = 0
            view["task_info"] = {"can_cancel": True}
            return view
        progress = self.progress_of(task, age, read_no)
        if progress is not MISSING:
            view["progress"] = progress
        info: dict[str, Any] = {"can_cancel": True}
        estimate = self.estimate_of(task, read_no)
        if estimate is not MISSING:
            info["estimated_time"] = estimate
        view["task_info"] = info
        return view

    # -- HTTP ----------------------------------------------------------------------------

    def _reply(
        self, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        out = dict(headers or {})
        if self.date_header:
            out["Date"] = email.utils.formatdate(self.clock.time() + self.skew, usegmt=True)
        out["Content-Type"] = "application/json"
        # json.dumps allows NaN: a hostile server may send it.
        return httpx.Response(status, content=json.dumps(body).encode(), headers=out)

    def _error(
        self, status: int, code: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        kind = "invalid_request_error" if status < 500 else "api_error"
        return self._reply(
            status, {"error": {"code": code, "message": code, "type": kind}}, headers
        )

    async def _reading(self, ids: list[str]) -> None:
        for task_id in ids:
            task = self.tasks.get(task_id)
            if task is None:
                continue
            if task.in_flight > 0:
                self.overlaps.append(task_id)
            task.in_flight += 1

    def _read_done(self, ids: list[str]) -> None:
        for task_id in ids:
            task = self.tasks.get(task_id)
            if task is not None:
                task.in_flight -= 1

    async def _latency(self) -> None:
        if self.read_latency > 0:
            await self.clock.sleep(self.read_latency)

    def _limited(self) -> httpx.Response | None:
        if self.rate_limit is None:
            return None
        after = self.rate_limit(self.read_requests)
        if after is None:
            return None
        self.rate_limited += 1
        return self._error(429, "rate_limit_exceeded", {"Retry-After": f"{after:g}"})

    def _note_read(self, task: FakeTask, view: dict[str, Any]) -> None:
        task.reads += 1
        task.read_times.append(self.clock.time())
        if view["status"] in ("completed", "failed", "cancelled") and task.seen_terminal_at is None:
            task.seen_terminal_at = self.clock.time()

    async def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/v1/images/generations":
            return self._create(request)
        if request.method == "POST" and path == "/v1/tasks/batch":
            return await self._batch(request)
        if request.method == "GET" and path.startswith("/v1/tasks/"):
            return await self._get(path.removeprefix("/v1/tasks/"))
        self.other_requests.append(f"{request.method} {path}")
        return self._error(404, "not_found")

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        model = body.get("model") or "gpt-image-2"
        self.creates += 1
        task = self.add(model=model)
        return self._reply(200, self.view(task, 0))

    async def _get(self, task_id: str) -> httpx.Response:
        self.read_requests += 1
        self.gets += 1
        ids = [task_id]
        await self._reading(ids)
        try:
            await self._latency()
            limited = self._limited()
            if limited is not None:
                return limited
            task = self.tasks.get(task_id)
            if task is None:
                return self._error(404, "task_not_found")
            view = self.view(task, task.reads + 1)
            self._note_read(task, view)
            return self._reply(200, view)
        finally:
            self._read_done(ids)

    async def _batch(self, request: httpx.Request) -> httpx.Response:
        self.read_requests += 1
        number = self.batch_requests
        self.batch_requests += 1
        if self.batch_mode == "off":
            return self._error(404, "not_found")
        body = json.loads(request.content or b"{}")
        ids = [i for i in body.get("task_ids", []) if isinstance(i, str)]
        self.batch_ids += len(ids)
        self.batch_sizes.append(len(body.get("task_ids", [])))
        await self._reading(ids)
        try:
            await self._latency()
            if callable(self.batch_mode):
                status = self.batch_mode(number)
                if status != 200:
                    return self._error(status, "flap")
            limited = self._limited()
            if limited is not None:
                return limited
            views = []
            for task_id in ids:
                task = self.tasks.get(task_id)
                if task is None:
                    continue  # unknown ids are left out
                view = self.view(task, task.reads + 1)
                self._note_read(task, view)
                views.append(view)
            if self.batch_mangle is not None:
                views = self.batch_mangle(views)
            return self._reply(200, {"data": views})
        finally:
            self._read_done(ids)

    # -- the client ----------------------------------------------------------------------

    def client(self, **options: Any) -> AsyncEvolink:
        return AsyncEvolink(
            api_key=API_KEY,
            base_url=BASE_URL,
            transport=httpx.MockTransport(self.handler),
            clock=self.clock,
            **options,
        )


def terminal(view_status: str) -> bool:
    return view_status in ("completed", "failed", "cancelled")


@attrs.define
class Ended:
    """One task's wait, as the test saw it."""

    index: int
    task_id: str
    status: str
    delay: float  # seconds from its true end to the wait's return
    reads: int  # reads of it the server answered (GETs and batch places)
    duration: float


async def pool(
    client: AsyncEvolink,
    server: HostileServer,
    count: int,
    workers: int,
    *,
    by_id: bool = False,
    model: str = "gpt-image-2",
) -> list[Ended]:
    """`workers` loops, each creating a task and waiting for it, `count` tasks in all;
    returned in creation order."""
    import anyio  # noqa: PLC0415

    ended: list[Ended] = []
    counter = [0]

    async def worker() -> None:
        while counter[0] < count:
            index = counter[0]
            counter[0] += 1
            task = await client.images.generate("a lighthouse", model=model)
            fake = server.tasks[task.id]
            done = await client.tasks.wait(task.id if by_id else task)
            ended.append(
                Ended(
                    index=index,
                    task_id=task.id,
                    status=str(done.status.value if hasattr(done.status, "value") else done.status),
                    delay=server.clock.time() - fake.end_at,
                    reads=fake.reads,
                    duration=fake.duration,
                )
            )

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker)
    return sorted(ended, key=lambda e: e.index)


def run(server: HostileServer, main: Callable[[AsyncEvolink], Any]) -> Any:
    """Run `main(client)` on the server's virtual clock (asyncio), return its result."""
    import anyio  # noqa: PLC0415

    async def go() -> Any:
        async with server.clock.running():
            async with server.client() as client:
                return await main(client)

    return anyio.run(go)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)
