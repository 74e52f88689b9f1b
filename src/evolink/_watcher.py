"""The watcher: it decides when to read each task, and reads many at once.

One per client (held by its `Engine`), shared by every batch and every wait: each registers
its tasks with a `Listener`. Each task is read when its `ReadPlan` says it is likely done,
or by the client's `max_poll_interval` after its last read, if that is sooner.
Where the server has `POST /v1/tasks/batch`, every task due within a short window goes into
one request of up to 50 ids, whoever waits for it; where it answers 404, the watcher falls
back to one GET per task. A task is never read twice at once. Updates from outside
(callbacks, via `feed`) are hints: they trigger one read that confirms them for everyone.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
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
from evolink._estimate import BATCH_COSTS, GET_COSTS, HURRY_COSTS, MIN_DELAY, ReadCosts, ReadPlan
from evolink._ids import task_path
from evolink._models import Task, TaskType
from evolink._retry import RequestKind
from evolink._timing import MIN_SAMPLES, Hint, Timings
from evolink._transport import Pacer, RequestCount, Transport

#: Callbacks kept for tasks no one watches yet: one may overtake the answer of a wait's
#: first read, or come just before a party watches its task. A party that then watches
#: it reads it at once. Bounded: anyone who can reach the callback URL can send them.
HINTS_KEPT = 1024
#: Ids per `POST /v1/tasks/batch` (the server's limit).
BATCH_READ_SIZE = 50
#: With batch reads, a due read waits this share of the task's duration (bounded below)
#: for others to join its request: fewer requests for a little latency.
BATCH_WINDOW_SHARE = 0.01
BATCH_WINDOW_BOUNDS = (0.01, 0.25)
#: Batch requests are spaced so that there are at most this many per task ending (at the
#: rate tasks have been ending), up to `BATCH_SPACING_MAX` apart: the request budget sets
#: the cadence, and every read due in between shares the next request.
BATCH_REQUESTS_PER_END = 0.25
BATCH_SPACING_MAX = 0.5
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


@attrs.define(eq=False)
class Listener:
    """One party waiting for tasks (a batch, a wait): told of updates, ends and losses.

    `on_lost` is called for a task the server no longer knows (404), one whose reads keep
    failing, and one still running at this listener's deadline (a `WaitTimeoutError`).
    The counts are of reads made of this listener's tasks (a batch request shared with
    other listeners counts for each).
    """

    on_update: Callable[[Task], None]
    on_end: Callable[[Task], None]
    on_lost: Callable[[str, EvolinkError], None]
    pacer: Pacer | None = None
    limiter: anyio.CapacityLimiter | None = None
    batch_reads: bool = True
    #: Seconds a task may run before it is given up; None: by kind (`task_deadline`).
    task_deadline: float | None = None
    #: A task of this listener's alone is read with a GET, as every server has it (a wait
    #: of one task reads as it always did); batch reads are for sharing with others.
    alone_by_get: bool = False
    #: Only the last few of this listener's tasks are left, and nothing more will come (a
    #: batch that has created all it will): their reads are cheaper (`Watcher.hurry`).
    hurry: bool = False
    reads: int = 0
    #: HTTP requests that read this listener's tasks, as the transport counted them.
    requests: RequestCount = attrs.field(factory=RequestCount)

    @property
    def read_requests(self) -> int:
        """HTTP requests sent to read this listener's tasks (a shared one counts for each)."""
        return self.requests.sent


