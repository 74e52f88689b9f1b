"""Clocks for tests and benchmarks: virtual time, and real time run faster.

`VirtualClock` is like trio's `MockClock(autojump_threshold=0)`, but for any anyio backend
and only for the code that sleeps through it (the SDK and the simulator): when nothing
else can run, time jumps to the earliest pending deadline. Sleeps on `anyio.sleep` still
take real time.

`ScaledClock` is real time sped up: for a simulator served in another process and a
client that both take it, so a benchmark of 20-second tasks runs in 10 real seconds.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import attrs
import sniffio

# 2026-01-01T00:00:00Z: a fixed, recognisable start keeps generated ids and stamps repeatable.
DEFAULT_START = 1_767_225_600.0


async def _all_others_blocked() -> None:
    """Return once no other task is ready to run."""
    if sniffio.current_async_library() == "trio":
        import trio.testing  # noqa: PLC0415 - only under trio

        await trio.testing.wait_all_tasks_blocked()
        return
    import asyncio  # noqa: PLC0415 - only under asyncio

    loop = asyncio.get_running_loop()
    # A few idle rounds in a row: a ready callback may schedule another one.
    quiet = 0
    while quiet < 3:
        await asyncio.sleep(0)
        ready = loop._ready  # type: ignore[attr-defined]  # noqa: SLF001 - no public idle probe
        quiet = quiet + 1 if len(ready) == 0 else 0


@attrs.define(eq=False)
class VirtualClock:
    """A clock whose time only moves when every task is asleep on it.

    Use it as an async context manager (`async with clock.running():`) around the code
    under test; outside of `running()` time moves only with `advance()`.
    """

    _start: float = DEFAULT_START
    _offset: float = 0.0
    _sleepers: list[tuple[float, int, anyio.Event]] = attrs.field(factory=list)
    _counter: itertools.count[int] = attrs.field(factory=itertools.count)

    def time(self) -> float:
        """Seconds since the epoch: the start (2026-01-01 by default) plus time passed."""
        return self._start + self._offset

    def monotonic(self) -> float:
        """Seconds passed since the clock was made."""
        return self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward by hand, waking every sleeper whose deadline passed."""
        if seconds < 0:
            msg = "time only moves forward"
            raise ValueError(msg)
        self._offset += seconds
        self._wake_due()

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has moved `seconds` on (a checkpoint for 0)."""
        if seconds <= 0 or math.isnan(seconds):
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._sleepers, (self._offset + seconds, next(self._counter), event))
        await event.wait()

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._offset:
            _, _, event = heapq.heappop(self._sleepers)
            event.set()

    async def _autojump(self) -> None:
        while True:
            await _all_others_blocked()
            if self._sleepers:
                self._offset = max(self._offset, self._sleepers[0][0])
                self._wake_due()
            else:
                # Nobody sleeps on us: something else (real I/O, a real sleep) is pending.
                await anyio.sleep(0.001)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[VirtualClock]:
        """Jump time forward whenever the code inside is blocked on this clock."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._autojump)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()


def _speed(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


@attrs.frozen
class ScaledClock:
    """Real time, running `speed` times faster: `ScaledClock(2.0)` sleeps 1 s in 0.5 s.

    Hand the simulator and the client clocks of the same `speed` and `anchor` (also across
    processes: the anchor is a Unix time both agree on) and everything the API reports in
    seconds (`created`, `estimated_time`, durations) stays consistent while a run takes
    `1 / speed` of the time. Only waits on the clock are sped up: network latency and CPU
    are not, so they weigh `speed` times more in clock time; keep `speed` modest.

    Attributes:
        speed: how many clock seconds pass per real second.
        anchor: the Unix time at which clock time and real time agree (default: now).
    """

    speed: float = attrs.field(converter=float, validator=_speed)
    anchor: float = attrs.field(factory=time.time, kw_only=True)

    def time(self) -> float:
        """Seconds since the epoch, on the sped-up clock."""
        return self.anchor + (time.time() - self.anchor) * self.speed

    def monotonic(self) -> float:
        """`time.monotonic()`, sped up."""
        return time.monotonic() * self.speed

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of clock time (`seconds / speed` real seconds)."""
        await anyio.sleep(max(0.0, seconds) / self.speed)
