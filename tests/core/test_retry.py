"""Retries: reads repeat freely, a create only when it cannot pay twice."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
import respx
from _core_support import CREATE_PATH, TASK_ID, TASK_PATH, error_body, task_payload

from evolink import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    GenerationRequest,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SubmissionUncertainError,
    ValidationError,
)
from evolink._retry import Outcome, classify_error, classify_status, parse_retry_after

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z, the VirtualClock's start


def _http_date(offset: float) -> str:
    return format_datetime(
        datetime.fromtimestamp(NOW, tz=timezone.utc) + timedelta(seconds=offset), usegmt=True
    )


class _TopRng(random.Random):
    """An rng whose jitter always picks the cap."""

    def uniform(self, a: float, b: float) -> float:  # noqa: ARG002 - the floor is ignored
        return b


# -- parse_retry_after -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("7", 7.0, id="seconds"),
        pytest.param(" 7 ", 7.0, id="seconds-with-spaces"),
        pytest.param("2.5", 2.5, id="float-seconds"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("-3", 0.0, id="negative-clamped"),
        pytest.param(_http_date(30), 30.0, id="http-date-future"),
        pytest.param(_http_date(-30), 0.0, id="http-date-past"),
        pytest.param("Thu, 01 Jan 2026 00:00:10", 10.0, id="http-date-no-zone"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("", None, id="empty"),
        pytest.param("nan", None, id="nan"),
        pytest.param("Mon, 99 Foo 2026 99:99:99 GMT", None, id="broken-date"),
    ],
)
def test_parse_retry_after(value, expected):
    """Retry-After in seconds or as an HTTP date becomes seconds from now, or None."""
    assert expected == parse_retry_after(value, now=NOW)


# -- RetryPolicy and classification ------------------------------------------------------


@pytest.mark.parametrize(
    ("retry", "expected"),
    [
        pytest.param(0, 0.5, id="first"),
        pytest.param(1, 1.0, id="second"),
        pytest.param(3, 4.0, id="fourth"),
        pytest.param(10, 8.0, id="capped"),
    ],
)
def test_backoff_caps_grow_exponentially(retry, expected):
    """Without Retry-After the wait's cap doubles per retry up to max_delay."""
    assert expected == RetryPolicy().delay(retry, retry_after=None, rng=_TopRng())


def test_backoff_has_full_jitter():
    """The wait is drawn between 0 and the cap."""
    rng = random.Random(1)
    waits = [RetryPolicy().delay(2, retry_after=None, rng=rng) for _ in range(200)]

    assert all(0.0 <= w <= 2.0 for w in waits)
    assert min(waits) < 0.5
    assert max(waits) > 1.5


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param(3.0, 3.0, id="honoured"),
        pytest.param(0.0, 0.1, id="zero-still-waits-the-floor"),
        pytest.param(600.0, 60.0, id="capped"),
    ],
)
def test_backoff_honours_retry_after(retry_after, expected):
    """A server's Retry-After replaces the backoff, capped by max_retry_after, floored."""
    assert expected == RetryPolicy().delay(0, retry_after=retry_after, rng=_TopRng())


@pytest.mark.parametrize(
    ("status", "is_create", "expected"),
    [
        pytest.param(400, False, Outcome.FINAL, id="get-400"),
        pytest.param(429, False, Outcome.RETRY_SAFE, id="get-429"),
        pytest.param(500, False, Outcome.RETRY_SAFE, id="get-500"),
        pytest.param(504, False, Outcome.RETRY_SAFE, id="get-504"),
        pytest.param(501, False, Outcome.FINAL, id="get-501"),
        pytest.param(400, True, Outcome.FINAL, id="post-400"),
        pytest.param(429, True, Outcome.RETRY_SAFE, id="post-429"),
        pytest.param(503, True, Outcome.RETRY_SAFE, id="post-503"),
        pytest.param(500, True, Outcome.RETRY_UNCERTAIN, id="post-500"),
        pytest.param(502, True, Outcome.RETRY_UNCERTAIN, id="post-502"),
        pytest.param(504, True, Outcome.RETRY_UNCERTAIN, id="post-504"),
    ],
)
def test_classify_status(status, is_create, expected):
    """Statuses are final, safe to repeat, or (for a create) uncertain."""
    assert expected == classify_status(status, is_create=is_create)


