"""One watcher per batch: it decides when to read each task, and reads many at once.

Each task is read when its `ReadPlan` says it is likely done (about two reads a task). Where
the server has `POST /v1/tasks/batch`, every task due within a short window goes into one
request of up to 50 ids; where it answers 404, the watcher falls back to one GET per task.
A task is never read twice at once. Updates from outside (callbacks, via `feed`) are hints:
they trigger a read that confirms them.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import attrs

from evolink._converter import parse_task, task_parser
from evolink._errors import (
    APIConnectionError,
    AuthenticationError,
    EvolinkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    ValidationError,
    WaitTimeoutError,
)
from evolink._estimate import ReadPlan
from evolink._ids import task_path
from evolink._models import Task, TaskType
from evolink._retry import RequestKind
from evolink._transport import Pacer, RequestCount, Transport

#: Ids per `POST /v1/tasks/batch` (the server's limit).
BATCH_READ_SIZE = 50
#: With batch reads, a due read waits this share of the task's duration (bounded below)
#: for others to join its request: fewer requests for a little latency.
BATCH_WINDOW_SHARE = 0.03
BATCH_WINDOW_BOUNDS = (0.01, 0.5)
#: A batch read that has room takes tasks due within this share of their duration.
BATCH_LOOKAHEAD_SHARE = 0.25
#: After a failed read, read again after this long (doubling per failure, capped).
READ_ERROR_DELAY = 1.0
READ_ERROR_DELAY_MAX = 30.0
#: Reads of one task failing this many times in a row (about 12 minutes of trying) end it
#: as unknown: a poll loop needs a deadline.
MAX_READ_FAILURES = 30
#: Batch reads answered by a server error this many times in a row: the endpoint is taken
#: for missing, as after any other unusable answer.
MAX_BATCH_READ_FAILURES = 3
#: How long a task may run before the SDK stops waiting for it, by what it makes. Its
#: outcome then says so (`abandoned`, code `task_deadline`); it may still end on the server.
DEFAULT_TASK_DEADLINES: Mapping[TaskType, float] = {
    TaskType.IMAGE: 3600.0,
    TaskType.AUDIO: 3600.0,
    TaskType.VIDEO: 4 * 3600.0,
}
#: For a task of a kind the table does not name.
DEFAULT_TASK_DEADLINE = 4 * 3600.0


def task_deadline(task: Task, override: float | None = None) -> float:
    """Seconds the SDK waits for `task` to end: `override`, else its kind's default."""
    if override is not None:
        return override
    if task.type is None:
        return DEFAULT_TASK_DEADLINE
    return DEFAULT_TASK_DEADLINES.get(task.type, DEFAULT_TASK_DEADLINE)


def _as_is(data: Any) -> Any:
    return data


@attrs.define
class _Watched:
    task: Task
    plan: ReadPlan
    due: float
    deadline: float
    reading: bool = False
    confirm: bool = False
    failures: int = 0


