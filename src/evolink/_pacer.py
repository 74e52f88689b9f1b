"""One shared brake for a batch: a 429 slows every request down, not only the one refused."""

from __future__ import annotations

import attrs

from evolink._clock import Clock


@attrs.define
class SharedBackoff:
    """Holds every request of a batch until the latest `Retry-After` (or backoff) has passed."""

    _clock: Clock
    _resume_at: float = 0.0
    rate_limited_count: int = 0

    async def before_attempt(self) -> None:
        """Wait while the brake is on."""
        while (wait := self._resume_at - self._clock.monotonic()) > 0:
            await self._clock.sleep(wait)

    def rate_limited(self, delay: float) -> None:
        """Put the brake on for `delay` seconds from now (never shortening it)."""
        self.rate_limited_count += 1
        self._resume_at = max(self._resume_at, self._clock.monotonic() + delay)