@pytest.mark.parametrize(
    ("error", "is_create", "expected"),
    [
        pytest.param(httpx.ConnectError("x"), True, Outcome.RETRY_SAFE, id="post-connect"),
        pytest.param(
            httpx.ConnectTimeout("x"), True, Outcome.RETRY_SAFE, id="post-connect-timeout"
        ),
        pytest.param(httpx.PoolTimeout("x"), True, Outcome.RETRY_SAFE, id="post-pool-timeout"),
        pytest.param(httpx.ReadTimeout("x"), True, Outcome.RETRY_UNCERTAIN, id="post-read-timeout"),
        pytest.param(
            httpx.WriteTimeout("x"), True, Outcome.RETRY_UNCERTAIN, id="post-write-timeout"
        ),
        pytest.param(
            httpx.RemoteProtocolError("x"), True, Outcome.RETRY_UNCERTAIN, id="post-protocol"
        ),
        pytest.param(httpx.ReadTimeout("x"), False, Outcome.RETRY_SAFE, id="get-read-timeout"),
        pytest.param(httpx.RemoteProtocolError("x"), False, Outcome.RETRY_SAFE, id="get-protocol"),
    ],
)
def test_classify_error(error, is_create, expected):
    """Failures before sending are safe; after sending, a create's outcome is uncertain."""
    assert expected == classify_error(error, is_create=is_create)


# -- GET retries --------------------------------------------------------------------------


def _task() -> httpx.Response:
    return httpx.Response(200, json=task_payload())


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.ConnectError("refused"), id="connect-error"),
        pytest.param(httpx.ReadTimeout("slow"), id="read-timeout"),
        pytest.param(httpx.RemoteProtocolError("dropped"), id="protocol-error"),
        pytest.param(httpx.Response(429, json=error_body("rate_limit_exceeded")), id="429"),
        pytest.param(httpx.Response(500, json=error_body("internal_error")), id="500"),
        pytest.param(httpx.Response(502, text="bad gateway"), id="502"),
        pytest.param(httpx.Response(503, json=error_body("unavailable")), id="503"),
        pytest.param(httpx.Response(504, text="gateway timeout"), id="504"),
    ],
)
@pytest.mark.anyio
async def test_get_retries_then_succeeds(router: respx.MockRouter, make_client, clock, failure):
    """A read is retried after each retryable failure, with a backoff sleep in between."""
    route = router.get(TASK_PATH).mock(side_effect=[failure, failure, _task()])

    async with clock.running(), make_client(clock=clock, retry_policy=RetryPolicy()) as client:
        task = await client.tasks.get(TASK_ID)

    assert TASK_ID == task.id
    assert 3 == route.call_count
    # Two full-jitter waits, capped at 0.5 s and 1 s.
    assert 0.0 < clock.monotonic() <= 1.5


@pytest.mark.anyio
async def test_get_gives_up_after_max_retries(router: respx.MockRouter, make_client):
    """After max_retries retries the last error is raised."""
    route = router.get(TASK_PATH).respond(503, json=error_body("unavailable"))

    async with make_client(max_retries=3) as client:
        with pytest.raises(ServerError):
            await client.tasks.get(TASK_ID)

    assert 4 == route.call_count


@pytest.mark.anyio
async def test_get_connect_error_after_retries(router: respx.MockRouter, make_client):
    """A read that never connects ends in APIConnectionError after its retries."""
    route = router.get(TASK_PATH).mock(side_effect=httpx.ConnectError("refused"))

    async with make_client() as client:
        with pytest.raises(APIConnectionError):
            await client.tasks.get(TASK_ID)

    assert 3 == route.call_count


@pytest.mark.parametrize(
    "status",
    [pytest.param(400, id="400"), pytest.param(404, id="404"), pytest.param(501, id="501")],
)
@pytest.mark.anyio
async def test_get_final_statuses_are_not_retried(router: respx.MockRouter, make_client, status):
    """A non-retryable error answer is raised after one attempt."""
    route = router.get(TASK_PATH).respond(status, json=error_body("x"))

    async with make_client() as client:
        with pytest.raises(Exception):  # noqa: B017, PT011 - the class is pinned elsewhere
            await client.tasks.get(TASK_ID)

    assert 1 == route.call_count


@pytest.mark.parametrize(
    ("header", "expected_wait"),
    [
        pytest.param("4", 4.0, id="seconds"),
        pytest.param("2.5", 2.5, id="float-seconds"),
        pytest.param(_http_date(12), 12.0, id="http-date"),
        pytest.param("3600", 20.0, id="capped"),
    ],
)
@pytest.mark.anyio
async def test_get_honours_retry_after(
    router: respx.MockRouter, make_client, clock, header, expected_wait
):
    """The wait after a 429 is the server's Retry-After, capped by max_retry_after."""
    limited = httpx.Response(
        429, json=error_body("rate_limit_exceeded"), headers={"Retry-After": header}
    )
    router.get(TASK_PATH).mock(side_effect=[limited, _task()])

    async with clock.running():
        policy = RetryPolicy(max_retry_after=20.0)
        async with make_client(clock=clock, retry_policy=policy) as client:
            await client.tasks.get(TASK_ID)

    assert expected_wait == pytest.approx(clock.monotonic())


