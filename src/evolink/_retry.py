"""When to retry a request, and how long to wait first.

Reads are safe to repeat. A create costs credits, so it is repeated only when the server
certainly made no task, or with the same Idempotency-Key (which makes a repeat return the
task already made). The outcome of each attempt is classified once, here.
"""

from __future__ import annotations

import enum
import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import attrs
import httpx

# Statuses after which a create certainly made no task: the server refused it up front.
_CREATE_REFUSED = frozenset({429, 503})
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# Transport errors raised before the request left: nothing reached the server.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class RequestKind(enum.Enum):
    """What a request does to the server's state; its retry rules follow from it."""

    #: A paid create: keyed, "uncertain" after a lost answer.
    CREATE = "create"
    #: A read: free and safe to repeat.
    READ = "read"
    #: A file upload: stored and counted against a quota, keyed like a create.
    UPLOAD = "upload"

    @property
    def keyed(self) -> bool:
        """Whether it carries an Idempotency-Key (it may act on the server)."""
        return self is not RequestKind.READ


@attrs.frozen
class RetryRules:
    """How often one request of a kind is sent again. Declared once per kind, in `RULES`.

    Failures (5xx, a lost connection) are retried `max_retries` times (the client's
    setting). The rest is per kind:

    Attributes:
        rate_limited: 429s waited out under a shared brake (a batch's), where the brake
            already slows every request; without one a 429 counts as a failure.
        uncertain_unproven: resends of a keyed request that may have acted, while the
            server has not shown it honours Idempotency-Key (a replay proves it). Once it
            has, such a resend finds the first result and only `max_retries` bounds it.
    """

    rate_limited: int = 60
    uncertain_unproven: int = 1


#: The one table of retry rules. A create and an upload may cost money: one resend of an
#: uncertain one at most until keys are proven (as Evolink's own client does); a read
#: never acts, so its uncertainty does not arise.
RULES: dict[RequestKind, RetryRules] = {
    RequestKind.CREATE: RetryRules(),
    RequestKind.READ: RetryRules(),
    RequestKind.UPLOAD: RetryRules(),
}


class Outcome(enum.Enum):
    """What one attempt tells about the server's state."""

    #: An answer to use or raise as it is.
    FINAL = "final"
    #: Failed, and the server certainly did nothing: repeating is free.
    RETRY_SAFE = "retry_safe"
    #: Failed, and the server may have acted: a create may only be repeated with its key.
    RETRY_UNCERTAIN = "retry_uncertain"


def classify_status(status_code: int, *, is_create: bool) -> Outcome:
    """Classify an HTTP answer."""
    if status_code not in _RETRYABLE_STATUS:
        return Outcome.FINAL
    if not is_create or status_code in _CREATE_REFUSED:
        return Outcome.RETRY_SAFE
    return Outcome.RETRY_UNCERTAIN


def classify_error(error: httpx.RequestError, *, is_create: bool) -> Outcome:
    """Classify a transport failure (no answer)."""
    if isinstance(error, NOT_SENT) or not is_create:
        return Outcome.RETRY_SAFE
    return Outcome.RETRY_UNCERTAIN


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - datetime.fromtimestamp(now, tz=timezone.utc).timestamp()
    if seconds != seconds:  # NaN  # noqa: PLR0124
        return None
    return max(0.0, seconds)


@attrs.frozen
class RetryPolicy:
    """How many times to retry, and the waits between tries.

    Waits grow exponentially with full jitter (a random wait between 0 and the cap), so many
    clients retrying at once spread out. A server's `Retry-After` is honoured up to
    `max_retry_after`.

    Attributes:
        max_retries: retries per request (0 turns retries off).
        initial_delay: the cap of the first wait, in seconds; it doubles per retry.
        max_delay: the largest cap, in seconds.
        max_retry_after: the longest `Retry-After` honoured, in seconds.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    #: The shortest wait, even when `Retry-After` says 0 or a time already past: a server
    #: that says "now" and refuses again must not be hammered in a tight loop.
    min_delay: float = 0.1

    def delay(self, retry: int, *, retry_after: float | None, rng: random.Random) -> float:
        """The wait before retry number `retry` (0 for the first retry)."""
        if retry_after is not None:
            return max(self.min_delay, min(retry_after, self.max_retry_after))
        cap = min(self.max_delay, self.initial_delay * 2.0 ** min(retry, 30))
        return max(self.min_delay, rng.uniform(0.0, cap))
