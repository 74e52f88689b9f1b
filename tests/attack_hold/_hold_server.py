"""A hostile Evolink server for attacking the waiting engine (issue 14).

Every answer is a valid task per the manual's `TaskDetailResponse` (no field is required
there, `estimated_time` is not even declared), but the hints are chosen to mislead a
client that learns from them: progress that goes backwards or says 100 while the task
still runs, estimates that are 0, negative, huge, strings or different on every read,
durations that change regime, a batch endpoint that comes and goes or answers partially.

Time is the test's `VirtualClock`, so a task of an hour ends in no real time. The server
records every read of every task (a GET, or the id's place in a batch read) with its
virtual time, so a test can count reads per task and batch requests per task.
"""

from __future__ import annotations

import json
import re
import string
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import anyio
import attrs
import httpx

from evolink import AsyncEvolink, Task

BASE_URL = "https://hostile.invalid"
API_KEY = "sk-evo-attack14-0000000000000000"

# A read number (0, 1, 2, ...) and the task's age -> the hint to send.
ProgressFn = Callable[[int, float, float], int]  # (read number, age, duration or inf)
EstimateFn = Callable[[int, float], Any]  # (read number, duration or inf) -> value or MISSING

MISSING: Any = object()


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...


def linear_progress(read: int, age: float, duration: float) -> int:
    return min(99, int(100 * age / duration)) if duration > 0 else 0


def honest_estimate(read: int, duration: float) -> Any:
    return max(1, round(duration)) if duration != float("inf") else 600


def no_estimate(read: int, duration: float) -> Any:
    return MISSING


def zero_progress(read: int, age: float, duration: float) -> int:
    return 0


@attrs.define
class ScriptedTask:
    """The truth about one task, and what the server said about it."""

    id: str
    model: str
    created: float  # the clock's monotonic time
    created_wall: int  # what the `created` field says (Unix seconds)
    duration: float  # float("inf"): never ends
    final: str = "completed"  # completed | failed | cancelled
    progress: ProgressFn = linear_progress
    estimate: EstimateFn = honest_estimate
    send_progress: bool = True
    pending_for: float = 0.5
    vanish_at: float | None = None  # answers 404 from then on (expired)
    reads: list[float] = attrs.Factory(list)
    gets: int = 0
    batch_reads: int = 0

    @property
    def end(self) -> float:
        return self.created + self.duration

    @property
    def results(self) -> list[str]:
        return [f"{BASE_URL}/results/{self.id}/0.png"] if self.final == "completed" else []

    def is_done_at(self, now: float) -> bool:
        return now >= self.end

    def body(self, now: float) -> dict[str, Any] | None:
        """The task as read at `now`, or None once it vanished."""
        if self.vanish_at is not None and now >= self.vanish_at:
            return None
        age = now - self.created
        read_no = len(self.reads)
        out: dict[str, Any] = {
            "id": self.id,
            "object": "image.generation.task",
            "created": self.created_wall,
            "model": self.model,
            "type": "image",
        }
        info: dict[str, Any] = {"can_cancel": not self.is_done_at(now)}
        if self.is_done_at(now):
            out["status"] = self.final
            out["progress"] = 100 if self.final == "completed" else 40
            if self.final == "completed":
                out["results"] = self.results
            elif self.final == "failed":
                out["error"] = {
                    "code": "content_policy_violation",
                    "message": "blocked",
                    "type": "task_error",
                }
        else:
            out["status"] = "pending" if age < self.pending_for else "processing"
            if self.send_progress:
                out["progress"] = max(0, min(100, self.progress(read_no, age, self.duration)))
        estimate = self.estimate(read_no, self.duration)
        if estimate is not MISSING:
            info["estimated_time"] = estimate
        out["task_info"] = info
        return out


@attrs.frozen
class Request:
    time: float
    method: str
    path: str
    ids: tuple[str, ...] = ()
    status: int = 200


# A batch behaviour: (server, requested ids, batch request number) -> response.
BatchFn = Callable[["HostileServer", list[str], int], httpx.Response]