@attrs.define
class _Watched:
    task: Task
    plan: ReadPlan
    due: float
    #: Each listener, with the monotonic time it stops waiting.
    listeners: dict[Listener, float]
    #: Added to each planned read after the first: a callback is expected by then.
    grace: float = 0.0
    reading: bool = False
    confirm: bool = False
    #: Due now for a reason of its own (a deadline, a callback, a late start): read it
    #: without waiting for others to share the request.
    urgent: bool = False
    #: Registered while a wait by id read it (`Watcher.hold`): that read is this one's.
    held: bool = False
    failures: int = 0
    #: When it was last read (or registered): the client's ceiling counts from there.
    read_at: float = 0.0
    #: A failed read's back-off (a 429's `Retry-After`, errors): no replanning reads it
    #: sooner, the client's ceiling included.
    not_before: float = -math.inf
    #: Its next read is the client's ceiling's, not its plan's (`Watcher._planned`): due
    #: on the ceiling's grid, it rides along in requests only just before then.
    ceiling: bool = False
    #: The latest its next read may go out, whatever company it waits for: the client's
    #: ceiling (`Watcher._planned`); inf: none.
    send_by: float = math.inf
    #: ...as `Watcher._schedule` last filed it in `Watcher._direct` (a wait's deadline
    #: included); inf: not filed.
    filed_by: float = math.inf

    @property
    def deadline(self) -> float:
        return min(self.listeners.values())

    @property
    def batch_reads(self) -> bool:
        return all(listener.batch_reads for listener in self.listeners)

    @property
    def first(self) -> Listener:
        return next(iter(self.listeners))