@pytest.mark.anyio
async def test_max_retries_zero_on_client(router: respx.MockRouter, make_client):
    """max_retries=0 on the client turns retries off."""
    route = router.get(TASK_PATH).respond(503)

    async with make_client(max_retries=0) as client:
        with pytest.raises(ServerError):
            await client.tasks.get(TASK_ID)

    assert 1 == route.call_count


@pytest.mark.anyio
async def test_max_retries_zero_per_call(router: respx.MockRouter, make_client):
    """max_retries=0 on one create turns its retries off."""
    route = router.post(CREATE_PATH).respond(503)

    async with make_client(max_retries=5) as client:
        with pytest.raises(ServerError):
            await client.images.generate("a fox", max_retries=0)

    assert 1 == route.call_count


@pytest.mark.anyio
async def test_max_retries_per_call_raises_the_client_default(
    router: respx.MockRouter, make_client
):
    """A per-call max_retries above the client's allows that many retries."""
    route = router.post(CREATE_PATH).respond(429)

    async with make_client(max_retries=0) as client:
        with pytest.raises(RateLimitError):
            await client.images.generate("a fox", max_retries=3)

    assert 4 == route.call_count


# -- POST retries -------------------------------------------------------------------------


def _keys(route: respx.Route) -> list[str]:
    return [call.request.headers["Idempotency-Key"] for call in route.calls]


@pytest.mark.anyio
async def test_create_always_sends_an_idempotency_key(router: respx.MockRouter, make_client):
    """Every create carries a generated, well-formed Idempotency-Key, new per call."""
    route = router.post(CREATE_PATH).respond(200, json=task_payload())

    async with make_client() as client:
        await client.images.generate("a fox")
        await client.images.generate("a fox")

    first, second = _keys(route)
    assert first != second
    for key in (first, second):
        assert 16 <= len(key) <= 96
        assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


@pytest.mark.anyio
async def test_read_has_no_idempotency_key(router: respx.MockRouter, make_client):
    """A read sends no Idempotency-Key."""
    route = router.get(TASK_PATH).respond(200, json=task_payload())

    async with make_client() as client:
        await client.tasks.get(TASK_ID)

    assert "Idempotency-Key" not in route.calls.last.request.headers


