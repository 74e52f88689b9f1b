"""The transport: the one place a request is built, sent, retried, paced and counted.

Everything above it (resources, the waiting engine, batches) hands it a method, a path, a
body and the request's `RequestKind`; the retry rules for that kind (`_retry.RULES`) are
applied here and nowhere else. Every attempt that leaves is counted once, on the
transport and on any `RequestCount` the caller passes, so the counts the SDK reports are
the counts a server log would show.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel
import attrs
import httpx

from evolink._answers import (
    MAX_RESPONSE_BYTES,
    Answer,
    TooLargeError,
    api_error,
    decode_success,
    read_capped,
    request_id_of,
    success_error_outcome,
)
from evolink._clock import Clock
from evolink._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    EvolinkError,
    OutcomeUnknownError,
    RateLimitError,
    ResponseDecodeError,
    SubmissionUncertainError,
    UploadUncertainError,
    ValidationError,
)
from evolink._http_backend import HttpBackend, default_transport
from evolink._idempotency import new_idempotency_key
from evolink._redact import redact_body, redact_escaped, redact_headers, redact_text
from evolink._retry import (
    NOT_SENT,
    RULES,
    Outcome,
    RequestKind,
    RetryPolicy,
    classify_error,
    classify_status,
    parse_retry_after,
)
from evolink._secret import Secret
from evolink._server_clock import ServerClock
from evolink._version import __version__

logger = logging.getLogger("evolink")

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.evolink.ai"
#: Evolink's files API, on its own host.
FILES_BASE_URL = "https://files-api.evolink.ai"


def files_base_url_for(base_url: str) -> str:
    """Where the files API is: `EVOLINK_FILES_BASE_URL`, else beside a non-default API
    (a simulator or a proxy serves both), else Evolink's files host."""
    configured = os.environ.get("EVOLINK_FILES_BASE_URL")
    if configured:
        return configured.rstrip("/")
    return FILES_BASE_URL if base_url == DEFAULT_BASE_URL else base_url


def _is_under(url: str, base: str) -> bool:
    """Whether `url` is on `base`'s scheme and host, at or below its path."""
    target, root = urlsplit(url), urlsplit(base)
    if (target.scheme.lower(), target.netloc.lower()) != (root.scheme.lower(), root.netloc.lower()):
        return False
    prefix = root.path.rstrip("/")
    return target.path == prefix or target.path.startswith(prefix + "/")


class Pacer(Protocol):
    """A shared brake for many requests (a batch's one backoff after a 429)."""

    async def before_attempt(self) -> None:
        """Wait while the brake is on."""

    def rate_limited(self, delay: float) -> None:
        """Put the brake on for `delay` seconds."""


@attrs.define
class RequestCount:
    """HTTP requests sent on someone's behalf (a batch's, a wait's)."""

    sent: int = 0


class _BearerAuth(httpx.Auth):
    """Adds the API key to each request as it leaves."""

    def __init__(self, key: Secret) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._key.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


def _as_is(data: Any) -> Any:
    return data