@attrs.define(eq=False)
class Watcher:
    """Reads a set of tasks until each ends, calling `on_update` and `on_end`.

    `on_lost` is called for a task the server no longer knows (404), one whose reads keep
    failing, and one still running at its deadline (with a `WaitTimeoutError`).
    """

    _transport: Transport
    _on_update: Callable[[Task], None]
    _on_end: Callable[[Task], None]
    _on_lost: Callable[[str, EvolinkError], None]
    _pacer: Pacer | None = None
    _limiter: anyio.CapacityLimiter = attrs.field(factory=lambda: anyio.CapacityLimiter(8))
    batch_reads: bool = True
    #: Seconds a task may run before it is given up; None: by kind (`task_deadline`).
    task_deadline: float | None = None
    _watched: dict[str, _Watched] = attrs.field(factory=dict)
    _heap: list[tuple[float, int, str]] = attrs.field(factory=list)
    _seq: itertools.count[int] = attrs.field(factory=itertools.count)
    _changed: anyio.Event = attrs.field(factory=anyio.Event)
    reads: int = 0
    #: HTTP requests its reads sent, as the transport counted them.
    requests: RequestCount = attrs.field(factory=RequestCount)
    _batch_failures: int = 0

    @property
    def read_requests(self) -> int:
        """HTTP requests sent to read tasks (a server log would show as many)."""
        return self.requests.sent

    def watch(self, task: Task, *, started: float) -> None:
        """Start watching a task whose create answered at `started` (monotonic)."""
        plan = ReadPlan(started=started)
        now = self._transport.clock.monotonic()
        plan.observe(task, now)
        deadline = started + task_deadline(task, self.task_deadline)
        due = min(plan.next_read_at(now, task.status), deadline)
        watched = _Watched(task=task, plan=plan, due=due, deadline=deadline)
        self._watched[task.id] = watched
        self._schedule(task.id, watched)

    def forget(self, task_id: str) -> Task | None:
        """Stop watching a task; return its last known state."""
        watched = self._watched.pop(task_id, None)
        return watched.task if watched is not None else None

    def feed(self, payload: Mapping[str, Any] | Task) -> bool:
        """Take an update from outside (a callback's body); True if it is for a watched task.

        The update is not trusted: the task is read again at once to confirm it.
        """
        try:
            task = payload if isinstance(payload, Task) else parse_task(payload)
        except ResponseDecodeError:
            return False
        watched = self._watched.get(task.id)
        if watched is None:
            return False
        if watched.reading:
            watched.confirm = True
        else:
            watched.due = self._transport.clock.monotonic()
            self._schedule(task.id, watched)
        return True

    def _schedule(self, task_id: str, watched: _Watched) -> None:
        heapq.heappush(self._heap, (watched.due, next(self._seq), task_id))
        self._changed.set()

    def _next_due(self) -> float | None:
        """The earliest due time of a task not being read (dropping stale heap entries)."""
        while self._heap:
            due, _, task_id = self._heap[0]
            watched = self._watched.get(task_id)
            if watched is None or watched.reading or watched.due != due:
                heapq.heappop(self._heap)
                continue
            return due
        return None

    def _window(self, task_id: str) -> float:
        if not self.batch_reads:
            return 0.0
        low, high = BATCH_WINDOW_BOUNDS
        watched = self._watched[task_id]
        return min(high, max(low, BATCH_WINDOW_SHARE * watched.plan.predicted_duration()))

    def _take_due(self, now: float) -> list[str]:
        due: list[str] = []
        while (first := self._next_due()) is not None and first <= now:
            due.append(self._pop_for_reading())
        if self.batch_reads and due:
            # The request goes out anyway: fill its last places with tasks due soon, so
            # their reads ride along instead of costing requests of their own.
            while len(due) % BATCH_READ_SIZE and (first := self._next_due()) is not None:
                _, _, task_id = self._heap[0]
                ahead = BATCH_LOOKAHEAD_SHARE * self._watched[task_id].plan.predicted_duration()
                if first > now + ahead:
                    break
                due.append(self._pop_for_reading())
        return due

    def _pop_for_reading(self) -> str:
        _, _, task_id = heapq.heappop(self._heap)
        self._watched[task_id].reading = True
        return task_id

    async def run(self) -> None:
        """Read tasks as they fall due, until cancelled."""
        clock = self._transport.clock
        async with anyio.create_task_group() as tg:
            while True:
                first = self._next_due()
                if first is None:
                    await self._wait_for_change(None)
                    continue
                _, _, first_id = self._heap[0]
                wake = first + self._window(first_id)
                now = clock.monotonic()
                if wake > now:
                    await self._wait_for_change(wake - now)
                    if clock.monotonic() < wake:
                        continue  # something changed before the wake-up: plan again
                ids = self._take_due(clock.monotonic())
                size = BATCH_READ_SIZE if self.batch_reads else 1
                for start in range(0, len(ids), size):
                    tg.start_soon(self._read, ids[start : start + size])

    async def _wait_for_change(self, seconds: float | None) -> None:
        changed = self._changed
        if changed.is_set():
            self._changed = anyio.Event()
            return
        async with anyio.create_task_group() as tg:

            async def on_change() -> None:
                await changed.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(on_change)
            if seconds is not None:
                await self._transport.clock.sleep(seconds)
                tg.cancel_scope.cancel()
        if changed.is_set():
            self._changed = anyio.Event()

    async def _read(self, ids: list[str]) -> None:
        found: dict[str, Task] = {}
        try:
            if self.batch_reads:
                found = await self._read_batch(ids)
            else:
                async with anyio.create_task_group() as tg:
                    for task_id in ids:
                        tg.start_soon(self._read_into, task_id, found)
        except (AuthenticationError, PermissionDeniedError) as exc:
            # The key may no longer read these tasks: retrying would poll forever.
            for task_id in ids:
                if self._watched.pop(task_id, None) is not None:
                    self._on_lost(task_id, exc)
            return
        except EvolinkError as exc:
            for task_id in ids:
                self._retry_later(task_id, exc)
            return
        now = self._transport.clock.monotonic()
        for task_id in ids:  # only what was asked: an answer may name other tasks
            task = found.get(task_id)
            if task is not None:
                self._take(task_id, task, now)

    async def _read_batch(self, ids: list[str]) -> dict[str, Task]:
        found: dict[str, Task] = {}
        data: list[Any] | None = None
        if not self._transport.batch_reads_unusable:  # learned by any batch
            try:
                data = await self._post_batch(ids)
            except RateLimitError:
                raise  # the server is busy, not the endpoint missing: read these later
            except EvolinkError as exc:
                self._batch_read_failed(exc)
        if data is None:
            self.batch_reads = not self._transport.batch_reads_unusable
            async with anyio.create_task_group() as tg:
                for task_id in ids:
                    tg.start_soon(self._read_into, task_id, found)
            return found
        self._batch_failures = 0
        for item in data:
            try:
                task = parse_task(item)
            except ResponseDecodeError:
                continue
            found[task.id] = task
        # An id the batch answer left out: read it alone (it may be gone: 404).
        missing = [task_id for task_id in ids if task_id not in found]
        if missing:
            async with anyio.create_task_group() as tg:
                for task_id in missing:
                    tg.start_soon(self._read_into, task_id, found)
        return found

    def _batch_read_failed(self, exc: EvolinkError) -> None:
        # The endpoint is undocumented: any answer that is not a list of tasks (a refusal
        # of any kind, another envelope, no JSON) means reading one by one, never giving
        # up on a task; a server error may pass, a few times.
        transient = isinstance(exc, APIConnectionError) or (
            isinstance(exc, ServerError) and exc.status_code != 501
        )
        self._batch_failures = self._batch_failures + 1 if transient else MAX_BATCH_READ_FAILURES
        if self._batch_failures >= MAX_BATCH_READ_FAILURES:
            self._transport.batch_reads_unusable = True  # for the client's life

    async def _post_batch(self, ids: list[str]) -> list[Any]:
        self.reads += len(ids)
        answer = await self._send("POST", "/v1/tasks/batch", {"task_ids": ids})
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, list):
            raise ResponseDecodeError(
                "batch read without a data list", status_code=200, body=answer
            )
        return data

    async def _read_into(self, task_id: str, found: dict[str, Task]) -> None:
        try:
            found.update(await self._read_single(task_id))
        except (AuthenticationError, PermissionDeniedError) as exc:
            if self._watched.pop(task_id, None) is not None:
                self._on_lost(task_id, exc)
        except ValidationError as exc:
            if self._watched.pop(task_id, None) is not None:
                self._on_lost(task_id, exc)
        except EvolinkError as exc:
            self._retry_later(task_id, exc)

    async def _read_single(self, task_id: str) -> dict[str, Task]:
        # Ids come from the server: one that is not a task id must not become a path.
        path = task_path(task_id)
        self.reads += 1
        try:
            task = await self._send("GET", path, None, parse=task_parser(task_id))
        except NotFoundError as exc:
            watched = self._watched.pop(task_id, None)
            if watched is not None:
                self._on_lost(task_id, exc)
            return {}
        return {task_id: task}

    async def _send(
        self, method: str, path: str, body: Any, *, parse: Callable[[Any], Any] = _as_is
    ) -> Any:
        # One attempt: the watcher's own schedule is the retry (`_retry_later` for a read
        # of one task; the fallback to one GET per task for a batch read).
        return await self._transport.send(
            RequestKind.READ,
            method,
            path,
            body=body,
            retries=0,
            pacer=self._pacer,
            limiter=self._limiter,
            counts=(self.requests,),
            parse=parse,
        )

    def _retry_later(self, task_id: str, error: EvolinkError) -> None:
        watched = self._watched.get(task_id)
        if watched is None or not watched.reading:
            return
        watched.reading = False
        watched.failures += 1
        if self._transport.clock.monotonic() >= watched.deadline:
            del self._watched[task_id]
            self._on_lost(task_id, WaitTimeoutError(watched.task, self._deadline_of(watched)))
            return
        if watched.failures >= MAX_READ_FAILURES:
            # Every read of it failing for this long: give it up rather than poll forever.
            del self._watched[task_id]
            self._on_lost(task_id, error)
            return
        delay = min(READ_ERROR_DELAY_MAX, READ_ERROR_DELAY * 2.0 ** min(watched.failures - 1, 16))
        watched.due = min(self._transport.clock.monotonic() + delay, watched.deadline)
        self._schedule(task_id, watched)

    def _deadline_of(self, watched: _Watched) -> float:
        return task_deadline(watched.task, self.task_deadline)

    def _take(self, task_id: str, task: Task, now: float) -> None:
        watched = self._watched.get(task_id)
        if watched is None:
            return
        watched.reading = False
        watched.failures = 0
        watched.task = task
        if task.is_terminal:
            del self._watched[task_id]
            self._on_end(task)
            return
        if now >= watched.deadline:
            # Still running (or in a status we do not know) at its deadline: stop waiting.
            del self._watched[task_id]
            self._on_lost(task_id, WaitTimeoutError(task, self._deadline_of(watched)))
            return
        watched.plan.observe(task, now)
        self._on_update(task)
        if watched.confirm:
            watched.confirm = False
            watched.due = now
        else:
            watched.due = min(watched.plan.next_read_at(now, task.status), watched.deadline)
        self._schedule(task_id, watched)