@pytest.mark.anyio
async def test_caller_idempotency_key_is_used_as_is(router: respx.MockRouter, make_client):
    """A caller-given key is sent unchanged on every attempt."""
    key = "order-1234.retry_A-b"
    route = router.post(CREATE_PATH).mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json=task_payload())]
    )

    async with make_client() as client:
        await client.images.generate("a fox", idempotency_key=key)

    assert [key, key] == _keys(route)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("short", id="too-short"),
        pytest.param("x" * 97, id="too-long"),
        pytest.param("has spaces in the key!", id="bad-characters"),
        pytest.param("ключ-ключ-ключ-ключ", id="non-ascii"),
        pytest.param("", id="empty"),
    ],
)
@pytest.mark.anyio
async def test_malformed_idempotency_key(router: respx.MockRouter, make_client, key):
    """A malformed caller key is a ValidationError and nothing is sent."""
    async with make_client() as client:
        with pytest.raises(ValidationError) as info:
            await client.images.generate("a fox", idempotency_key=key)

    assert ("idempotency_key", "format") == (info.value.field, info.value.rule)
    assert 0 == len(router.calls)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.ConnectError("refused"), id="connect-error"),
        pytest.param(httpx.ConnectTimeout("slow"), id="connect-timeout"),
        pytest.param(httpx.Response(429, json=error_body("rate_limit_exceeded")), id="429"),
        pytest.param(httpx.Response(503, json=error_body("unavailable")), id="503"),
    ],
)
@pytest.mark.anyio
async def test_create_retried_freely_when_nothing_was_made(
    router: respx.MockRouter, make_client, failure
):
    """A create refused up front is retried, with the same key, and succeeds."""
    route = router.post(CREATE_PATH).mock(
        side_effect=[failure, failure, httpx.Response(200, json=task_payload())]
    )

    async with make_client() as client:
        task = await client.images.generate("a fox")

    assert TASK_ID == task.id
    keys = _keys(route)
    assert 3 == len(keys)
    assert 1 == len(set(keys))


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.ConnectError("refused"), id="connect-error"),
        pytest.param(httpx.Response(429, json=error_body("rate_limit_exceeded")), id="429"),
        pytest.param(httpx.Response(503, json=error_body("unavailable")), id="503"),
    ],
)
@pytest.mark.anyio
async def test_create_refused_every_time_raises_the_error(
    router: respx.MockRouter, make_client, failure
):
    """A create refused on every attempt raises that refusal, not an uncertainty."""
    route = router.post(CREATE_PATH).mock(side_effect=[failure] * 3)

    async with make_client() as client:
        with pytest.raises((APIConnectionError, RateLimitError, ServerError)) as info:
            await client.images.generate("a fox")

    assert not isinstance(info.value, SubmissionUncertainError)
    assert 3 == route.call_count


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.ReadTimeout("slow"), id="read-timeout"),
        pytest.param(httpx.WriteTimeout("slow"), id="write-timeout"),
        pytest.param(httpx.RemoteProtocolError("dropped"), id="protocol-error"),
        pytest.param(httpx.Response(500, json=error_body("internal_error")), id="500"),
        pytest.param(httpx.Response(502, text="bad gateway"), id="502"),
        pytest.param(httpx.Response(504, text="gateway timeout"), id="504"),
    ],
)
@pytest.mark.anyio
async def test_uncertain_create_retried_with_same_key(
    router: respx.MockRouter, make_client, failure
):
    """After an uncertain failure a create is repeated only with the same key."""
    route = router.post(CREATE_PATH).mock(
        side_effect=[failure, httpx.Response(200, json=task_payload())]
    )

    async with make_client() as client:
        task = await client.images.generate("a fox")

    assert TASK_ID == task.id
    first, second = _keys(route)
    assert first == second
    assert route.calls[0].request.content == route.calls[1].request.content


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.ReadTimeout("slow"), id="read-timeout"),
        pytest.param(httpx.RemoteProtocolError("dropped"), id="protocol-error"),
        pytest.param(httpx.Response(500, json=error_body("internal_error")), id="500"),
        pytest.param(httpx.Response(502, text="bad gateway"), id="502"),
        pytest.param(httpx.Response(504, text="gateway timeout"), id="504"),
    ],
)
@pytest.mark.anyio
async def test_uncertain_create_out_of_retries(router: respx.MockRouter, make_client, failure):
    """An uncertain create that runs out of retries raises SubmissionUncertainError."""
    route = router.post(CREATE_PATH).mock(side_effect=[failure] * 3)

    async with make_client() as client:
        with pytest.raises(SubmissionUncertainError) as info:
            await client.images.generate("a fox", size="1:1", n=2)

    err = info.value
    keys = _keys(route)
    # The server has not shown it honours keys: one resend, not max_retries.
    assert [err.idempotency_key] * 2 == keys
    assert GenerationRequest(prompt="a fox", size="1:1", n=2) == err.request
    assert err.idempotency_key in str(err)
    assert isinstance(err.__cause__, (APITimeoutError, APIConnectionError, ServerError))


@pytest.mark.anyio
async def test_uncertain_creates_resend_more_once_keys_are_honoured(
    router: respx.MockRouter, make_client
):
    """After a replayed answer proves the server honours keys, max_retries resends are made."""
    replayed = httpx.Response(200, json=task_payload(), headers={"Idempotency-Replayed": "true"})
    route = router.post(CREATE_PATH).mock(
        side_effect=[httpx.ReadTimeout("slow"), replayed] + [httpx.ReadTimeout("slow")] * 3
    )

    async with make_client(max_retries=2) as client:
        assert client.idempotency_confirmed is False
        await client.images.generate("a fox")
        assert client.idempotency_confirmed is True
        with pytest.raises(SubmissionUncertainError):
            await client.images.generate("an owl")

    assert 2 + 3 == route.call_count


@pytest.mark.anyio
async def test_uncertain_create_without_retries(router: respx.MockRouter, make_client):
    """With retries off, one uncertain attempt already raises SubmissionUncertainError."""
    router.post(CREATE_PATH).mock(side_effect=httpx.ReadTimeout("slow"))

    async with make_client(max_retries=0) as client:
        with pytest.raises(SubmissionUncertainError) as info:
            await client.images.generate("a fox", idempotency_key="my-own-key-0123456789")

    assert "my-own-key-0123456789" == info.value.idempotency_key


