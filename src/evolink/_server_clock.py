"""The server's clock as seen from ours: how far its stamps are from our `time()`.

A task's age comes from its `created` stamp, taken on the server's clock. A server whose
clock runs behind ours would make every task look older than it is, and the engine would
read it on a schedule meant for an old task: later reads, a late end. The offset is
learned from what the server says of its own time: the `created` stamp of each task this
client created (stamped between our send and its answer), else each answer's `Date`
header (often set by a proxy in front of the API, so only a fallback). Both are whole
seconds: the offset is known to about a second, which `tasks.wait`'s fresh-task rule
absorbs.
"""

from __future__ import annotations

import email.utils
import statistics
from collections import deque
from datetime import timezone

import attrs

#: Offsets kept, of each kind: the latest tell the most (a clock may be set).
SAMPLES = 16
#: A create or an answer that took longer than this says too little of when it was stamped.
MAX_BRACKET = 5.0


@attrs.define
class ServerClock:
    """What the answers said of the server's time (one per transport)."""

    _stamps: deque[float] = attrs.field(factory=lambda: deque(maxlen=SAMPLES))
    _dates: deque[tuple[str, float]] = attrs.field(factory=lambda: deque(maxlen=SAMPLES))

    def saw_created(self, created: float, sent: float, answered: float) -> None:
        """A task this client created: stamped `created` (whole seconds, server's clock)
        between `sent` and `answered` (our `time()`)."""
        if 0 <= answered - sent <= MAX_BRACKET:
            # The stamp is floored to the second: the moment it names is half a second on.
            self._stamps.append(created + 0.5 - (sent + answered) / 2)

    def saw_date(self, header: str | None, sent: float, answered: float) -> None:
        """An answer's `Date` header, unparsed (parsing waits until an offset is asked)."""
        if header and 0 <= answered - sent <= MAX_BRACKET:
            self._dates.append((header, (sent + answered) / 2))

    def offset(self) -> float:
        """Seconds the server's clock runs ahead of ours (negative: behind); 0 if unknown."""
        samples = list(self._stamps)
        if not samples:
            for header, at in self._dates:
                when = _parse_date(header)
                if when is not None:
                    samples.append(when + 0.5 - at)
        return statistics.median(samples) if samples else 0.0


def _parse_date(header: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, as HTTP dates always are
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()