def batch_ok(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    return server.batch_answer(ids)


def batch_absent(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    return server.not_found("not_found")


_ID_CHARS = string.ascii_lowercase + string.digits
_TASK_PATH = re.compile(r"^/v1/tasks/(task-unified-[0-9]+-[a-z0-9]+)$")


class HostileServer:
    """An httpx handler answering Evolink's task routes with hostile hints."""

    def __init__(
        self,
        clock: Clock,
        *,
        batch: BatchFn | None = batch_ok,
        on_create: Callable[[HostileServer, str, int], ScriptedTask] | None = None,
    ) -> None:
        self.clock = clock
        self.tasks: dict[str, ScriptedTask] = {}
        self.requests: list[Request] = []
        self.batch = batch  # None: the route does not exist (404)
        self.on_create = on_create
        self._counter = 0
        self._batch_number = 0
        self._creates_by_model: dict[str, int] = {}

    # -- tasks -------------------------------------------------------------------------

    def new_id(self) -> str:
        self._counter += 1
        n = self._counter
        suffix = "".join(_ID_CHARS[(n * 7919 + i * 104729) % 36] for i in range(8))
        return f"task-unified-{int(self.clock.time())}-{suffix}{n}"

    def add(self, model: str = "gpt-image-2", duration: float = 10.0, **kw: Any) -> ScriptedTask:
        task = ScriptedTask(
            id=self.new_id(),
            model=model,
            created=self.clock.monotonic(),
            created_wall=int(self.clock.time()),
            duration=duration,
            **kw,
        )
        self.tasks[task.id] = task
        return task

    def body_now(self, task: ScriptedTask) -> dict[str, Any]:
        body = task.body(self.clock.monotonic())
        assert body is not None
        return body

    # -- counting ----------------------------------------------------------------------

    def batch_requests(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/tasks/batch"]

    def get_requests(self) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.path.startswith("/v1/tasks/")]

    def read_requests(self) -> int:
        return len(self.batch_requests()) + len(self.get_requests())

    # -- answers -----------------------------------------------------------------------

    @staticmethod
    def not_found(code: str = "task_not_found") -> httpx.Response:
        return httpx.Response(
            404,
            json={"error": {"code": code, "message": "not found", "type": "invalid_request_error"}},
        )

    def batch_answer(
        self, ids: Sequence[str], *, extra: Sequence[dict[str, Any]] = ()
    ) -> httpx.Response:
        """The honest batch answer (unknown and vanished ids absent), plus `extra` entries."""
        now = self.clock.monotonic()
        data: list[dict[str, Any]] = []
        for task_id in ids:
            task = self.tasks.get(task_id)
            if task is None:
                continue
            body = task.body(now)
            if body is None:
                continue
            task.reads.append(now)
            task.batch_reads += 1
            data.append(body)
        data.extend(extra)
        return httpx.Response(200, json={"data": data})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.monotonic()
        path = request.url.path
        if request.method == "GET" and (match := _TASK_PATH.match(path)):
            task = self.tasks.get(match.group(1))
            body = None
            if task is not None:
                body = task.body(now)
            status = 200 if body is not None else 404
            self.requests.append(Request(now, "GET", path, (match.group(1),), status))
            if task is None or body is None:
                return self.not_found()
            task.reads.append(now)
            task.gets += 1
            return httpx.Response(200, json=body)
        if request.method == "POST" and path == "/v1/tasks/batch":
            ids = list(json.loads(request.content).get("task_ids", []))
            self._batch_number += 1
            if self.batch is None:
                response = self.not_found("not_found")
            else:
                response = self.batch(self, ids, self._batch_number)
            self.requests.append(Request(now, "POST", path, tuple(ids), response.status_code))
            return response
        if request.method == "POST" and path == "/v1/images/generations":
            body = json.loads(request.content)
            model = str(body.get("model", "gpt-image-2"))
            index = self._creates_by_model.get(model, 0)
            self._creates_by_model[model] = index + 1
            if self.on_create is not None:
                task = self.on_create(self, model, index)
            else:
                task = self.add(model, 10.0)
            self.requests.append(Request(now, "POST", path, (task.id,)))
            answer = self.body_now(task)
            answer["usage"] = {
                "billing_rule": "per_call",
                "credits_reserved": 1,
                "user_group": "default",
            }
            return httpx.Response(200, json=answer)
        self.requests.append(Request(now, request.method, path, (), 404))
        return self.not_found("not_found")

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


class RealClock:
    """The system clock, for the blocking client (which takes no `clock=`)."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def monotonic(self) -> float:
        return time.monotonic() - self._start

    def time(self) -> float:
        return time.time()


# -- helpers for the tests ------------------------------------------------------------------


def task_of(server: HostileServer, task: ScriptedTask) -> Task:
    """The `evolink.Task` a create would have answered for `task` (read now)."""
    return Task.from_dict(server.body_now(task))


def client_for(server: HostileServer, clock: Any, **options: Any) -> AsyncEvolink:
    return AsyncEvolink(
        api_key=API_KEY, base_url=BASE_URL, transport=server.transport(), clock=clock, **options
    )


@attrs.define
class Ended:
    """How one wait ended: its value or its error, and the virtual time it ended at."""

    value: Any = None
    error: BaseException | None = None
    at: float | None = None  # None: still waiting at the watchdog's deadline

    @property
    def finished(self) -> bool:
        return self.at is not None


async def within(clock: Any, seconds: float, fn: Callable[[], Any]) -> Ended:
    """Run `fn()` but give up at `seconds` of virtual time (a wait that never ends)."""
    ended = Ended()
    async with anyio.create_task_group() as group:

        async def guard() -> None:
            await clock.sleep(seconds)
            group.cancel_scope.cancel()

        async def body() -> None:
            try:
                ended.value = await fn()
            except Exception as exc:  # noqa: BLE001 - any error is a finding to report
                ended.error = exc
            ended.at = clock.monotonic()
            group.cancel_scope.cancel()

        group.start_soon(guard)
        group.start_soon(body)
    return ended


def storm_reads(task: ScriptedTask, *, deadline: float | None = None) -> list[str]:
    """Reads that break "every read after the first comes at least 2 % of the task's age
    and 20 ms after the one before" (waiting.md, "never a storm"); a read at a wait's
    `deadline` (the last before its timeout, promised by tasks.wait) is exempt."""
    bad = []
    for before, after in zip(task.reads, task.reads[1:], strict=False):
        if deadline is not None and abs(after - deadline) < 1e-6:
            continue
        age = before - task.created
        # (or half a second near a hinted end: waiting.md, "never a storm")
        if after - before < max(0.02, min(0.02 * age, 0.5)) - 1e-6:
            bad.append(f"read at {after:.3f} only {after - before:.3f}s after {before:.3f}")
    return bad