@pytest.mark.parametrize(
    "sequence",
    [
        pytest.param(
            [httpx.ReadTimeout("slow"), httpx.Response(429), httpx.ConnectError("refused")],
            id="uncertain-then-refused",
        ),
        pytest.param(
            [httpx.ConnectError("refused"), httpx.Response(503), httpx.Response(500)],
            id="refused-then-uncertain",
        ),
        pytest.param(
            [httpx.Response(502), httpx.Response(400, json=error_body("invalid_request"))],
            id="uncertain-then-final",
        ),
    ],
)
@pytest.mark.anyio
async def test_any_uncertain_attempt_makes_the_failure_uncertain(
    router: respx.MockRouter, make_client, sequence
):
    """If any attempt may have reached the server, the failure is SubmissionUncertainError."""
    route = router.post(CREATE_PATH).mock(side_effect=sequence)

    async with make_client() as client:
        with pytest.raises(SubmissionUncertainError) as info:
            await client.images.generate("a fox")

    assert {info.value.idempotency_key} == set(_keys(route))


@pytest.mark.anyio
async def test_final_create_error_is_not_retried(router: respx.MockRouter, make_client):
    """A 400 on a create is raised at once, never retried."""
    route = router.post(CREATE_PATH).respond(400, json=error_body("invalid_request"))

    async with make_client() as client:
        with pytest.raises(BadRequestError):
            await client.images.generate("a fox")

    assert 1 == route.call_count


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.ConnectError("refused"), id="connect-error"),
        pytest.param(httpx.ReadTimeout("slow"), id="read-timeout"),
        pytest.param(httpx.Response(429), id="429"),
        pytest.param(httpx.Response(500), id="500"),
        pytest.param(httpx.Response(503), id="503"),
    ],
)
@pytest.mark.anyio
async def test_post_never_sent_twice_with_different_keys(
    router: respx.MockRouter, make_client, failure
):
    """Across every retry of one create, exactly one Idempotency-Key and one body are sent."""
    route = router.post(CREATE_PATH).mock(side_effect=[failure] * 4)

    async with make_client(max_retries=3) as client:
        with pytest.raises(Exception):  # noqa: B017, PT011 - classes are pinned elsewhere
            await client.images.generate("a fox")

    uncertain = isinstance(failure, httpx.ReadTimeout) or (
        isinstance(failure, httpx.Response) and failure.status_code == 500
    )
    assert (2 if uncertain else 4) == route.call_count  # uncertain: one resend only
    assert 1 == len(set(_keys(route)))
    assert 1 == len({call.request.content for call in route.calls})


class _Pacer:
    def __init__(self) -> None:
        self.attempts = 0
        self.braked: list[float] = []

    async def before_attempt(self) -> None:
        self.attempts += 1

    def rate_limited(self, delay: float) -> None:
        self.braked.append(delay)


@pytest.mark.anyio
async def test_pacer_sees_every_attempt_and_rate_limit(
    router: respx.MockRouter, make_client, clock
):
    """A pacer is consulted before each attempt and told of each 429's wait."""
    router.post(CREATE_PATH).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(503),
            httpx.Response(200, json=task_payload()),
        ]
    )
    pacer = _Pacer()

    async with clock.running(), make_client(clock=clock, retry_policy=RetryPolicy()) as client:
        await client.images.create(GenerationRequest(prompt="a fox"), pacer=pacer)

    assert 3 == pacer.attempts
    assert [3.0] == pacer.braked


@pytest.mark.parametrize(
    ("kwargs", "expected_attempts"),
    [
        pytest.param({}, 3, id="default"),
        pytest.param({"retry_policy": RetryPolicy(max_retries=0)}, 1, id="policy-off"),
        pytest.param({"retry_policy": RetryPolicy(max_retries=4)}, 5, id="policy-four"),
        pytest.param(
            {"retry_policy": RetryPolicy(max_retries=4), "max_retries": 1}, 2, id="argument-wins"
        ),
    ],
)
@pytest.mark.anyio
async def test_retry_policy_max_retries_is_honoured(
    router: respx.MockRouter, make_client, kwargs, expected_attempts
):
    """A RetryPolicy's max_retries counts unless max_retries is given too."""
    route = router.get(TASK_PATH).respond(503)
    kwargs = dict(kwargs)  # parametrized values are shared across backends
    policy = kwargs.pop("retry_policy", RetryPolicy())
    fast = RetryPolicy(
        max_retries=policy.max_retries, initial_delay=0.0, max_delay=0.0, max_retry_after=0.0
    )

    async with make_client(retry_policy=fast, **kwargs) as client:
        with pytest.raises(ServerError):
            await client.tasks.get(TASK_ID)

    assert expected_attempts == route.call_count
    assert expected_attempts - 1 == client.max_retries
