"""One shared brake for a batch: a 429 slows every request down, not only the one refused.

With a `SharedBrake` (`_shared_limits`), the brake is also shared with the other batches
of a run, on other machines: a 429 one of them meets holds them all.
"""

from __future__ import annotations

import attrs

from evolink._clock import Clock
from evolink._shared_limits import SharedBrake


@attrs.define
class SharedBackoff:
    """Holds every request of a batch until the latest `Retry-After` (or backoff) has passed."""

    _clock: Clock
    _resume_at: float = 0.0
    rate_limited_count: int = 0
    #: The brake of the other batches of the run, if shared.
    shared: SharedBrake | None = None

    async def before_attempt(self) -> None:
        """Wait while the brake is on (here, or shared)."""
        while True:
            wait = self._resume_at - self._clock.monotonic()
            if self.shared is not None:
                wait = max(wait, await self.shared.remaining())
            if wait <= 0:
                return
            await self._clock.sleep(wait)

    def rate_limited(self, delay: float) -> None:
        """Put the brake on for `delay` seconds from now (never shortening it)."""
        self.rate_limited_count += 1
        self._resume_at = max(self._resume_at, self._clock.monotonic() + delay)
        if self.shared is not None:
            self.shared.rate_limited(delay)
