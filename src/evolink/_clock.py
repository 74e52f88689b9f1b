"""Time, injectable: the client and the simulator read and wait on one `Clock`.

Production code uses `SystemClock`; tests hand the client and the simulator the same
`evolink.testing.VirtualClock` so that a 100-second task completes in no real time.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    """What the SDK needs of time."""

    def time(self) -> float:
        """Seconds since the epoch (the API's timestamps are Unix times)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for deadlines."""

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds`, checkpointing even for 0."""


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