class Transport:
    """Sends requests for one client: its connection pool, key, limits and retry rules.

    Args:
        api_key: the key, already a `Secret`.
        base_url: the API's address, without a trailing slash.
        timeout: httpx timeouts; the largest also bounds one attempt, send to last byte.
        max_retries: failures (5xx, a lost connection) retried per request.
        max_connections: HTTP requests in flight at once (and the pool's size).
        clock: where time comes from.
        retry_policy: the waits between retries.
        transport: an httpx transport to send through (a simulator's, a mock's).
        http_client: an httpx client to borrow; `aclose` leaves it open.
        http_backend: which httpx transport to make when neither of the above is given.
    """

    def __init__(
        self,
        *,
        api_key: Secret,
        base_url: str,
        timeout: float | httpx.Timeout | None,
        max_retries: int,
        max_connections: int,
        clock: Clock,
        retry_policy: RetryPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        http_backend: HttpBackend = "httpx",
    ) -> None:
        self._api_key = api_key
        # The header is set on the outgoing request only, so no frame of ours holds it
        # (error trackers that capture local variables see only the Secret).
        self._auth = _BearerAuth(api_key)
        self.base_url = base_url
        self.max_retries = max_retries
        self.clock = clock
        self._retry_policy = retry_policy
        self.rng = random.Random()  # jitter, not secrets: one source per client
        self._owns_http_client = http_client is None
        # Made on first use, on the loop that uses it (the transport depends on the loop).
        self._http = http_client
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
        #: Idempotency-Key is undocumented: until a replayed answer shows the server honours
        #: it, an uncertain create is resent once at most (as Evolink's own client does).
        self.idempotency_confirmed = False
        #: Set once the server's `POST /v1/tasks/batch` gave an unusable answer: from then
        #: on, every read of this client is one GET per task.
        self.batch_reads_unusable = False
        #: Every HTTP request this transport sent (attempts that reached the network).
        self.sent = 0
        #: How far the server's clock is from ours (a task's age is by its stamp).
        self.server_clock = ServerClock()
        self.closed = False

    def files_base_url(self) -> str:
        """Where the files API is (`files_base_url_for` this transport's base URL)."""
        return files_base_url_for(self.base_url)

    def uncertain_resends(self, kind: RequestKind) -> int:
        """How often a keyed request that may have acted is resent with its key."""
        if self.idempotency_confirmed:
            return self.max_retries
        return min(RULES[kind].uncertain_unproven, self.max_retries)

    def bind_event_loop(self) -> None:
        """Tie the transport to the running event loop (its connections belong there)."""
        token = anyio.lowlevel.current_token().native_token
        if self._loop_token is None:
            self._loop_token = token
        elif self._loop_token is not token:
            raise ConfigurationError(
                "this AsyncEvolink was opened on another event loop; its connections belong "
                "there. Create one client per event loop (e.g. inside the app's lifespan)."
            )

    async def aclose(self) -> None:
        """Close the connection pool (a borrowed httpx client stays open)."""
        if self.closed:
            return
        self.closed = True
        if self._owns_http_client and self._http is not None:
            await self._http.aclose()

    async def send(
        self,
        kind: RequestKind,
        method: str,
        path: str,
        *,
        body: Any = None,
        parse: Callable[[Any], T] = _as_is,
        idempotency_key: str | None = None,
        subject: Any = None,
        retries: int | None = None,
        uncertain_before: int = 0,
        pacer: Pacer | None = None,
        limiter: anyio.CapacityLimiter | None = None,
        counts: Sequence[RequestCount] = (),
        before_attempt: Callable[[int], None] | None = None,
        may_resend: Callable[[], Awaitable[bool]] | None = None,
        on_unproven_resend: Callable[[], bool] | None = None,
        on_clean_resend: Callable[[], None] | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        parse_answer: Callable[[Answer], T] | None = None,
    ) -> T:
        """Send one request under its kind's retry rules; return `parse(data)` or raise.

        Args:
            kind: what the request does (its retry rules follow).
            parse: turns the decoded body into the result; a `ResponseDecodeError` from it
                is a garbled answer (repeated for a read; for a keyed request, its task
                exists and only its key finds it).
            idempotency_key: for a keyed request (one is made when not given).
            subject: what a `SubmissionUncertainError` names (the generation request).
            retries: failures retried; the client's `max_retries` when None.
            uncertain_before: earlier sends of this key whose outcome is unknown (a
                resumed run's), counted against the resends allowed.
            pacer: a shared brake: a 429 puts it on for every request that shares it,
                and is then waited out (up to the kind's `rate_limited`) rather than
                counted as a failure.
            limiter: a caller's own cap on requests in flight (a batch's), held per attempt.
            counts: more counters to add each attempt sent to.
            before_attempt: called with the attempt's number (1, 2, ...) once its turn has
                come, before it is sent; what it raises ends the request unsent.
            may_resend: asked before resending an uncertain keyed request beyond the
                resends allowed; may wait for other work to prove the server honours keys.
            on_unproven_resend: asked before a keyed request whose last attempt may have
                acted is resent while the server has not shown it honours keys (if it
                does not, that attempt may have made a task the resend makes again,
                warned in the log): False ends the request uncertain instead.
            on_clean_resend: called as a keyed request is sent again when no attempt
                before (nor `uncertain_before`) may have acted: only this one can make
                what it makes (a create held by 429s leaves minutes after its first try).
            url: the absolute address to send to instead of the base URL + `path` (the
                files API's host); it must lie under the base URL or the files API's
                (`files_base_url`), the only places the key is sent.
            headers: more headers (`If-None-Match`).
            parse_answer: used instead of `parse`, given the whole `Answer` (status,
                headers, data); a 304 reaches it as `Answer(status_code=304, data=None)`.

        Raises:
            SubmissionUncertainError: a create may have acted, and the last attempt failed
                (its key is the way to find the result).
            UploadUncertainError: the same for an upload (`subject` names its source).
            ConfigurationError: `url` is not under the base URL or the files API's.
            EvolinkError: the typed refusal or failure of the last attempt.
        """
        if self.closed:
            raise ConfigurationError("the client is closed")
        self.bind_event_loop()
        rules = RULES[kind]
        retries = self.max_retries if retries is None else retries
        if kind.keyed:
            idempotency_key = idempotency_key or new_idempotency_key()
        url = self._destination(method, path, url)
        headers_, content = self._prepare(body, idempotency_key if kind.keyed else None, headers)
        failures = limited = 0
        uncertain = uncertain_before
        attempt = 0
        while True:
            attempt += 1
            if pacer is not None:
                await pacer.before_attempt()
            clean = on_clean_resend if attempt > 1 and uncertain == 0 else None
            hook = _then(before_attempt, clean)
            result, outcome, retry_after = await self._attempt(
                kind, method, url, path, headers_, content, attempt, limiter, counts, hook
            )
            if not isinstance(result, Exception):
                try:
                    return parse(result.data) if parse_answer is None else parse_answer(result)
                except ResponseDecodeError as exc:
                    result, outcome, retry_after = (
                        exc,
                        *success_error_outcome(exc, result.status_code, is_create=kind.keyed),
                    )
            error = result
            uncertain += outcome is Outcome.RETRY_UNCERTAIN
            under_brake = pacer is not None and isinstance(error, RateLimitError)
            limited += under_brake
            failures += not under_brake
            spent = limited > rules.rate_limited if under_brake else failures > retries
            if (
                outcome is Outcome.FINAL
                or spent
                or not await self._may_resend(kind, outcome, uncertain, may_resend)
                or not self._resend_unproven(kind, outcome, path, on_unproven_resend)
            ):
                if uncertain and kind.keyed and idempotency_key is not None:
                    message = f"outcome unknown after {attempt} attempt(s): {error}"
                    raise _outcome_unknown(kind, message, idempotency_key, subject) from error
                raise error
            delay = self._retry_policy.delay(attempt - 1, retry_after=retry_after, rng=self.rng)
            logger.debug(
                "retrying %s %s in %.2f s after %s", method, path, delay, type(error).__name__
            )
            if under_brake and pacer is not None:
                pacer.rate_limited(delay)  # the next attempt waits on the brake
            else:
                await self.clock.sleep(delay)

    def _resend_unproven(
        self, kind: RequestKind, outcome: Outcome, path: str, hook: Callable[[], bool] | None
    ) -> bool:
        """Whether a resend of a request whose last attempt may have acted goes ahead on a
        server not known to honour keys (the caller's `hook` may refuse it); said so."""
        if outcome is not Outcome.RETRY_UNCERTAIN or not kind.keyed or self.idempotency_confirmed:
            return True
        if hook is not None and not hook():
            return False
        logger.warning(
            "POST %s: resending after an attempt whose fate is unknown; the server has not"
            " shown it honours idempotency keys: if it does not, a second task may be made",
            path,
        )
        return True

    def _destination(self, method: str, path: str, url: str | None) -> str:
        """Where a request goes: the base URL + `path`, or a `url` under a configured host."""
        key = self._api_key.reveal()
        if key and (key in path or (url is not None and key in url)):
            # A task id quoting the key (a hostile server's, or a callback's) would put it
            # in an address, which logs print (httpx's own included): refused unsent.
            raise ValidationError("url", "no_secret", "the address holds the API key: not sent")
        if url is None:
            return self.base_url + path
        if _is_under(url, self.base_url) or _is_under(url, self.files_base_url()):
            return url
        # The key goes to the configured hosts only: refused before anything is sent.
        raise ConfigurationError(f"{method} {path}: {url!r} is not a configured Evolink host")

    def _prepare(
        self, body: Any, idempotency_key: str | None, extra: Mapping[str, str] | None = None
    ) -> tuple[dict[str, str], bytes | None]:
        # A caller's headers first: ours (the key's, the body's type) are not replaced.
        headers = {**(extra or {}), **self._headers}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        if content is not None:
            headers["Content-Type"] = "application/json"
        return headers, content

    async def _may_resend(
        self,
        kind: RequestKind,
        outcome: Outcome,
        uncertain: int,
        may_resend: Callable[[], Awaitable[bool]] | None,
    ) -> bool:
        """Whether a request whose last attempt may have acted may be sent again."""
        if outcome is not Outcome.RETRY_UNCERTAIN or uncertain <= self.uncertain_resends(kind):
            return True
        # Beyond what is safe on an unproven server: the caller may wait for a proof.
        return may_resend is not None and await may_resend()

    async def _attempt(
        self,
        kind: RequestKind,
        method: str,
        url: str,
        path: str,
        headers: dict[str, str],
        content: bytes | None,
        attempt: int,
        limiter: anyio.CapacityLimiter | None,
        counts: Sequence[RequestCount],
        before_attempt: Callable[[int], None] | None,
    ) -> tuple[Answer | EvolinkError, Outcome, float | None]:
        if limiter is None:
            async with self._limiter:
                if before_attempt is not None:
                    before_attempt(attempt)
                return await self._attempt_now(
                    kind, method, url, path, headers, content, attempt, counts
                )
        async with limiter, self._limiter:
            if before_attempt is not None:
                before_attempt(attempt)
            return await self._attempt_now(
                kind, method, url, path, headers, content, attempt, counts
            )

    async def _attempt_now(
        self,
        kind: RequestKind,
        method: str,
        url: str,
        path: str,
        headers: dict[str, str],
        content: bytes | None,
        attempt: int,
        counts: Sequence[RequestCount],
    ) -> tuple[Answer | EvolinkError, Outcome, float | None]:
        is_create = kind.keyed
        started = time.perf_counter()
        sent_at = self.clock.time()
        try:
            response, body = await self._send(method, url, headers, content)
        except httpx.RequestError as exc:  # transport failures, and bodies it cannot decode
            if not isinstance(exc, NOT_SENT):
                self._count(counts)
            elapsed = (time.perf_counter() - started) * 1000
            logger.debug(
                "%s %s -> %s in %.1f ms (attempt %d)",
                *(method, path, type(exc).__name__, elapsed, attempt),
            )
            # A transport's message may quote the request (a proxy's refusal, say): the key
            # goes neither into ours nor into the cause a traceback prints.
            said = redact_text(str(exc), self._api_key.reveal())
            if said != str(exc):
                exc.args = (said,)
            wrapped: EvolinkError = (
                APITimeoutError(f"{method} {path} timed out ({type(exc).__name__})")
                if isinstance(exc, httpx.TimeoutException)
                else APIConnectionError(f"{method} {path} failed: {type(exc).__name__}: {said}")
            )
            wrapped.__cause__ = exc
            return wrapped, classify_error(exc, is_create=is_create), None
        except TooLargeError as exc:
            self._count(counts)
            logger.debug("%s %s -> over %d bytes (attempt %d)", method, path, exc.limit, attempt)
            error = ResponseDecodeError(
                f"answer larger than {exc.limit} bytes: refused unread",
                status_code=exc.status_code,
                request_id=request_id_of(exc.headers),
            )
            # Like a garbled success: a read may be repeated, a create's task may exist.
            outcome = Outcome.RETRY_UNCERTAIN if is_create else Outcome.RETRY_SAFE
            return error, outcome, None
        except Exception as exc:  # noqa: BLE001 - a transport's own error type, unmapped
            self._count(counts)
            # Its repr may hold the request (headers included): keep only its type. The
            # request may have left, so a create's outcome is unknown.
            logger.debug("%s %s -> %s (attempt %d)", method, path, type(exc).__name__, attempt)
            unmapped = APIConnectionError(f"{method} {path} failed: {type(exc).__name__}")
            return unmapped, Outcome.RETRY_UNCERTAIN if is_create else Outcome.RETRY_SAFE, None
        except BaseException:
            # Cancelled while the request was out: it may have reached the server.
            self._count(counts)
            raise
        self._count(counts)
        self.server_clock.saw_date(response.headers.get("Date"), sent_at, self.clock.time())
        elapsed = (time.perf_counter() - started) * 1000
        logger.debug(
            "%s %s -> %d in %.1f ms (attempt %d)",
            *(method, path, response.status_code, elapsed, attempt),
        )
        status = response.status_code
        if status < 400:
            if response.headers.get("Idempotency-Replayed", "").lower() == "true":
                self.idempotency_confirmed = True
            try:
                return decode_success(response, body, now=self.clock.time()), Outcome.FINAL, None
            except APIError as exc:  # garbled, or `success: false`
                return exc, *success_error_outcome(exc, status, is_create=is_create)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self.clock.time())
        return (
            api_error(response, body, retry_after),
            classify_status(status, is_create=is_create),
            retry_after,
        )

    def _count(self, counts: Sequence[RequestCount]) -> None:
        self.sent += 1
        for count in counts:
            count.sent += 1

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            transport = (
                self._transport
                or default_transport(self._http_backend, self._limits)
                # httpx's own, as it would build it: wrapped below like any other.
                or httpx.AsyncHTTPTransport(limits=self._limits)
            )
            self._http = httpx.AsyncClient(
                transport=_Scrubbing(transport, self._api_key),
                timeout=self._timeout,
                limits=self._limits,
            )
        return self._http

    async def _send(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> tuple[httpx.Response, bytes]:
        """Send one request and read its answer, whole, within the attempt's deadline."""
        http = self._http_client()
        request = http.build_request(method, url, headers=headers, content=content)
        try:
            with anyio.fail_after(self._attempt_deadline):
                response = await http.send(request, auth=self._auth, stream=True)
                if not self._owns_http_client:
                    _scrub(response, self._api_key)  # a caller's own client: here, then
                try:
                    body = await read_capped(response, MAX_RESPONSE_BYTES)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise httpx.ReadTimeout(
                f"no whole answer within {self._attempt_deadline:g} s", request=request
            ) from None
        # A server may quote the key it refused (or another) back: it goes no further,
        # JSON-escaped or not.
        key, refused = self._api_key.reveal(), response.status_code >= 400
        redacted = redact_escaped(redact_body(body, key, secrets=refused), key, secrets=refused)
        return response, redacted


class _Scrubbing(httpx.AsyncBaseTransport):
    """A transport whose answers hide the key in their headers (a request id quoting it)
    and status line (`401 Bad key sk-...`) before anything reads them: httpx's own log
    line of each request included."""

    def __init__(self, inner: httpx.AsyncBaseTransport, key: Secret) -> None:
        self._inner = inner
        self._key = key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        _scrub(response, self._key)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _scrub(response: httpx.Response, key: Secret) -> None:
    redact_headers(response.headers, key.reveal())
    _redact_reason(response, key.reveal())


def _redact_reason(response: httpx.Response, key: str) -> None:
    """Hide the key in the status line's reason phrase (`401 Bad key sk-...`), in place."""
    reason = response.extensions.get("reason_phrase")
    if isinstance(reason, bytes) and reason:
        said = reason.decode("latin-1")
        hidden = redact_text(said, key)
        if hidden != said:
            response.extensions["reason_phrase"] = hidden.encode("latin-1", errors="replace")


def _outcome_unknown(
    kind: RequestKind, message: str, key: str, subject: Any
) -> OutcomeUnknownError:
    """The "outcome unknown" error of a keyed request of `kind` that may have acted."""
    if kind is RequestKind.UPLOAD:
        return UploadUncertainError(message, idempotency_key=key, source=str(subject))
    return SubmissionUncertainError(message, idempotency_key=key, request=subject)


def _whole_request_deadline(timeout: float | httpx.Timeout | None) -> float | None:
    """The longest one attempt may take: the largest of the configured timeouts."""
    if timeout is None or isinstance(timeout, (int, float)):
        return None if timeout is None else float(timeout)
    parts = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t]
    return max(parts) if parts else None


def _then(
    first: Callable[[int], None] | None, then: Callable[[], None] | None
) -> Callable[[int], None] | None:
    """`first`, then `then` (either may be None): an attempt's hooks in turn."""
    if then is None:
        return first

    def both(attempt: int) -> None:
        if first is not None:
            first(attempt)
        then()

    return both
