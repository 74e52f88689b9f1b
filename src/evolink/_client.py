"""`AsyncEvolink`: configuration, the connection pool's lifecycle, and the one request path.

Every HTTP request goes through `AsyncEvolink._request`, so errors, retries and logging
live in one place; the resources (`images`, `tasks`) only shape arguments and answers.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.lowlevel
import attrs
import httpx

from evolink._clock import SYSTEM_CLOCK, Clock
from evolink._converter import parse_credits
from evolink._cost import Estimator
from evolink._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    EvolinkError,
    RateLimitError,
    ResponseDecodeError,
    SubmissionUncertainError,
    error_class_for,
)
from evolink._files import Files
from evolink._generations import Audios, Videos
from evolink._http_backend import HttpBackend, default_transport
from evolink._idempotency import new_idempotency_key
from evolink._images import Images
from evolink._model_catalog import ModelCatalog
from evolink._models import Credits, GenerationRequest
from evolink._prices import Prices
from evolink._redact import redact_body
from evolink._retry import Outcome, RetryPolicy, classify_error, classify_status, parse_retry_after
from evolink._secret import Secret
from evolink._tasks import Tasks
from evolink._version import __version__

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from evolink._batch import Batch
    from evolink._batch_options import BatchKwargs
    from evolink._typed_resources import TypedAudios, TypedImages, TypedVideos

logger = logging.getLogger("evolink")

DEFAULT_BASE_URL = "https://api.evolink.ai"
#: 10 s to connect, 60 s for everything else: a create answers at once, but a slow
#: upstream can hold a read for tens of seconds.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
#: HTTP requests in flight at once per client (and the pool's size to match, so httpx's
#: own queue, which rescans every connection per queued request, stays short).
DEFAULT_MAX_CONNECTIONS = 32
DEFAULT_MAX_RETRIES = 2
#: The largest answer the SDK reads: a real one (a task, a page of 50) is a few KB to a few
#: hundred KB. A larger one is refused unread, so a hostile server cannot exhaust memory.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


class Pacer(Protocol):
    """A shared brake for many requests (a batch's one backoff after a 429)."""

    async def before_attempt(self) -> None:
        """Wait while the brake is on."""

    def rate_limited(self, delay: float) -> None:
        """Put the brake on for `delay` seconds."""


@attrs.frozen
class Answer:
    """A successful HTTP answer, decoded."""

    status_code: int
    headers: httpx.Headers
    data: Any


class _BearerAuth(httpx.Auth):
    """Adds the API key to each request as it leaves."""

    def __init__(self, key: Secret) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._key.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


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
            asyncio only, `pip install 'evolink[aiohttp]'`: about a quarter of the CPU per
            request) or `"auto"` (aiohttp where installed and on asyncio, else httpx).

    Raises:
        ConfigurationError: no API key was given or found, `max_retries` is negative,
            `max_connections` is below 1, or both `transport` and `http_client` were given.
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
        self._api_key = secret
        # The header is set on the outgoing request only, so no frame of ours holds it
        # (error trackers that capture local variables see only the Secret).
        self._auth = _BearerAuth(self._api_key)
        self.base_url = (base_url or os.environ.get("EVOLINK_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        self.max_retries = max_retries
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.allow_local_callbacks = allow_local_callbacks
        self._retry_policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self._rng = random.Random()  # jitter, not secrets
        self._owns_http_client = http_client is None
        # Made on first use, on the loop that uses it (the transport depends on the loop).
        self._http: httpx.AsyncClient | None = http_client
        self._transport = transport
        self._timeout = timeout
        # httpx bounds each read of the socket, not the whole answer: a server trickling its
        # body would hold a request for ever. This bounds each attempt from send to last byte.
        self._attempt_deadline = _whole_request_deadline(timeout)
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._http_backend: HttpBackend = http_backend
        self.max_connections = max_connections
        self._limiter = anyio.CapacityLimiter(max_connections)
        self._headers = {
            "User-Agent": f"evolink-python/{__version__}",
            "Accept": "application/json",
        }
        self._loop_token: object | None = None
        # Idempotency-Key is undocumented: until a replayed answer shows the server honours
        # it, an uncertain create is resent once at most (as Evolink's own client does).
        self._idempotency_confirmed = False
        # Set once a server's `POST /v1/tasks/batch` gave an unusable answer: from then on,
        # every batch of this client reads tasks one by one.
        self._batch_reads_unusable = False
        self._closed = False
        self.images: TypedImages = Images(self)
        self.videos: TypedVideos = Videos(self)
        self.audios: TypedAudios = Audios(self)
        self.tasks = Tasks(self)
        self.models = ModelCatalog(self)  # the platform's catalog, prices, files, estimates
        self.prices = Prices(self)
        self.files = Files(self)
        self.estimate = Estimator(self)

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
        self._bind_event_loop()
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
        if self._closed:
            return
        self._closed = True
        if self._owns_http_client and self._http is not None:
            await self._http.aclose()

    @property
    def idempotency_confirmed(self) -> bool:
        """Whether the server has shown it honours `Idempotency-Key` (a replayed answer)."""
        return self._idempotency_confirmed

    @property
    def uncertain_create_retries(self) -> int:
        """How many times a create that may have made a task is resent with its key.

        Once while the server has not shown it honours idempotency keys, else as many as
        `max_retries` allows: a resend with the key then finds the task already made.
        """
        return self.max_retries if self._idempotency_confirmed else min(1, self.max_retries)

    @property
    def is_closed(self) -> bool:
        """Whether `aclose()` was called."""
        return self._closed

    async def credits(self) -> Credits:
        """The account's and the key's credit balances (`GET /v1/credits`).

        Raises:
            AuthenticationError: the key is missing, invalid or expired.
            APIError: any other refusal.
        """
        answer = await self._request("GET", "/v1/credits")
        data = answer.data.get("data") if isinstance(answer.data, Mapping) else None
        return parse_credits(data)

    def batch(self, **options: Unpack[BatchKwargs]) -> Batch:
        """A batch: submit many requests under limits and a budget, collect every outcome.

        Use it as `async with client.batch(max_in_flight=32, max_credits=500) as batch:`.
        The options are `evolink.BatchOptions`'s.

        Raises:
            ValidationError: an option is out of range.
        """
        from evolink._batch import Batch  # noqa: PLC0415 - avoids a cycle
        from evolink._batch_options import BatchOptions  # noqa: PLC0415

        return Batch(self, BatchOptions(**options))

    # -- the one request path -------------------------------------------------------------

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            transport = self._transport or default_transport(self._http_backend, self._limits)
            self._http = httpx.AsyncClient(
                transport=transport, timeout=self._timeout, limits=self._limits
            )
        return self._http

    def _bind_event_loop(self) -> None:
        token = anyio.lowlevel.current_token().native_token
        if self._loop_token is None:
            self._loop_token = token
        elif self._loop_token is not token:
            raise ConfigurationError(
                "this AsyncEvolink was opened on another event loop; its connections belong "
                "there. Create one client per event loop (e.g. inside the app's lifespan)."
            )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        idempotency_key: str | None = None,
        max_retries: int | None = None,
        pacer: Pacer | None = None,
        generation: GenerationRequest | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        uncertain: Callable[[str, str], EvolinkError] | None = None,
    ) -> Answer:
        """Send one request with retries; return the decoded answer or raise an `EvolinkError`.

        A create (`generation` given) carries an Idempotency-Key on every attempt; if any
        attempt may have reached the server and the last one failed, the outcome is unknown
        and `SubmissionUncertainError` is raised instead of the last error. Another paid,
        keyed request (an upload) passes `uncertain` to build its own "outcome unknown" error;
        `url` sends to another host of the platform (the files API), `headers` adds headers.
        """
        if self._closed:
            raise ConfigurationError("the client is closed")
        self._bind_event_loop()
        is_create = generation is not None or uncertain is not None
        retries = self.max_retries if max_retries is None else max_retries
        headers = {**self._headers, **(headers or {})}
        if is_create:
            headers["Idempotency-Key"] = idempotency_key = idempotency_key or new_idempotency_key()
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        if content is not None:
            headers["Content-Type"] = "application/json"
        url = url or self.base_url + path
        uncertain_attempts = 0  # attempts that may have made a task
        attempt = 0
        while True:
            attempt += 1
            if pacer is not None:
                await pacer.before_attempt()
            error, outcome, retry_after = await self._attempt(
                method, url, path, headers, content, attempt, is_create=is_create
            )
            if isinstance(error, Answer):
                return error
            uncertain_attempts += outcome is Outcome.RETRY_UNCERTAIN
            if self._give_up(
                outcome, attempt=attempt, retries=retries, uncertain=uncertain_attempts
            ):
                if uncertain_attempts and idempotency_key is not None:
                    raise _unknown_outcome(
                        error, attempt, idempotency_key, generation, uncertain
                    ) from error
                raise error
            delay = self._retry_policy.delay(attempt - 1, retry_after=retry_after, rng=self._rng)
            if pacer is not None and isinstance(error, RateLimitError):
                pacer.rate_limited(delay)
            logger.debug(
                "retrying %s %s in %.2f s after %s", method, path, delay, type(error).__name__
            )
            await self.clock.sleep(delay)

    def _give_up(self, outcome: Outcome, *, attempt: int, retries: int, uncertain: int) -> bool:
        if outcome is Outcome.FINAL or attempt > retries:
            return True
        # A create that may have made a task is resent only as often as it is safe to.
        return outcome is Outcome.RETRY_UNCERTAIN and uncertain > self.uncertain_create_retries

    async def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        headers: dict[str, str],
        content: bytes | None,
        attempt: int,
        *,
        is_create: bool,
    ) -> tuple[Answer | Exception, Outcome, float | None]:
        started = time.perf_counter()
        try:
            async with self._limiter:
                response, body = await self._send(method, url, headers, content)
        except httpx.RequestError as exc:  # transport failures, and bodies it cannot decode
            elapsed = (time.perf_counter() - started) * 1000
            logger.debug(
                "%s %s -> %s in %.1f ms (attempt %d)",
                *(method, path, type(exc).__name__, elapsed, attempt),
            )
            wrapped: Exception = (
                APITimeoutError(f"{method} {path} timed out ({type(exc).__name__})")
                if isinstance(exc, httpx.TimeoutException)
                else APIConnectionError(f"{method} {path} failed: {type(exc).__name__}: {exc}")
            )
            wrapped.__cause__ = exc
            return wrapped, classify_error(exc, is_create=is_create), None
        except _TooLargeError as exc:
            logger.debug("%s %s -> over %d bytes (attempt %d)", method, path, exc.limit, attempt)
            error = ResponseDecodeError(
                f"answer larger than {exc.limit} bytes: refused unread",
                status_code=exc.status_code,
                request_id=_request_id(exc.headers),
            )
            # Like a garbled success: a read may be repeated, a create's task may exist.
            outcome = Outcome.RETRY_UNCERTAIN if is_create else Outcome.RETRY_SAFE
            return error, outcome, None
        except Exception as exc:  # noqa: BLE001 - a transport's own error type, unmapped
            # Its repr may hold the request (headers included): keep only its type. The
            # request may have left, so a create's outcome is unknown.
            logger.debug("%s %s -> %s (attempt %d)", method, path, type(exc).__name__, attempt)
            unmapped = APIConnectionError(f"{method} {path} failed: {type(exc).__name__}")
            return unmapped, Outcome.RETRY_UNCERTAIN if is_create else Outcome.RETRY_SAFE, None
        elapsed = (time.perf_counter() - started) * 1000
        logger.debug(
            "%s %s -> %d in %.1f ms (attempt %d)",
            *(method, path, response.status_code, elapsed, attempt),
        )
        status = response.status_code
        if status < 400:
            if response.headers.get("Idempotency-Replayed", "").lower() == "true":
                self._idempotency_confirmed = True
            try:
                return _decode_success(response, body, now=self.clock.time()), Outcome.FINAL, None
            except APIError as exc:
                return exc, *_success_error_outcome(exc, status, is_create=is_create)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self.clock.time())
        return (
            _api_error(response, body, retry_after),
            classify_status(status, is_create=is_create),
            retry_after,
        )

    async def _send(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> tuple[httpx.Response, bytes]:
        """Send one request and read its answer, whole, within the attempt's deadline."""
        http = self._http_client()
        request = http.build_request(method, url, headers=headers, content=content)
        try:
            with anyio.fail_after(self._attempt_deadline):
                response = await http.send(request, auth=self._auth, stream=True)
                try:
                    body = await _read_capped(response, MAX_RESPONSE_BYTES)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise httpx.ReadTimeout(
                f"no whole answer within {self._attempt_deadline:g} s", request=request
            ) from None
        # A server may quote the key it refused (or another) back: it goes no further.
        redacted = redact_body(body, self._api_key.reveal(), secrets=response.status_code >= 400)
        return response, redacted


def _unknown_outcome(
    error: Exception,
    attempt: int,
    key: str,
    generation: GenerationRequest | None,
    uncertain: Callable[[str, str], EvolinkError] | None,
) -> Exception:
    """The "outcome unknown" error of a keyed request that may have taken effect."""
    if generation is not None:
        return SubmissionUncertainError(
            f"create outcome unknown after {attempt} attempt(s): {error}",
            idempotency_key=key,
            request=generation,
        )
    if uncertain is not None:
        return uncertain(f"outcome unknown after {attempt} attempt(s): {error}", key)
    return error  # pragma: no cover - a key is only given with one of the two


class _TooLargeError(Exception):
    def __init__(self, limit: int, status_code: int, headers: httpx.Headers) -> None:
        super().__init__(f"answer over {limit} bytes")
        self.limit = limit
        self.status_code = status_code
        self.headers = headers


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLargeError(limit, response.status_code, response.headers)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():  # decoded: a compressed bomb counts in full
        size += len(chunk)
        if size > limit:
            raise _TooLargeError(limit, response.status_code, response.headers)
        chunks.append(chunk)
    return b"".join(chunks)


def _whole_request_deadline(timeout: float | httpx.Timeout | None) -> float | None:
    """The longest one attempt may take: the largest of the configured timeouts."""
    if timeout is None or isinstance(timeout, (int, float)):
        return None if timeout is None else float(timeout)
    parts = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t]
    return max(parts) if parts else None


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


