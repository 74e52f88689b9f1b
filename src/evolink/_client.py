"""`AsyncEvolink`: configuration, and the resources a user reaches from it.

Sending (the pool, retries, pacing, counting) is the transport's (`_transport.py`); the
client reads its settings, builds one transport and hands it to each resource.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from evolink._batch import Batch
from evolink._batch_options import BatchOptions
from evolink._clock import SYSTEM_CLOCK, Clock
from evolink._converter import parse_credits
from evolink._cost import Estimator
from evolink._errors import ConfigurationError
from evolink._files import Files
from evolink._generations import Audios, Videos
from evolink._http_backend import HttpBackend
from evolink._images import Images
from evolink._model_catalog import ModelCatalog
from evolink._models import Credits
from evolink._prices import Prices
from evolink._retry import RequestKind, RetryPolicy
from evolink._secret import Secret
from evolink._tasks import Tasks
from evolink._transport import DEFAULT_BASE_URL, Transport
from evolink._uploads import UploadCache

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from evolink._batch_options import BatchKwargs
    from evolink._engine import Engine
    from evolink._typed_resources import TypedAudios, TypedImages, TypedVideos


#: 10 s to connect, 60 s for everything else: a create answers at once, but a slow
#: upstream can hold a read for tens of seconds.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
#: HTTP requests in flight at once per client (and the pool's size to match, so httpx's
#: own queue, which rescans every connection per queued request, stays short).
DEFAULT_MAX_CONNECTIONS = 32
#: The least `max_poll_interval`: reads of one task more often than this are a storm.
MIN_POLL_INTERVAL = 0.1
DEFAULT_MAX_RETRIES = 2


class AsyncEvolink:
    """The async client for Evolink's image-generation API.

    Use one per application (it holds a connection pool) and close it with `aclose()` or
    `async with`. Resources: `images`, `videos` and `audios` (create), `tasks` (read,
    wait and save).

    Args:
        api_key: the `sk-evo-...` key; defaults to `EVOLINK_API_KEY`.
        base_url: the API's address; defaults to `EVOLINK_BASE_URL`, then the real API.
        timeout: httpx timeouts (default: 10 s to connect, 60 s otherwise).
        max_retries: retries per request (0 turns retries off); defaults to
            `retry_policy.max_retries`, else 2.
        max_connections: HTTP requests in flight at once.
        transport: an httpx async transport (e.g. `evolink.testing.Simulator().transport()`).
        http_client: an httpx client to borrow; it is not closed by `aclose()`.
        clock: where time comes from (tests pass `evolink.testing.VirtualClock`).
        allow_local_callbacks: accept `http://` and internal callback URLs (for a local
            simulator only; the real API refuses them).
        retry_policy: the waits between retries (`evolink.RetryPolicy`).
        http_backend: `"httpx"` (httpx's own transport, the default: respx and other
            httpx mocks see every request), `"aiohttp"` (aiohttp's transport under httpx,
            asyncio only, the `aiohttp` extra: about a quarter of the CPU per
            request) or `"auto"` (aiohttp where installed and on asyncio, else httpx).
        max_poll_interval: the longest the waiting engine leaves a running task unread,
            in seconds (at least 0.1). By default (`None`) the engine reads each task when
            what it has learned of the model says it is likely done, which takes fewer
            reads than polling; where a server's hints mislead it (progress that reports
            a steady share of the truth), it can see a task later than a 1 s loop would.
            With `1.0`, no task is seen later than a 1 s loop would see it, at up to the
            loop's reads (a second apart for every task the plan would leave longer). A
            429's `Retry-After` and the back-off after a failed read still come first.

    Raises:
        ConfigurationError: no API key was given or found, `max_retries` is negative,
            `max_connections` is below 1, `max_poll_interval` is not a number of seconds
            of at least 0.1, or both `transport` and `http_client` were given.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        allow_local_callbacks: bool = False,
        retry_policy: RetryPolicy | None = None,
        http_backend: HttpBackend = "httpx",
        max_poll_interval: float | None = None,
    ) -> None:
        # The key goes into a Secret at once, and no frame keeps it as a plain string: a
        # traceback printed with its locals (Sentry, rich) must not show it.
        secret, problem = _read_key(api_key)
        del api_key
        if secret is None:
            raise ConfigurationError(problem)
        if max_retries is None:
            max_retries = retry_policy.max_retries if retry_policy else DEFAULT_MAX_RETRIES
        if max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")
        if max_connections < 1:
            raise ConfigurationError("max_connections must be at least 1")
        if transport is not None and http_client is not None:
            raise ConfigurationError("pass transport= or http_client=, not both")
        self.max_poll_interval = _poll_interval(max_poll_interval)
        self._api_key = secret
        self.base_url = (base_url or os.environ.get("EVOLINK_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        self.max_retries = max_retries
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.allow_local_callbacks = allow_local_callbacks
        self.max_connections = max_connections
        self._transport = Transport(
            api_key=secret,
            base_url=self.base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_connections=max_connections,
            clock=self.clock,
            retry_policy=retry_policy or RetryPolicy(max_retries=max_retries),
            transport=transport,
            http_client=http_client,
            http_backend=http_backend,
        )
        self.images: TypedImages = Images(self, self._transport)
        self.videos: TypedVideos = Videos(self, self._transport)
        self.audios: TypedAudios = Audios(self, self._transport)
        self.tasks = Tasks(self, self._transport)
        # The platform's catalog, prices, files and estimates.
        self.models = ModelCatalog(self, self._transport)
        self.prices = Prices(self._transport)
        self.files = Files(self._transport)
        self.files.uploads = UploadCache(self.files, now=self.clock.time)
        self.estimate = Estimator(self)
        # The one waiting engine every batch and wait shares (`_engine.engine_of`).
        self._engine: Engine | None = None

    def __repr__(self) -> str:
        # Total: tracebacks with locals (pytest --showlocals, Sentry, rich) repr a client
        # whose `__init__` raised part-way, before any attribute was set. The key shows
        # only as its `Secret`'s masked repr, or not at all.
        base_url = getattr(self, "base_url", None)
        api_key = getattr(self, "_api_key", None)
        if base_url is None or api_key is None:
            return "AsyncEvolink(<not initialised>)"
        return f"AsyncEvolink(base_url={base_url!r}, api_key={api_key!r})"

    async def __aenter__(self) -> AsyncEvolink:
        self._transport.bind_event_loop()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (a borrowed `http_client` stays open)."""
        await self._transport.aclose()

    @property
    def idempotency_confirmed(self) -> bool:
        """Whether the server has shown it honours `Idempotency-Key` (a replayed answer)."""
        return self._transport.idempotency_confirmed

    @property
    def uncertain_create_retries(self) -> int:
        """How many times a create that may have made a task is resent with its key.

        Once while the server has not shown it honours idempotency keys, else as many as
        `max_retries` allows: a resend with the key then finds the task already made.
        """
        return self._transport.uncertain_resends(RequestKind.CREATE)

    @property
    def requests_sent(self) -> int:
        """HTTP requests this client has sent (each retry counts; a server log agrees)."""
        return self._transport.sent

    @property
    def is_closed(self) -> bool:
        """Whether `aclose()` was called."""
        return self._transport.closed

    async def credits(self) -> Credits:
        """The account's and the key's credit balances (`GET /v1/credits`).

        Raises:
            AuthenticationError: the key is missing, invalid or expired.
            APIError: any other refusal.
        """
        answer: Any = await self._transport.send(RequestKind.READ, "GET", "/v1/credits")
        data = answer.get("data") if isinstance(answer, Mapping) else None
        return parse_credits(data)

    def batch(self, **options: Unpack[BatchKwargs]) -> Batch:
        """A batch: submit many requests under limits and a budget, collect every outcome.

        Use it as `async with client.batch(max_in_flight=32, max_credits=500) as batch:`.
        The options are `evolink.BatchOptions`'s.

        Raises:
            ValidationError: an option is out of range.
        """
        return Batch(self, BatchOptions(**options), self._transport)


def _read_key(api_key: str | None) -> tuple[Secret | None, str]:
    """The key as a Secret, or None and why; returns rather than raises, so that no frame
    of a traceback holds the key."""
    key = api_key if api_key is not None else os.environ.get("EVOLINK_API_KEY")
    if not key:
        return None, (
            "no API key: pass api_key=... or set EVOLINK_API_KEY "
            "(or test against evolink.testing.Simulator)"
        )
    key = key.strip()
    if not key or not key.isprintable() or " " in key:
        # A stray CR/LF (a key read from a file) would end up quoted in an error.
        return None, "the API key holds spaces or control characters"
    return Secret(key), ""


def _poll_interval(value: object) -> float | None:
    """`max_poll_interval` checked: None, or a finite number of seconds, at least 0.1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"max_poll_interval must be a number of seconds or None, not {type(value).__name__}"
        )
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if not math.isfinite(seconds) or seconds < MIN_POLL_INTERVAL:
        raise ConfigurationError(
            f"max_poll_interval must be a finite number of seconds, at least "
            f"{MIN_POLL_INTERVAL} (or None), not {value}"
        )
    return seconds
