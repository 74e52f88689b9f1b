"""Callback delivery: one dispatcher per simulator POSTs each ended task to its URL.

The documented schedule: a 10 s timeout, and a non-2xx answer (or no answer) retried
after 1, 2 and 4 seconds. Sleeps run on the simulator's clock.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random

import anyio
import attrs
import httpx

from evolink._clock import Clock
from evolink.testing._engine import Engine, SimulatedTask, task_view
from evolink.testing._faults import Faults

CALLBACK_TIMEOUT = 10.0
RETRY_DELAYS = (1.0, 2.0, 4.0)


@attrs.frozen
class CallbackAttempt:
    """One POST of a callback.

    Attributes:
        task_id: the task it reports.
        url: where it went.
        time: simulator time when it was sent.
        attempt: 1 for the first try, up to 4.
        status: the receiver's status, or None if no answer came.
        error: the transport error's name when no answer came.
        duplicate: whether this is the injected second copy.
    """

    task_id: str
    url: str
    time: float
    attempt: int
    status: int | None
    error: str | None = None
    duplicate: bool = False

    @property
    def delivered(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


@attrs.frozen
class _Delivery:
    task: SimulatedTask
    body: bytes
    duplicate: bool = False


@attrs.define
class CallbackDispatcher:
    """Sends callbacks while `run()` runs (inside `async with simulator:` or served)."""

    engine: Engine
    clock: Clock
    faults: Faults
    rng: random.Random
    transport: httpx.AsyncBaseTransport | None = None
    attempts: list[CallbackAttempt] = attrs.field(factory=list)
    dropped: list[str] = attrs.field(factory=list)
    _queue: list[tuple[float, int, _Delivery]] = attrs.field(factory=list)
    _seq: itertools.count[int] = attrs.field(factory=itertools.count)
    _wake: anyio.CancelScope | None = None

    def wake(self) -> None:
        """Re-plan now: a task that may end sooner than anything queued was made."""
        if self._wake is not None:
            self._wake.cancel()

    async def run(self) -> None:
        """Deliver callbacks as tasks end, until cancelled."""
        async with (
            httpx.AsyncClient(transport=self.transport, timeout=CALLBACK_TIMEOUT) as client,
            anyio.create_task_group() as tg,
        ):
            while True:
                now = self.clock.time()
                with self.engine.lock:
                    ended = self.engine.ended_with_callbacks(now)
                    next_end = self.engine.next_callback_at()
                for task in ended:
                    self._schedule(task)
                while self._queue and self._queue[0][0] <= now:
                    _, _, delivery = heapq.heappop(self._queue)
                    tg.start_soon(self._deliver, client, delivery)
                queued = self._queue[0][0] if self._queue else None
                due = [at for at in (next_end, queued) if at is not None]
                with anyio.CancelScope() as scope:
                    self._wake = scope
                    if due:
                        await self.clock.sleep(min(due) - now)
                    else:
                        await anyio.sleep_forever()
                self._wake = None

    def _draw(self, probability: float) -> bool:
        return probability > 0 and self.rng.random() < probability

    def _schedule(self, task: SimulatedTask) -> None:
        faults = self.faults
        if self._draw(faults.callback_drop):
            self.dropped.append(task.id)
            return
        delay = faults.callback_late_by if self._draw(faults.callback_late) else 0.0
        if self._draw(faults.callback_out_of_order):
            delay += self.rng.uniform(0.0, faults.callback_late_by)
        view = task_view(task, task.ends_at, task.origin)
        body = json.dumps(view, separators=(",", ":")).encode()
        copies = [_Delivery(task, body)]
        if self._draw(faults.callback_duplicate):
            copies.append(_Delivery(task, body, duplicate=True))
        for delivery in copies:
            heapq.heappush(self._queue, (task.ends_at + delay, next(self._seq), delivery))

    async def _deliver(self, client: httpx.AsyncClient, delivery: _Delivery) -> None:
        url = delivery.task.callback_url
        assert url is not None  # noqa: S101 - only tasks with a URL are queued
        for attempt in range(1, len(RETRY_DELAYS) + 2):
            status: int | None = None
            error: str | None = None
            sent_at = self.clock.time()
            try:
                response = await client.post(
                    url,
                    content=delivery.body,
                    headers={"content-type": "application/json", "user-agent": "evolink-simulator"},
                )
                status = response.status_code
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            record = CallbackAttempt(
                delivery.task.id, url, sent_at, attempt, status, error, delivery.duplicate
            )
            self.attempts.append(record)
            if record.delivered or attempt > len(RETRY_DELAYS):
                return
            await self.clock.sleep(RETRY_DELAYS[attempt - 1])