def _request_id(headers: httpx.Headers) -> str | None:
    request_id: str | None = headers.get("X-Request-Id") or headers.get("X-Oneapi-Request-Id")
    return request_id


def _decode_success(response: httpx.Response, body: bytes, *, now: float) -> Answer:
    """The decoded answer of a 2xx; raise the typed `APIError` if its body says `success: false`.

    The files API and `/v1/credits` answer `{success, code, msg, data}`, and report some
    failures with HTTP 200. A task never carries `success`; a body shaped like one (an
    `id` and a `status`) is a task whatever else it holds.
    """
    if response.status_code == 304:  # a conditional GET's "unchanged": no body to decode
        return Answer(status_code=304, headers=response.headers, data=None)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: JSON nested absurdly deep
        raise ResponseDecodeError(
            "response body is not valid JSON",
            status_code=response.status_code,
            request_id=_request_id(response.headers),
            body=body[:2000].decode("utf-8", "replace"),
        ) from None
    if isinstance(data, dict) and data.get("success") is False and not _is_task_shaped(data):
        # An error answer: any `sk-` key in it is hidden, as in a 4xx.
        raise _refusal(response, json.loads(redact_body(body, "", secrets=True)), now=now)
    return Answer(status_code=response.status_code, headers=response.headers, data=data)


