"""A fake Evolink of our own, for attacking `max_poll_interval`: everything it says is ours.

Tasks end at `created + duration` on the shared `VirtualClock`; what they report while they
run (progress, `estimated_time`, status) comes from plain functions the test chooses, so it
can lie steadily, stick at 99, run backwards, jump, or say nothing. `POST /v1/tasks/batch`
can be switched off (404), reads can be answered 429 with a `Retry-After`, and every answer
can take a latency on the clock.

Every request is logged with its arrival time; each task keeps the arrival times of the
reads that named it, so a test measures the gaps between reads of a running task and how
late it was seen done.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from typing import Any

import attrs
import httpx

from evolink.testing import VirtualClock

API_KEY = "sk-evo-attack-poll-interval-SECRET-0123456789"

#: progress(task, elapsed seconds) -> what the task reports (None: no `progress` field).
Progress = Callable[["FakeTask", float], Any]
#: estimate(task) -> `task_info.estimated_time` (None: absent; anything else sent as is).
Estimate = Callable[["FakeTask"], Any]
#: duration(index) -> seconds the task with that creation index runs.
Duration = Callable[[int], float]
#: limited(server, request, now) -> None, or the Retry-After (a str, or "" for none) of a 429.
Limiter = Callable[["FakeServer", httpx.Request, float], "str | None"]


# -- progress behaviours ------------------------------------------------------------------


def honest(task: FakeTask, elapsed: float) -> Any:
    return int(100 * elapsed / task.duration)


def share(fraction: float) -> Progress:
    """A steady lie: `fraction` of the truth (a stage counter whose last stage is not told)."""

    def progress(task: FakeTask, elapsed: float) -> Any:
        return int(100 * fraction * elapsed / task.duration)

    return progress


def stuck_at(value: int) -> Progress:
    def progress(task: FakeTask, elapsed: float) -> Any:
        return value

    return progress


def backwards(task: FakeTask, elapsed: float) -> Any:
    return max(0, 99 - int(100 * elapsed / task.duration))


def jumping(task: FakeTask, elapsed: float) -> Any:
    """0, 95, 3, 90, ... by the second: nonsense that looks like news."""
    step = int(elapsed)
    return 95 - step % 7 if step % 2 else step % 5


def absent(task: FakeTask, elapsed: float) -> Any:
    return None


def quick_then_stuck(task: FakeTask, elapsed: float) -> Any:
    """Races to 95 in the first tenth of the estimate, then sits there."""
    return min(95, int(950 * elapsed / task.duration))


def far_ahead(task: FakeTask, elapsed: float) -> Any:
    """Claims the task is nearly done at once (a read soon: no late-read risk, but noise)."""
    return 99 if elapsed > 0 else 0


# -- estimates ----------------------------------------------------------------------------


def no_estimate(task: FakeTask) -> Any:
    return None


def true_estimate(task: FakeTask) -> Any:
    return round(task.duration)


def scaled_estimate(factor: float) -> Estimate:
    def estimate(task: FakeTask) -> Any:
        return task.duration * factor

    return estimate


def fixed_estimate(value: Any) -> Estimate:
    def estimate(task: FakeTask) -> Any:
        return value

    return estimate


# -- durations ----------------------------------------------------------------------------


def fixed(seconds: float) -> Duration:
    return lambda _index: seconds


def cycle(*seconds: float) -> Duration:
    return lambda index: seconds[index % len(seconds)]


def spread(low: float, high: float, count: int = 97) -> Duration:
    """Deterministic durations spread over [low, high] (a fixed permutation)."""

    def duration(index: int) -> float:
        return low + (high - low) * ((index * 37) % count) / (count - 1)

    return duration


@attrs.define(eq=False)
class FakeTask:
    id: str
    index: int
    model: str
    created: float  # monotonic arrival of its create
    duration: float
    #: Arrival times of every read that named it (GET or batch), with what it answered.
    reads: list[tuple[float, bool]] = attrs.field(factory=list)
    #: When the first answer saying it ended reached the client (arrival + latency).
    seen_done: float | None = None

    @property
    def end(self) -> float:
        return self.created + self.duration

    def running_at(self, now: float) -> bool:
        return now < self.end

    def read_times(self) -> list[float]:
        """Arrivals of the reads up to (and with) the first that found it ended."""
        times: list[float] = []
        for at, done in self.reads:
            times.append(at)
            if done:
                break
        return times

    def gaps(self) -> list[float]:
        """Time between the create and the first read, then between reads, up to the
        first read that found it ended (the reads that matter while it runs)."""
        times = [self.created, *self.read_times()]
        return [b - a for a, b in itertools.pairwise(times)]

    def max_gap(self) -> float:
        gaps = self.gaps()
        return max(gaps) if gaps else math.inf

    def lateness(self) -> float:
        """How long after its end it was seen done (inf: never)."""
        return math.inf if self.seen_done is None else self.seen_done - self.end

    def reads_while_running(self) -> int:
        return sum(1 for at, done in self.reads if not done)


@attrs.define(eq=False)
class Request:
    at: float
    method: str
    path: str
    ids: tuple[str, ...]
    status: int
    authorization: str | None


@attrs.define(eq=False, repr=False)
class FakeServer:
    clock: VirtualClock
    durations: Duration = attrs.field(factory=lambda: fixed(20.0))
    progress: Progress = honest
    estimate: Estimate = no_estimate
    #: Whether `POST /v1/tasks/batch` exists (else 404, as a server without it).
    batch_endpoint: bool = True
    #: Seconds (on the clock) each answer takes; the state is taken on arrival.
    latency: float = 0.0
    #: Reads (GET and batch) answered 429 while this says so.
    limiter: Limiter | None = None
    #: Status a running task reports: "processing", or "pending" for its first `queued` s.
    queued: float = 0.0
    #: Ends as "failed" instead of "completed" for indices this says so of.
    fails: Callable[[int], bool] = lambda _index: False
    #: Seconds added to every `created` stamp (a server clock ahead, or behind if < 0).
    skew: float = 0.0
    tasks: dict[str, FakeTask] = attrs.field(factory=dict)
    log: list[Request] = attrs.field(factory=list)
    _count: itertools.count[int] = attrs.field(factory=itertools.count)

    def __repr__(self) -> str:
        return f"FakeServer({len(self.tasks)} tasks, {len(self.log)} requests)"

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    # -- what tests ask -------------------------------------------------------------------

    def requests(self, method: str | None = None, prefix: str = "") -> list[Request]:
        return [
            r
            for r in self.log
            if (method is None or r.method == method) and r.path.startswith(prefix)
        ]

    def read_requests(self) -> list[Request]:
        """Every request that read tasks (GET of one, or a batch read), answered or not."""
        return [
            r
            for r in self.log
            if (r.method == "GET" and r.path.startswith("/v1/tasks/"))
            or (r.method == "POST" and r.path == "/v1/tasks/batch")
        ]

    def worst_gap(self) -> float:
        return max(task.max_gap() for task in self.tasks.values())

    def worst_lateness(self) -> float:
        return max(task.lateness() for task in self.tasks.values())

    def total_reads(self) -> int:
        return sum(len(task.read_times()) for task in self.tasks.values())

    # -- the server -----------------------------------------------------------------------

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.monotonic()
        method, path = request.method, request.url.path
        auth = request.headers.get("authorization")
        ids: tuple[str, ...] = ()
        if method == "POST" and path == "/v1/tasks/batch":
            body = json.loads(request.content or b"{}")
            ids = tuple(body.get("task_ids", ()))
        elif method == "GET" and path.startswith("/v1/tasks/"):
            ids = (path.removeprefix("/v1/tasks/"),)
        status, payload, headers = self._answer(request, method, path, ids, now)
        self.log.append(Request(now, method, path, ids, status, auth))
        if self.latency > 0:
            await self.clock.sleep(self.latency)
        answered = self.clock.monotonic()
        if status == 200 and ids:
            for task_id in ids:
                task = self.tasks.get(task_id)
                if task is not None and task.seen_done is None and not task.running_at(now):
                    task.seen_done = answered
        return httpx.Response(
            status,
            content=json.dumps(payload).encode(),  # NaN / Infinity as Python writes them
            headers={"content-type": "application/json", **headers},
        )

    def _answer(
        self, request: httpx.Request, method: str, path: str, ids: tuple[str, ...], now: float
    ) -> tuple[int, Any, dict[str, str]]:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return 401, _error("invalid_api_key", "bad key"), {}
        if method == "POST" and path.endswith("/generations"):
            return 200, self._create(request, path, now), {}
        if ids:
            if method == "POST" and not self.batch_endpoint:
                return 404, _error("not_found", "no route"), {}
            if self.limiter is not None:
                retry_after = self.limiter(self, request, now)
                if retry_after is not None:
                    headers = {"retry-after": retry_after} if retry_after else {}
                    return 429, _error("rate_limit_exceeded", "slow down"), headers
            views = []
            for task_id in ids:
                task = self.tasks.get(task_id)
                if task is None:
                    continue
                task.reads.append((now, not task.running_at(now)))
                views.append(self._view(task, now))
            if method == "GET":
                if not views:
                    return 404, _error("task_not_found", "no such task"), {}
                return 200, views[0], {}
            return 200, {"data": views}, {}
        return 404, _error("not_found", f"no route {path}"), {}

    def _create(self, request: httpx.Request, path: str, now: float) -> dict[str, Any]:
        body = json.loads(request.content or b"{}")
        index = next(self._count)
        task = FakeTask(
            id=f"task-unified-attack-{index:05d}",
            index=index,
            model=str(body.get("model", "unknown")),
            created=now,
            duration=float(self.durations(index)),
            # A create counts as the task's first look: its answer is "running".
        )
        task_kind = "video" if "videos" in path else "image"
        self.tasks[task.id] = task
        return self._view(task, now, kind=task_kind)

    def _view(self, task: FakeTask, now: float, kind: str = "image") -> dict[str, Any]:
        elapsed = now - task.created
        running = task.running_at(now)
        view: dict[str, Any] = {
            "id": task.id,
            "object": f"{kind}.generation.task",
            "model": task.model,
            "type": kind,
            "created": int(self.clock.time() - elapsed + self.skew),
            "usage": {"credits_reserved": 1.0, "billing_rule": "per_call", "user_group": "d"},
        }
        if running:
            view["status"] = "pending" if elapsed < self.queued else "processing"
            progress = self.progress(task, elapsed)
            if progress is not None:
                view["progress"] = progress
            info: dict[str, Any] = {"can_cancel": True}
            estimate = self.estimate(task)
            if estimate is not None:
                info["estimated_time"] = estimate
            view["task_info"] = info
            return view
        view["progress"] = 100
        view["task_info"] = {"can_cancel": False}
        if self.fails(task.index):
            view["status"] = "failed"
            view["error"] = {"code": "generation_failed", "message": "no", "type": "task_error"}
        else:
            view["status"] = "completed"
            view["results"] = [f"https://files.example/{task.id}.png"]
        return view


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": "invalid_request_error"}}


# -- 429 policies -------------------------------------------------------------------------


def limit_window(start: float, stop: float, retry_after: str = "5") -> Limiter:
    """Every read arriving in [start, stop) is answered 429 with this Retry-After."""

    def limited(server: FakeServer, request: httpx.Request, now: float) -> str | None:
        return retry_after if start <= now < stop else None

    return limited


def limit_ids(
    start: float, stop: float, limited_ids: Callable[[str], bool], retry_after: str = "10"
) -> Limiter:
    """Reads naming a task `limited_ids` picks, arriving in [start, stop), are answered 429."""

    def limited(server: FakeServer, request: httpx.Request, now: float) -> str | None:
        if not start <= now < stop:
            return None
        if request.method == "GET":
            ids = [request.url.path.removeprefix("/v1/tasks/")]
        else:
            ids = json.loads(request.content or b"{}").get("task_ids", [])
        return retry_after if any(limited_ids(task_id) for task_id in ids) else None

    return limited


def limit_rate(per_second: int, retry_after: str = "5") -> Limiter:
    """At most `per_second` reads are answered per whole second of the clock; the rest 429."""
    seen: dict[int, int] = {}

    def limited(server: FakeServer, request: httpx.Request, now: float) -> str | None:
        second = math.floor(now)
        seen[second] = seen.get(second, 0) + 1
        return retry_after if seen[second] > per_second else None

    return limited
