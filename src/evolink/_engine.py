"""The client's one waiting engine: every batch and every wait reads its tasks through it.

One `Watcher` per client holds every task anyone waits for, so that a thousand concurrent
`tasks.wait` calls share batch reads (where the server has them) and what the engine has
learned of each model's timing (`_timing`), for the client's whole life.

Structured concurrency: the engine starts no task of its own. Whoever waits drives: one
waiting party at a time runs the watcher's loop inside its own scope, while the others
wait for their tasks' ends; when the driver's own wait is over it stops taking reads
(those it started finish) and another waiting party takes over at once.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from evolink._errors import (
    AuthenticationError,
    EvolinkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ValidationError,
    WaitTimeoutError,
)
from evolink._models import Task
from evolink._reads import read_task
from evolink._timing import Timings
from evolink._watcher import (
    BATCH_READ_SIZE,
    MAX_READ_FAILURES,
    READ_ERROR_DELAY,
    READ_ERROR_DELAY_MAX,
    Listener,
    Watcher,
)

if TYPE_CHECKING:
    from evolink._client import AsyncEvolink
    from evolink._transport import RequestCount, Transport


#: Answers about the task itself: reading it again would not change them.
_FINAL_READ_ERRORS = (NotFoundError, AuthenticationError, PermissionDeniedError, ValidationError)


@attrs.define(eq=False)
class _Waiting:
    """One `wait`'s end: set once its task ends, is lost, or its deadline comes."""

    done: anyio.Event = attrs.field(factory=anyio.Event)
    task: Task | None = None
    error: EvolinkError | None = None

    def end(self, task: Task) -> None:
        self.task = task
        self.done.set()

    def lose(self, _task_id: str, error: EvolinkError) -> None:
        self.error = error
        self.done.set()