def _success_error_outcome(
    error: APIError, status: int, *, is_create: bool
) -> tuple[Outcome, float | None]:
    """How to go on after `_decode_success` raised `error`: its outcome and Retry-After."""
    if isinstance(error, ResponseDecodeError):
        # A garbled success: a read can simply be repeated, but a create's task exists
        # and only its key can find it again.
        return Outcome.RETRY_UNCERTAIN if is_create else Outcome.RETRY_SAFE, None
    # `success: false`: a refusal, retried as the HTTP status its code names.
    named = _http_status(error.code) or status
    retry_after = error.retry_after if isinstance(error, RateLimitError) else None
    return classify_status(named, is_create=is_create), retry_after


def _is_task_shaped(data: Mapping[str, Any]) -> bool:
    return "id" in data and "status" in data


def _http_status(code: object) -> int | None:
    """The HTTP status a `success: false` body's `code` names (402, "429"), else None."""
    if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) == 3:
        code = int(code)
    if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
        return code
    return None


def _refusal(response: httpx.Response, data: dict[str, Any], *, now: float) -> APIError:
    """The typed error for a 2xx whose body is `{success: false, code, msg}`."""
    nested = data.get("error")
    error: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
    code = data.get("code", error.get("code"))
    if not isinstance(code, (str, int)) or isinstance(code, bool):
        code = None
    texts = (data.get("msg"), data.get("message"), error.get("message"))
    message = next((t for t in texts if isinstance(t, str) and t), None)
    request_id = _request_id(response.headers) or (
        data["request_id"] if isinstance(data.get("request_id"), str) else None
    )
    if code is None and message is None:
        # Nothing says what failed: an answer off the documented shape.
        return ResponseDecodeError(
            "success: false without a code or a message",
            status_code=response.status_code,
            request_id=request_id,
            body=data,
        )
    fields: dict[str, Any] = {
        "status_code": response.status_code,
        "code": code,
        "type": error.get("type") if isinstance(error.get("type"), str) else None,
        "param": error.get("param") if isinstance(error.get("param"), str) else None,
        "request_id": request_id,
        "body": data,
    }
    named = _http_status(code)
    cls = error_class_for(named) if named is not None else APIError
    text = message or "success: false"
    if cls is RateLimitError:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        return RateLimitError(text, retry_after=retry_after, **fields)
    return cls(text, **fields)


def _api_error(response: httpx.Response, raw: bytes, retry_after: float | None) -> APIError:
    """Build the typed error for an error answer (both the current and the pre-2026 envelope)."""
    body: Any
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = raw[:2000].decode("utf-8", "replace")
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        error = {}
    code = error.get("code")
    if not isinstance(code, (str, int)) or isinstance(code, bool):
        code = None
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = response.reason_phrase or "error"
    fields: dict[str, Any] = {
        "status_code": response.status_code,
        "code": code,
        "type": error.get("type") if isinstance(error.get("type"), str) else None,
        "param": error.get("param") if isinstance(error.get("param"), str) else None,
        "request_id": _request_id(response.headers),
        "body": body,
    }
    cls = error_class_for(response.status_code)
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **fields)
    return cls(message, **fields)