@attrs.define(eq=False)
class Watcher:
    """Reads the tasks its listeners registered until each ends (see the module's doc)."""

    _transport: Transport
    timings: Timings = attrs.field(factory=Timings)
    #: The longest wait between two reads of a task, if the client sets one
    #: (`max_poll_interval`): the learned plan may read sooner, never later.
    max_gap: float | None = None
    #: Reads of parties without a limiter of their own (waits): half the client's
    #: connections, so that creates still find some (a batch's reads use its own limiter).
    _limiter: anyio.CapacityLimiter = attrs.field(init=False)
    _watched: dict[str, _Watched] = attrs.field(factory=dict)
    _heap: list[tuple[float, int, str]] = attrs.field(factory=list)
    #: Reads that must go out by a time, whatever company they wait for (the client's
    #: ceiling, a wait's deadline), by that time: `run` wakes for the first.
    _direct: list[tuple[float, int, str]] = attrs.field(factory=list)
    _seq: itertools.count[int] = attrs.field(factory=itertools.count)
    _changed: anyio.Event = attrs.field(factory=anyio.Event)
    reads: int = 0
    #: Every HTTP request its reads sent, as the transport counted them.
    requests: RequestCount = attrs.field(factory=RequestCount)
    _batch_failures: int = 0
    _ends: deque[float] = attrs.field(factory=lambda: deque(maxlen=64))
    _last_batch: float = -math.inf
    #: Ids being read outside the watcher (a wait by id's first read), with their count.
    _held: dict[str, int] = attrs.field(factory=dict)
    #: Callbacks for tasks not watched when they came, oldest first (`HINTS_KEPT`), each
    #: with the reads of its task then out (`hold`): their answers may predate it.
    _hints: OrderedDict[str, int] = attrs.field(factory=OrderedDict)

    def __attrs_post_init__(self) -> None:
        self._limiter = anyio.CapacityLimiter(max(8, self._transport.max_connections // 2))

    @property
    def read_requests(self) -> int:
        """HTTP requests sent to read tasks (a server log would show as many)."""
        return self.requests.sent

    def watch(
        self,
        task: Task,
        listener: Listener,
        *,
        started: float,
        deadline: float | None = None,
        grace: float = 0.0,
    ) -> None:
        """Read `task` (created at monotonic `started`) for `listener` until it ends.

        `deadline`: the monotonic time the listener stops waiting; by default, the task's
        kind's deadline (`task_deadline`) from `started`.
        """
        if deadline is None:
            deadline = started + task_deadline(task, listener.task_deadline)
        now = self._transport.clock.monotonic()
        watched = self._watched.get(task.id)
        if watched is not None:
            # Another party waits for it already: share its reads and its plan.
            watched.listeners[listener] = deadline
            if deadline < watched.due and not watched.reading:
                watched.due = deadline
                watched.urgent = True
                self._schedule(task.id, watched)
            return
        plan = ReadPlan(
            started=started,
            timing=self.timings.for_model(task.model),
            costs=self._costs((listener,), others=len(self._watched)),
        )
        plan.observe(task, now)
        planned, capped, send_by = self._planned(
            plan, task, 0.0, now, since=now, batch_reads=listener.batch_reads
        )
        due = min(planned, deadline)
        held = task.id in self._held
        older = self._hints.pop(task.id, None)  # the reads out before its callback came
        hinted = older is not None
        if hinted and not held:
            due = now  # a callback came before the watch: confirm it now
        watched = _Watched(
            task=task,
            plan=plan,
            due=due,
            listeners={listener: deadline},
            grace=grace,
            urgent=capped or due < planned or planned - now <= 2 * MIN_DELAY,
            reading=held,
            confirm=held and bool(older),  # the read out left before the callback came
            held=held,
            read_at=now,
            ceiling=capped,
            send_by=send_by,
        )
        self._watched[task.id] = watched
        if not held:
            self._schedule(task.id, watched)

    def hold(self, task_id: str) -> None:
        """A read of `task_id` is going out elsewhere (a wait by id's first read): should
        the task be registered before it answers, take that read rather than make one."""
        self._held[task_id] = self._held.get(task_id, 0) + 1

    def release(self, task_id: str, task: Task | None) -> None:
        """The read `hold` announced answered `task` (None: it failed or was given up)."""
        older = self._hints.get(task_id)
        if older:
            self._hints[task_id] = older - 1  # a read out when the callback came
        elif older is not None and task is not None and not task.is_terminal:
            # A read sent after the callback found the task running: that answers it (a
            # party that watches it now reads as planned). One that found it ended is
            # kept: a party still holding an older state reads it at once.
            del self._hints[task_id]
        left = self._held.pop(task_id, 0) - 1
        if left > 0:
            self._held[task_id] = left  # another read of it is out: that one delivers
            return
        watched = self._watched.get(task_id)
        if watched is None or not watched.held:
            return
        watched.held = False
        now = self._transport.clock.monotonic()
        if task is not None:
            self._take(task_id, task, now)
        else:
            watched.reading = False
            watched.due = now
            watched.urgent = True
            self._schedule(task_id, watched)

    def _costs(self, listeners: Iterable[Listener], *, others: int) -> ReadCosts:
        """The price of a read of a task that `listeners` wait for, with `others` tasks
        watched beside it: a task read alone goes by GET (`_take_due`), whatever the
        server has, and is priced so."""
        listeners = list(listeners)
        if any(listener.hurry for listener in listeners):
            return HURRY_COSTS
        alone = others == 0 and all(listener.alone_by_get for listener in listeners)
        if not alone and self._batch_reads(all(listener.batch_reads for listener in listeners)):
            return BATCH_COSTS
        return GET_COSTS

    def hurry(self, listener: Listener, hurry: bool = True) -> None:
        """Say whether `listener` waits only for its last few tasks, with nothing more to
        come (`Listener.hurry`); its waiting tasks' next reads come sooner if so."""
        if listener.hurry == hurry:
            return
        listener.hurry = hurry
        if not hurry:
            return  # each task's next read takes the usual price again
        now = self._transport.clock.monotonic()
        for task_id, watched in self._watched.items():
            if watched.reading or listener not in watched.listeners:
                continue
            watched.plan.costs = HURRY_COSTS
            self._plan_sooner(task_id, watched, now)

    def _batch_reads(self, wanted: bool) -> bool:
        return wanted and not self._transport.batch_reads_unusable

    @property
    def batch_reads_usable(self) -> bool:
        """Whether batch reads are not (yet) known to be unusable on this server."""
        return not self._transport.batch_reads_unusable

    def current(self, task_id: str) -> Task | None:
        """The last state read of `task_id`, if it is watched."""
        watched = self._watched.get(task_id)
        return None if watched is None else watched.task

    async def read_together(
        self, ids: list[str], counts: tuple[RequestCount, ...] = ()
    ) -> dict[str, Task]:
        """One batch read of `ids` (tasks no one watches yet): the tasks it brought.
        `counts`: more counts of the request (the parties it reads for).

        Raises:
            EvolinkError: the read failed (judged as any batch read's failure).
        """
        try:
            data = await self._post_batch(ids, counts)
        except RateLimitError:
            raise
        except EvolinkError as exc:
            self._batch_read_failed(exc)
            raise
        self._batch_failures = 0
        return _tasks_in(data)

    def watches(self, task_id: str, listener: Listener | None = None) -> bool:
        """Whether the task is watched (for `listener`, if given)."""
        watched = self._watched.get(task_id)
        return watched is not None and (listener is None or listener in watched.listeners)

    def forget(self, task_id: str, listener: Listener) -> Task | None:
        """Stop watching a task for `listener`; return its last known state."""
        watched = self._watched.get(task_id)
        if watched is None or listener not in watched.listeners:
            return None
        del watched.listeners[listener]
        if not watched.listeners:
            del self._watched[task_id]
        return watched.task

    def feed(self, payload: Mapping[str, Any] | Task, listener: Listener | None = None) -> bool:
        """Take an update from outside (a callback's body); True if it is for a watched task
        (of `listener`, if given).

        The update is not trusted: the task is read again at once, once for every party
        waiting for it, to confirm it. For a task no one watches yet, it is kept
        (`HINTS_KEPT`), and the first party to watch the task reads it at once; True if
        a wait's first read of it is out (without `listener`): the wait will confirm it.
        """
        try:
            task = payload if isinstance(payload, Task) else parse_task(payload)
        except ResponseDecodeError:
            return False
        if task.id not in self._watched:
            self._hints[task.id] = self._held.get(task.id, 0)
            self._hints.move_to_end(task.id)
            if len(self._hints) > HINTS_KEPT:
                self._hints.popitem(last=False)
            return listener is None and task.id in self._held
        if not self.watches(task.id, listener):
            return False
        watched = self._watched[task.id]
        if watched.reading:
            watched.confirm = True
        else:
            watched.due = self._transport.clock.monotonic()
            watched.urgent = True
            self._schedule(task.id, watched)
        return True

    def _schedule(self, task_id: str, watched: _Watched) -> None:
        seq = next(self._seq)
        heapq.heappush(self._heap, (watched.due, seq, task_id))
        # A read may wait for another's company, as it always did, but not past the time
        # the client's ceiling sends it by (one set for an earlier plan is not this
        # read's), nor past a wait's deadline.
        by = watched.send_by if watched.send_by >= watched.due else math.inf
        if watched.due >= watched.deadline:
            by = min(by, watched.due)
        watched.filed_by = by
        if by < math.inf:
            heapq.heappush(self._direct, (by, seq, task_id))
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

    def _next_by(self) -> float | None:
        """The earliest time a read must go out by (`_direct`), dropping stale entries."""
        while self._direct:
            by, _, task_id = self._direct[0]
            watched = self._watched.get(task_id)
            if watched is None or watched.reading or watched.filed_by != by:
                heapq.heappop(self._direct)
                continue
            return by
        return None

    def _window(self, task_id: str) -> float:
        watched = self._watched[task_id]
        if watched.urgent or len(self._watched) < 2 or not self._batch_reads(watched.batch_reads):
            return 0.0
        if watched.plan.costs is HURRY_COSTS:
            # A batch's last few: the batch waits for each of them, so their reads do not
            # wait for company (nor for the request spacing), or a second becomes 1.25.
            return 0.0
        low, high = BATCH_WINDOW_BOUNDS
        return min(high, max(low, BATCH_WINDOW_SHARE * watched.plan.predicted_duration()))

    def _take_due(self, now: float) -> tuple[list[str], list[str]]:
        """Ids due now: those to read in batch requests, and those to read alone."""
        batched: list[str] = []
        alone: list[str] = []
        while (first := self._next_due()) is not None and first <= now:
            task_id = self._pop_for_reading()
            wanted = self._batch_reads(self._watched[task_id].batch_reads)
            (batched if wanted else alone).append(task_id)
        if batched:
            # The request goes out anyway: fill its last places with tasks due soon, so
            # their reads ride along instead of costing requests of their own.
            skipped: list[tuple[float, int, str]] = []
            while len(batched) % BATCH_READ_SIZE and (first := self._next_due()) is not None:
                entry = self._heap[0]
                watched = self._watched[entry[2]]
                ahead = BATCH_LOOKAHEAD_SHARE * watched.plan.predicted_duration()
                if first > now + ahead:
                    break
                if (
                    not self._batch_reads(watched.batch_reads)
                    or (watched.ceiling and first > now + self._ceiling_slack())
                    or watched.not_before > now
                    or watched.plan.earliest(now) > now
                ):
                    # (Read too lately to ride along: never a storm of reads of one task,
                    # even of reads that cost no request. A read the client's ceiling
                    # holds is a tick's, not an end's: it waits for its tick, unless that
                    # is a moment away; one backing off from a failed read waits for its
                    # back-off.)
                    skipped.append(heapq.heappop(self._heap))
                    continue
                batched.append(self._pop_for_reading())
            for entry in skipped:
                heapq.heappush(self._heap, entry)
        if len(batched) == 1 and len(self._watched) == 1:
            lone = self._watched[batched[0]]
            if all(listener.alone_by_get for listener in lone.listeners):
                alone.extend(batched)
                batched = []
        return batched, alone

    def _ceiling_slack(self) -> float:
        """How soon before its tick a read the client's ceiling holds may ride along in a
        request going out anyway: a tenth of the interval (a tenth more reads at most),
        rather than a request of its own a moment later."""
        return 0.0 if self.max_gap is None else 0.1 * self.max_gap

    def _pop_for_reading(self) -> str:
        _, _, task_id = heapq.heappop(self._heap)
        watched = self._watched[task_id]
        watched.reading = True
        watched.urgent = False
        return task_id

    async def run(self, reads: anyio.abc.TaskGroup) -> None:
        """Read tasks as they fall due, until cancelled; the reads run in `reads`."""
        clock = self._transport.clock
        while True:
            first = self._next_due()
            if first is None:
                await self._wait_for_change(None)
                continue
            _, _, first_id = self._heap[0]
            wake = first + self._window(first_id)
            by = self._next_by()  # (every turn: it drops the stale entries)
            if self._window(first_id) > 0:
                wake = max(wake, self._last_batch + self._spacing())
                if by is not None:
                    wake = min(wake, by)  # (not held behind another's wait for company)
            now = clock.monotonic()
            if wake > now:
                await self._wait_for_change(wake - now)
                if clock.monotonic() < wake:
                    continue  # something changed before the wake-up: plan again
            batched, alone = self._take_due(clock.monotonic())
            if batched:
                self._last_batch = clock.monotonic()
            for start in range(0, len(batched), BATCH_READ_SIZE):
                reads.start_soon(self._read_batched, batched[start : start + BATCH_READ_SIZE])
            for task_id in alone:
                reads.start_soon(self._read_alone, task_id)

    def _replan(self, model: str | None, now: float) -> None:
        """Plan the model's waiting tasks again (`_heed`).

        Reads planned on less knowledge (a task that started with the record empty) come
        sooner if the record says so; never later than planned.
        """
        for task_id, watched in self._watched.items():
            if watched.reading or watched.task.model != model:
                continue
            self._plan_sooner(task_id, watched, now)

    def _heed(self, task: Task, now: float) -> None:
        """What the read of `task` taught its model's record, for the model's other tasks:
        a model seen to show no progress has their part-way first reads skipped; a model
        that changed has them read now; a record under suspicion has them probe deep; a
        record grown to 16, 32, 64, ... ends has them planned again."""
        timing = self.timings.for_model(task.model)
        if timing.fell_quiet():
            self._skip_part_way(task.model, now)
        restarted, suspected = timing.news()
        if restarted:
            self._read_now(task.model, restarted, now)
        elif suspected:
            # Tasks not yet read probe deep (`_timing.SUSPECT`), the oldest first.
            self._replan(task.model, now)
        elif task.is_terminal and _grown(timing.ended):
            self._replan(task.model, now)

    def _skip_part_way(self, model: str | None, now: float) -> None:
        """The model's tasks show no progress: a first read still due part-way through a
        task's estimate, to see its progress, would only see 0; it comes at the
        estimate's end instead (later: the one replanning that may be)."""
        for task_id, watched in self._watched.items():
            if watched.reading or watched.task.model != model:
                continue
            if watched.plan.looks_part_way():
                planned, capped, watched.send_by = self._planned_for(watched, now)
                watched.due = max(planned, watched.not_before)
                watched.ceiling = capped
                watched.urgent = watched.urgent or capped
                self._schedule(task_id, watched)

    def _read_now(self, model: str | None, hints: frozenset[Hint], now: float) -> None:
        """The model changed, its tasks ending far sooner than the records of `hints`
        said: read the waiting tasks planned on them now, once (the reads may be long
        after they ended), then as the new records learn."""
        for task_id, watched in self._watched.items():
            if watched.reading or watched.task.model != model:
                continue
            soonest = max(watched.plan.earliest(now), watched.not_before)
            if watched.plan.follows(hints) and soonest < watched.due:
                watched.due = soonest
                self._schedule(task_id, watched)

    def _plan_sooner(self, task_id: str, watched: _Watched, now: float) -> None:
        """Plan the task's next read again: sooner if its plan now says so, never later."""
        planned, capped, send_by = self._planned_for(watched, now)
        planned = max(planned, watched.not_before)
        if planned < watched.due:
            watched.due = planned
            watched.ceiling = capped
            watched.send_by = send_by
            watched.urgent = watched.urgent or capped
            self._schedule(task_id, watched)

    def _planned_for(self, watched: _Watched, now: float) -> tuple[float, bool, float]:
        return self._planned(
            watched.plan,
            watched.task,
            watched.grace,
            now,
            since=watched.read_at,
            batch_reads=watched.batch_reads,
        )

    def _planned(
        self,
        plan: ReadPlan,
        task: Task,
        grace: float,
        now: float,
        *,
        since: float,
        batch_reads: bool,
    ) -> tuple[float, bool, float]:
        """When to read `task` next, as its plan has it (after a callback's `grace`);
        whether the client's `max_poll_interval` (`max_gap`, counted from the read at
        `since`) holds the read instead; and the latest it may go out, whatever company
        it waits for (inf: no such time)."""
        planned = plan.next_read_at(now, task.status) + grace
        gap = self.max_gap
        if gap is None:
            return planned, False, math.inf
        latest = since + gap
        if self._batch_reads(batch_reads):
            # On a grid of half the interval, so that the tasks it holds fall due together
            # (a request a tick for them all, not one per task), and a task joins it within
            # its interval but never just after a read.
            half = gap / 2
            latest = math.floor(latest / half + 1e-9) * half
        if planned < latest:
            # The plan's read, at its time; one waiting for company goes by the ceiling.
            return planned, False, latest
        at = max(now, latest)
        return at, True, at

    def _spacing(self) -> float:
        """The least time between batch requests, from the rate tasks have been ending."""
        ends = self._ends
        if len(ends) < 8 or ends[-1] <= ends[0]:
            return 0.0
        rate = (len(ends) - 1) / (ends[-1] - ends[0])
        return min(BATCH_SPACING_MAX, 1.0 / (BATCH_REQUESTS_PER_END * rate))

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

    async def _read_batched(self, ids: list[str]) -> None:
        await self._read(ids, batched=True)

    async def _read_alone(self, task_id: str) -> None:
        await self._read([task_id], batched=False)

    async def _read(self, ids: list[str], *, batched: bool) -> None:
        found: dict[str, Task] = {}
        try:
            if batched:
                found = await self._read_batch(ids)
            else:
                async with anyio.create_task_group() as tg:
                    for task_id in ids:
                        tg.start_soon(self._read_into, task_id, found)
        except anyio.get_cancelled_exc_class():
            # The party driving the reads left mid-read: the next one reads these again.
            self._unread(ids)
            raise
        except (AuthenticationError, PermissionDeniedError) as exc:
            # The key may no longer read these tasks: retrying would poll forever.
            for task_id in ids:
                self._lose(task_id, exc)
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
            async with anyio.create_task_group() as tg:
                for task_id in self._due_of(ids):
                    tg.start_soon(self._read_into, task_id, found)
            return found
        self._batch_failures = 0
        found.update(_tasks_in(data))
        # An id the batch answer left out: read it alone (it may be gone: 404).
        missing = [task_id for task_id in ids if task_id not in found]
        if missing:
            async with anyio.create_task_group() as tg:
                for task_id in missing:
                    tg.start_soon(self._read_into, task_id, found)
        return found

    def _due_of(self, ids: list[str]) -> list[str]:
        """Of `ids`, whose batch read failed, those due by now; the rest rode along in the
        request (`_take_due`) and go back to their own times: read by GET, a ride-along
        is a request of its own. (Against a server without the endpoint, the first wave
        of a batch of GETs was read about a third of a read a task more.)"""
        now = self._transport.clock.monotonic()
        due: list[str] = []
        for task_id in ids:
            watched = self._watched.get(task_id)
            if watched is None or not watched.reading:
                continue
            if watched.confirm:
                # A callback came during the refused request: the GET now is its read.
                watched.confirm = False
                due.append(task_id)
            elif watched.due > now:
                watched.reading = False
                self._schedule(task_id, watched)
            else:
                due.append(task_id)
        return due

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

    async def _post_batch(self, ids: list[str], counts: tuple[RequestCount, ...] = ()) -> list[Any]:
        self.reads += len(ids)
        listeners: set[Listener] = set()
        for task_id in ids:
            watched = self._watched.get(task_id)
            if watched is not None:
                for listener in watched.listeners:
                    listener.reads += 1
                    listeners.add(listener)
        # One attempt: the fallback to one GET per task is the better retry.
        first = self._watched.get(ids[0])
        answer = await self._send(
            "POST",
            "/v1/tasks/batch",
            {"task_ids": ids},
            listeners=listeners,
            listener=None if first is None else first.first,
            counts=counts,
        )
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, list):
            raise ResponseDecodeError(
                "batch read without a data list", status_code=200, body=answer
            )
        return data

    async def _read_into(self, task_id: str, found: dict[str, Task]) -> None:
        try:
            found.update(await self._read_single(task_id))
        except (AuthenticationError, PermissionDeniedError, ValidationError) as exc:
            self._lose(task_id, exc)
        except EvolinkError as exc:
            self._retry_later(task_id, exc)

    async def _read_single(self, task_id: str) -> dict[str, Task]:
        # Ids come from the server: one that is not a task id must not become a path.
        path = task_path(task_id)
        self.reads += 1
        watched = self._watched.get(task_id)
        listeners: set[Listener] = set() if watched is None else set(watched.listeners)
        for listener in listeners:
            listener.reads += 1
        try:
            task = await self._send(
                "GET",
                path,
                None,
                parse=task_parser(task_id),
                listeners=listeners,
                listener=None if watched is None else watched.first,
            )
        except NotFoundError as exc:
            self._lose(task_id, exc)
            return {}
        return {task_id: task}

    async def _send(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        parse: Callable[[Any], Any] = _as_is,
        listeners: set[Listener],
        listener: Listener | None = None,
        counts: tuple[RequestCount, ...] = (),
    ) -> Any:
        # One attempt: the watcher's schedule is the retry (`_retry_later`). The first
        # listener's limits and 429 brake: a batch's requests stay within its own.
        limiter = (
            self._limiter if listener is None or listener.limiter is None else listener.limiter
        )
        return await self._transport.send(
            RequestKind.READ,
            method,
            path,
            body=body,
            parse=parse,
            retries=0,
            pacer=None if listener is None else listener.pacer,
            limiter=limiter,
            counts=(self.requests, *(each.requests for each in listeners), *counts),
        )

    def _lose(self, task_id: str, error: EvolinkError) -> None:
        watched = self._watched.pop(task_id, None)
        if watched is not None:
            for listener in list(watched.listeners):
                listener.on_lost(task_id, error)

    def _unread(self, ids: list[str]) -> None:
        now = self._transport.clock.monotonic()
        for task_id in ids:
            watched = self._watched.get(task_id)
            if watched is not None and watched.reading:
                watched.reading = False
                watched.due = now
                watched.urgent = True
                self._schedule(task_id, watched)

    def _retry_later(self, task_id: str, error: EvolinkError) -> None:
        watched = self._watched.get(task_id)
        if watched is None or not watched.reading:
            return
        if self._transport.closed:
            # The client was closed: no read will go out again, so every wait would
            # otherwise sit out its timeout (a blocking `close()` waits for them all).
            self._lose(task_id, error)
            return
        watched.reading = False
        now = self._transport.clock.monotonic()
        if self._drop_expired(task_id, watched, now):
            return
        if isinstance(error, RateLimitError):
            # The server is busy, not the task unreadable: read again when it says (or
            # soon), without counting it as a failure of the task's reads.
            delay = READ_ERROR_DELAY if error.retry_after is None else error.retry_after
            delay = min(READ_ERROR_DELAY_MAX, max(READ_ERROR_DELAY, delay))
        else:
            watched.failures += 1
            if watched.failures >= MAX_READ_FAILURES:
                # Every read of it failing for this long: give it up, not poll for ever.
                self._lose(task_id, error)
                return
            delay = READ_ERROR_DELAY * 2.0 ** min(watched.failures - 1, 16)
            delay = min(READ_ERROR_DELAY_MAX, delay)
        watched.due = min(now + delay, watched.deadline)
        watched.urgent = watched.due < now + delay
        watched.not_before = watched.due
        watched.ceiling = False
        self._schedule(task_id, watched)

    def _drop_expired(self, task_id: str, watched: _Watched, now: float) -> bool:
        """Tell each listener whose deadline has come; True if no one waits any more."""
        for listener, deadline in list(watched.listeners.items()):
            if now >= deadline:
                del watched.listeners[listener]
                waited = deadline - watched.plan.started
                listener.on_lost(task_id, WaitTimeoutError(watched.task, waited))
        if watched.listeners:
            return False
        self._watched.pop(task_id, None)
        return True

    def _take(self, task_id: str, task: Task, now: float) -> None:
        watched = self._watched.get(task_id)
        if watched is None:
            return
        watched.reading = False
        watched.failures = 0
        watched.read_at = now
        watched.not_before = -math.inf
        watched.task = task
        watched.plan.observe(task, now)
        if task.is_terminal:
            del self._watched[task_id]
            self._ends.append(now)
            for listener in list(watched.listeners):
                listener.on_end(task)
            self._heed(task, now)
            return
        self._heed(task, now)
        # Still running (or in a status we do not know) at a deadline: stop waiting.
        if self._drop_expired(task_id, watched, now):
            return
        for listener in list(watched.listeners):
            listener.on_update(task)
        watched.plan.costs = self._costs(watched.listeners, others=len(self._watched) - 1)
        if watched.confirm:
            watched.confirm = False
            watched.due = now
            watched.urgent = True
        else:
            planned, capped, watched.send_by = self._planned_for(watched, now)
            if now < watched.due:
                # It rode along in a batch read before its time: its own read still comes
                # when planned (a ride-along is a bonus, not a reason to read more).
                planned = max(planned, watched.due)
            watched.due = min(planned, watched.deadline)
            watched.ceiling = capped and watched.due == planned
            watched.urgent = capped or watched.due < planned
        self._schedule(task_id, watched)


def _grown(ended: int) -> bool:
    """Whether a record of `ended` ends has just grown to 16, 32, 64, ...: worth planning
    its model's waiting tasks again."""
    return ended >= MIN_SAMPLES and ended & (ended - 1) == 0


def _tasks_in(data: list[Any]) -> dict[str, Task]:
    """The readable tasks of a batch answer, by id; a task listed twice keeps the end
    once seen over a stale copy."""
    found: dict[str, Task] = {}
    for item in data:
        try:
            task = parse_task(item)
        except ResponseDecodeError:
            continue
        seen = found.get(task.id)
        if seen is None or not seen.is_terminal or task.is_terminal:
            found[task.id] = task
    return found
