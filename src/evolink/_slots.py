"""The in-flight limit of a batch: a semaphore whose size adapts to the server.

It shrinks when the server refuses a create (429: too many unfinished tasks or requests)
and grows back by one per successful create, up to the limit the user set (AIMD, as TCP).
"""

from __future__ import annotations

import math

import anyio
import attrs


@attrs.define
class AdaptiveSlots:
    """At most `limit` holders at once; `limit` moves between 1 and `maximum`."""

    maximum: int
    limit: float = attrs.field(default=0.0)
    in_use: int = 0
    peak: int = 0
    _freed: anyio.Event = attrs.field(factory=anyio.Event)
    _closed: bool = False

    def __attrs_post_init__(self) -> None:
        if self.limit <= 0:
            self.limit = float(self.maximum)

    @property
    def available(self) -> bool:
        """Whether `acquire` would return at once."""
        return self.in_use < max(1, math.floor(self.limit))

    async def acquire(self) -> None:
        """Wait for a free slot and take it."""
        while not self.available and not self._closed:
            await self._freed.wait()
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    def release(self) -> None:
        """Give a slot back."""
        self.in_use -= 1
        self._wake()

    def shrink(self) -> None:
        """The server refused for load: hold fewer tasks in flight."""
        self.limit = max(1.0, min(self.limit, float(self.in_use)) * 0.75)

    def grow(self) -> None:
        """A create went through: allow one more, up to the maximum."""
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0)
            self._wake()

    def close(self) -> None:
        """Stop limiting: every waiter goes on (the batch is stopping; it checks why)."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        self._freed.set()
        self._freed = anyio.Event()
