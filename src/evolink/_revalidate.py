"""A document of the control plane (the catalog, the prices), cached the way Evolink's client does.

Fresh for `ttl` seconds (5 minutes), then revalidated with `If-None-Match` (a 304 keeps the
copy); if the refresh fails, the stale copy is served for up to `stale_for` (24 hours), after
which the failure is raised and the caller falls back to the offline catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import attrs

from evolink._answers import Answer
from evolink._errors import APIConnectionError, APIError, ResponseDecodeError
from evolink._retry import RequestKind

if TYPE_CHECKING:
    from evolink._transport import Pacer, RequestCount, Transport

logger = logging.getLogger("evolink")

T = TypeVar("T")

DEFAULT_TTL = 300.0
DEFAULT_STALE_FOR = 86_400.0


@attrs.frozen
class Cached(Generic[T]):
    """One copy of a document: its value, ETag and when it was fetched (monotonic)."""

    value: T
    etag: str | None
    fetched_at: float


@attrs.define
class Revalidating(Generic[T]):
    """A GET whose answer is parsed by `parse` and cached with ETag revalidation.

    `parse` raises `ResponseDecodeError` for an answer it cannot use at all (the stale copy
    is then kept, as for any failed refresh).
    """

    transport: Transport
    path: str
    parse: Callable[[Any], T]
    ttl: float = DEFAULT_TTL
    stale_for: float = DEFAULT_STALE_FOR
    _cached: Cached[T] | None = None
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock)
    #: Whether the last answer came from a failed refresh's stale copy.
    stale: bool = False

    async def get(self, *, counts: Sequence[RequestCount] = (), pacer: Pacer | None = None) -> T:
        """The document: cached, revalidated or fetched (a request sent is added to `counts`,
        after waiting out `pacer`: a batch's 429 brake).

        Raises:
            EvolinkError: the service failed and no copy younger than `stale_for` exists.
        """
        async with self._lock:  # one refresh at a time: many callers, one request
            now = self.transport.clock.monotonic()
            cached = self._cached
            if cached is not None and now - cached.fetched_at < self.ttl:
                return cached.value
            try:
                self._cached = await self._refresh(cached, now, counts, pacer)
                self.stale = False
            except (APIError, APIConnectionError) as exc:
                if cached is None or now - cached.fetched_at >= self.stale_for:
                    raise
                logger.debug("%s refresh failed (%s): serving the stale copy", self.path, exc)
                self.stale = True
                return cached.value
            return self._cached.value

    def invalidate(self) -> None:
        """Forget the copy's freshness: the next `get` revalidates."""
        if self._cached is not None:
            self._cached = attrs.evolve(self._cached, fetched_at=float("-inf"))

    async def _refresh(
        self,
        cached: Cached[T] | None,
        now: float,
        counts: Sequence[RequestCount],
        pacer: Pacer | None,
    ) -> Cached[T]:
        headers = {"If-None-Match": cached.etag} if cached and cached.etag else None
        # One attempt, no retry: a failure falls back to the stale or offline copy at once,
        # and a batch's first create never waits out a backoff for the catalog.
        answer: Answer = await self.transport.send(
            RequestKind.READ,
            "GET",
            self.path,
            headers=headers,
            retries=0,
            counts=counts,
            pacer=pacer,
            parse_answer=lambda whole: whole,  # a 304 comes back, with the status and ETag
        )
        if answer.status_code == 304:
            if cached is None:  # a proxy's answer to a question we did not ask: no copy
                raise ResponseDecodeError(
                    f"{self.path} answered 304 to a request without If-None-Match",
                    status_code=304,
                    body=None,
                )
            return attrs.evolve(cached, fetched_at=now)
        return Cached(self.parse(answer.data), answer.headers.get("ETag"), now)