@attrs.define(eq=False)
class Engine:
    """Reads every task the client waits for; one per client (`client._engine`)."""

    _transport: Transport
    #: The client's `max_poll_interval` (`Watcher.max_gap`).
    max_gap: float | None = None
    watcher: Watcher = attrs.field(init=False)
    _driving: bool = False
    #: Parties waiting to drive, in order: each is woken alone when the driver leaves.
    _parked: dict[anyio.Event, None] = attrs.field(factory=dict)
    #: Waits by task id wanting their first read, by id (see `first_read`).
    _firsts: dict[str, list[_FirstRead]] = attrs.field(factory=dict)
    #: ...and those whose read is out: a wait by id starting meanwhile takes its answer.
    _out: dict[str, list[_FirstRead]] = attrs.field(factory=dict)
    _reading_firsts: bool = False

    def __attrs_post_init__(self) -> None:
        self.watcher = Watcher(self._transport, timings=Timings(), max_gap=self.max_gap)

    @property
    def timings(self) -> Timings:
        """What the engine has learned of each model's timing."""
        return self.watcher.timings

    async def first_read(self, task_id: str, counts: tuple[RequestCount, ...] = ()) -> Task:
        """A task's state for a wait that holds only its id, read as `tasks.get` would.

        The engine's own state if it watches the task already (no read at all); else one
        read shared by every wait by id starting meanwhile: a batch read where the server
        has them (handlers waiting by id coalesce from the first read), else a GET per id.
        While the read is out the watcher does not read the task itself, should another
        wait register it meanwhile: it takes this read instead (never two reads at once).

        `counts`: where the requests that read it are counted too (a batch's report).

        Raises:
            EvolinkError: as `tasks.get` (`NotFoundError`: no such task).
        """
        while True:
            known = self.watcher.current(task_id)
            if known is not None:
                return known
            slot = _FirstRead(counts=counts)
            waiting = self._out.get(task_id)  # its read is out: take its answer
            if waiting is None:
                waiting = self._firsts.get(task_id)
            if waiting is None:
                waiting = self._firsts[task_id] = []
                self.watcher.hold(task_id)
            waiting.append(slot)
            if not self._reading_firsts:
                await self._read_firsts()
            await slot.done.wait()
            if slot.error is not None:
                raise slot.error
            if slot.task is not None:
                return slot.task
            # The reading wait left before this was read: ask again.

    async def _read_firsts(self) -> None:
        """Read the waiting ids until none is left (the first wait by id reads for all; if
        it is cancelled, another takes over)."""
        self._reading_firsts = True
        try:
            await anyio.lowlevel.checkpoint()  # the waits starting now join this read
            while self._firsts:
                async with anyio.create_task_group() as reads:
                    while self._firsts:
                        ids = list(self._firsts)[:BATCH_READ_SIZE]
                        batch = {task_id: self._firsts.pop(task_id) for task_id in ids}
                        self._out.update(batch)
                        reads.start_soon(self._read_first_batch, batch)
        finally:
            self._reading_firsts = False
            for task_id, waiting in self._firsts.items():
                self.watcher.release(task_id, None)
                _again(waiting)  # one of them reads next
            self._firsts.clear()

    async def _read_first_batch(self, slots: dict[str, list[_FirstRead]]) -> None:
        ids = list(slots)
        answers: dict[str, Task | EvolinkError] = {}
        try:
            if len(ids) > 1 and self.watcher.batch_reads_usable:
                # One id alone is read with its own GET, as a lone task is.
                everyone = _counts_of(slot for waiting in slots.values() for slot in waiting)
                with contextlib.suppress(EvolinkError):  # each is read alone then
                    answers.update(await self.watcher.read_together(ids, everyone))
            async with anyio.create_task_group() as gets:
                for task_id in ids:
                    if task_id not in answers:
                        counts = _counts_of(slots[task_id])
                        gets.start_soon(self._get_into, task_id, answers, counts)
        except BaseException:
            for task_id, waiting in slots.items():
                self._out.pop(task_id, None)
                self.watcher.release(task_id, None)
                _again(waiting)
            raise
        for task_id, waiting in slots.items():
            self._out.pop(task_id, None)
            answer = answers[task_id]
            self.watcher.release(task_id, answer if isinstance(answer, Task) else None)
            for slot in waiting:
                if isinstance(answer, Task):
                    slot.task = answer
                else:
                    slot.error = answer
                slot.done.set()

    async def _get_into(
        self,
        task_id: str,
        answers: dict[str, Task | EvolinkError],
        counts: tuple[RequestCount, ...],
    ) -> None:
        """Read one task for the waits by id; a busy or failing server is tried again as
        the watcher would (a wait needs the task, not an error the server will take back):
        only an answer about the task itself (404, the key refused) ends it at once."""
        for failures in range(1, MAX_READ_FAILURES + 1):
            answer = await self._get(task_id, counts)
            answers[task_id] = answer
            if isinstance(answer, (Task, *_FINAL_READ_ERRORS)) or failures == MAX_READ_FAILURES:
                return
            delay = READ_ERROR_DELAY * 2.0 ** min(failures - 1, 16)
            if isinstance(answer, RateLimitError) and answer.retry_after is not None:
                delay = max(delay, answer.retry_after)
            await self._transport.clock.sleep(min(delay, READ_ERROR_DELAY_MAX))

    async def _get(self, task_id: str, counts: tuple[RequestCount, ...]) -> Task | EvolinkError:
        try:
            # One attempt: `_get_into` is the retry, as the watcher's schedule is.
            return await read_task(self._transport, task_id, retries=0, counts=counts)
        except EvolinkError as exc:
            return exc

    def feed(self, payload: Mapping[str, Any] | Task, listener: Listener | None = None) -> bool:
        """A callback's hint for a watched task: one read confirms it for every party."""
        return self.watcher.feed(payload, listener)

    async def drive(self, until: anyio.Event | None = None) -> None:
        """Run the reads while no one else does, until `until` is set (or cancelled).

        Parties that cannot drive now wait in line, each woken alone when the driver
        leaves: a thousand waits cost one wake-up per hand-over, not a thousand.
        """
        try:
            while until is None or not until.is_set():
                if self._driving:
                    turn = anyio.Event()
                    self._parked[turn] = None
                    try:
                        await _first_of(until, turn)
                    finally:
                        self._parked.pop(turn, None)
                    continue
                self._driving = True
                try:
                    async with anyio.create_task_group() as reads:
                        async with anyio.create_task_group() as loop:
                            loop.start_soon(self.watcher.run, reads)
                            if until is None:
                                await anyio.sleep_forever()
                            else:
                                await until.wait()
                            loop.cancel_scope.cancel()
                        # No new reads from here: another party may drive while ours finish.
                        self._release()
                finally:
                    self._release()
                return
        finally:
            # Woken to drive but leaving (done, or cancelled): the next in line drives.
            if not self._driving:
                self._wake_next()

    def _release(self) -> None:
        if self._driving:
            self._driving = False
            self._wake_next()

    def _wake_next(self) -> None:
        if self._parked:
            turn = next(iter(self._parked))
            del self._parked[turn]
            turn.set()

    async def wait(
        self,
        task: Task,
        *,
        started: float,
        timeout: float | None = None,
        since: float | None = None,
        grace: float = 0.0,
        woken: anyio.Event | None = None,
    ) -> Task:
        """Wait for a running task to end and return it, terminal.

        `started`: when it was created (monotonic); `timeout`: seconds from `since` (the
        monotonic time the caller's wait began, its first read included; default now),
        after one last read; `grace`: seconds added to each planned read after the first (a callback
        is expected); `woken`: set from outside to stop waiting early (returns the last
        state seen).

        Raises:
            WaitTimeoutError: still running after `timeout`.
            EvolinkError: the task could not be read to its end (404: expired, the key
                refused, every read failing).
        """
        waiting = _Waiting()
        last = [task]

        def update(seen: Task) -> None:
            last[0] = seen

        listener = Listener(
            update, waiting.end, waiting.lose, task_deadline=math.inf, alone_by_get=True
        )
        now = self._transport.clock.monotonic()
        deadline = math.inf if timeout is None else (now if since is None else since) + timeout
        self.watcher.watch(task, listener, started=started, deadline=deadline, grace=grace)
        try:
            if woken is None:
                await self.drive(waiting.done)
            else:
                async with anyio.create_task_group() as tg:

                    async def on_woken() -> None:
                        await woken.wait()
                        waiting.done.set()

                    tg.start_soon(on_woken)
                    await self.drive(waiting.done)
                    tg.cancel_scope.cancel()
        finally:
            self.watcher.forget(task.id, listener)
        if waiting.task is not None:
            return waiting.task
        if isinstance(waiting.error, WaitTimeoutError):
            raise WaitTimeoutError(waiting.error.task, timeout or 0.0)
        if waiting.error is not None:
            raise waiting.error
        return last[0]


@attrs.define
class _FirstRead:
    """One wait by id's first read: its task or its error; neither: ask again."""

    done: anyio.Event = attrs.field(factory=anyio.Event)
    task: Task | None = None
    error: EvolinkError | None = None
    counts: tuple[RequestCount, ...] = ()


def _counts_of(slots: Iterable[_FirstRead]) -> tuple[RequestCount, ...]:
    """Each distinct count of the slots' parties, once."""
    return tuple({id(count): count for slot in slots for count in slot.counts}.values())


def _again(slots: Iterable[_FirstRead]) -> None:
    for slot in slots:
        slot.done.set()


def engine_of(client: AsyncEvolink) -> Engine:
    """The client's one engine, made on first use."""
    if client._engine is None:  # noqa: SLF001 - the client holds it, the engine owns it
        client._engine = Engine(client._transport, client.max_poll_interval)  # noqa: SLF001
    return client._engine  # noqa: SLF001


async def _first_of(*events: anyio.Event | None) -> None:
    """Return once any of `events` is set."""
    async with anyio.create_task_group() as tg:

        async def on(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        for event in events:
            if event is not None:
                tg.start_soon(on, event)
