"""Every error answer and transport failure becomes a typed `EvolinkError`."""

from __future__ import annotations

import json

import httpx
import pytest
import respx
from _core_support import TASK_ID, TASK_PATH, error_body, task_payload

import evolink
from evolink import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    EvolinkError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("status", "code", "type_", "cls"),
    [
        pytest.param(400, "invalid_task_id", "invalid_request_error", BadRequestError, id="400"),
        pytest.param(401, "unauthorized", "authentication_error", AuthenticationError, id="401"),
        pytest.param(
            402, "quota_exceeded", "insufficient_quota", InsufficientCreditsError, id="402"
        ),
        pytest.param(
            403, "permission_denied", "invalid_request_error", PermissionDeniedError, id="403"
        ),
        pytest.param(404, "task_not_found", "invalid_request_error", NotFoundError, id="404"),
        pytest.param(409, "idempotency_conflict", "invalid_request_error", ConflictError, id="409"),
        pytest.param(413, "too_large", "invalid_request_error", BadRequestError, id="413"),
        pytest.param(418, "teapot", "whatever", APIError, id="418-unmapped"),
        pytest.param(429, "rate_limit_exceeded", "evo_api_error", RateLimitError, id="429"),
        pytest.param(500, "internal_error", "api_error", ServerError, id="500"),
        pytest.param(502, "bad_gateway", "api_error", ServerError, id="502"),
        pytest.param(503, "unavailable", "api_error", ServerError, id="503"),
        pytest.param(504, "gateway_timeout", "api_error", ServerError, id="504"),
    ],
)
async def test_status_maps_to_typed_error_current_envelope(
    router: respx.MockRouter, make_client, status, code, type_, cls
):
    """Each status becomes its error class carrying the current envelope's fields."""
    body = error_body(code, "it went wrong", type_)
    router.get(TASK_PATH).respond(status, json=body, headers={"X-Request-Id": "req-1"})

    async with make_client(max_retries=0) as client:
        with pytest.raises(APIError) as info:
            await client.tasks.get(TASK_ID)

    err = info.value
    assert cls is type(err)
    assert status == err.status_code
    assert code == err.code
    assert "it went wrong" == err.message
    assert type_ == err.type
    assert err.param is None
    assert "req-1" == err.request_id
    assert body == err.body
    assert f"{status} {code}: it went wrong (request id req-1)" == str(err)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        pytest.param(400, BadRequestError, id="400"),
        pytest.param(401, AuthenticationError, id="401"),
        pytest.param(402, InsufficientCreditsError, id="402"),
        pytest.param(403, PermissionDeniedError, id="403"),
        pytest.param(404, NotFoundError, id="404"),
        pytest.param(429, RateLimitError, id="429"),
        pytest.param(500, ServerError, id="500"),
    ],
)
async def test_status_maps_to_typed_error_legacy_envelope(
    router: respx.MockRouter, make_client, status, cls
):
    """The pre-2026 envelope (integer code, param, fallback_suggestion) parses too."""
    body = {
        "error": {
            "code": 1001,
            "message": "size is wrong",
            "type": "invalid_request_error",
            "param": "size",
            "fallback_suggestion": "use 1:1",
        }
    }
    router.get(TASK_PATH).respond(status, json=body, headers={"X-Oneapi-Request-Id": "one-7"})

    async with make_client(max_retries=0) as client:
        with pytest.raises(APIError) as info:
            await client.tasks.get(TASK_ID)

    err = info.value
    assert cls is type(err)
    assert 1001 == err.code
    assert "size" == err.param
    assert "size is wrong" == err.message
    assert "invalid_request_error" == err.type
    assert "one-7" == err.request_id
    assert "use 1:1" == err.body["error"]["fallback_suggestion"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("17", 17.0, id="seconds"),
        pytest.param("1.5", 1.5, id="float-seconds"),
        pytest.param(None, None, id="absent"),
        pytest.param("soon", None, id="garbage"),
    ],
)
async def test_rate_limit_error_carries_retry_after(
    router: respx.MockRouter, make_client, header, expected
):
    """A 429 exposes the server's Retry-After in seconds (None when absent or unreadable)."""
    headers = {} if header is None else {"Retry-After": header}
    router.get(TASK_PATH).respond(429, json=error_body("rate_limit_exceeded"), headers=headers)

    async with make_client(max_retries=0) as client:
        with pytest.raises(RateLimitError) as info:
            await client.tasks.get(TASK_ID)

    assert expected == info.value.retry_after


@pytest.mark.parametrize(
    ("content", "expected_code", "expected_body"),
    [
        pytest.param(b"<html>Bad Gateway</html>", None, "<html>Bad Gateway</html>", id="html"),
        pytest.param(b"", None, "", id="empty"),
        pytest.param(
            b'{"error": "flat string"}', None, {"error": "flat string"}, id="error-not-object"
        ),
        pytest.param(b"[1, 2]", None, [1, 2], id="json-list"),
        pytest.param(
            b'{"error": {"code": true, "message": 5, "type": 7, "param": 1}}',
            None,
            {"error": {"code": True, "message": 5, "type": 7, "param": 1}},
            id="wrong-field-types",
        ),
    ],
)
async def test_error_without_usable_envelope(
    router: respx.MockRouter, make_client, content, expected_code, expected_body
):
    """An error body that is not the envelope still gives a typed error with the raw body."""
    router.get(TASK_PATH).respond(502, content=content)

    async with make_client(max_retries=0) as client:
        with pytest.raises(ServerError) as info:
            await client.tasks.get(TASK_ID)

    err = info.value
    assert expected_code == err.code
    assert "Bad Gateway" == err.message
    assert err.type is None
    assert err.param is None
    assert err.request_id is None
    assert expected_body == err.body
    assert "502: Bad Gateway" == str(err)


async def test_unknown_status_without_reason_phrase(router: respx.MockRouter, make_client):
    """A status with no reason phrase and no message still yields a message."""
    router.get(TASK_PATH).respond(599, content=b"")

    async with make_client(max_retries=0) as client:
        with pytest.raises(ServerError) as info:
            await client.tasks.get(TASK_ID)

    assert "error" == info.value.message


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        pytest.param(b"not json", {}, id="not-json"),
        pytest.param(b"", {}, id="empty"),
        pytest.param(b"\xff\xfe\x00", {}, id="not-utf8"),
    ],
)
async def test_success_that_is_not_json(router: respx.MockRouter, make_client, content, headers):
    """A 2xx whose body is not JSON raises ResponseDecodeError with the status and request id."""
    router.get(TASK_PATH).respond(200, content=content, headers={"X-Request-Id": "r-9"})

    async with make_client(max_retries=0) as client:
        with pytest.raises(ResponseDecodeError) as info:
            await client.tasks.get(TASK_ID)

    assert 200 == info.value.status_code
    assert "r-9" == info.value.request_id
    assert isinstance(info.value.body, str)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param([], id="list"),
        pytest.param({"id": TASK_ID}, id="no-status"),
        pytest.param(task_payload(status=3), id="status-int"),
        pytest.param(task_payload(created="yesterday"), id="created-str"),
        pytest.param(task_payload(results="https://x/y.png"), id="results-str"),
        pytest.param(task_payload(usage={"credits_reserved": "lots"}), id="credits-garbage"),
        pytest.param(task_payload(task_info=[1]), id="task-info-list"),
    ],
)
async def test_success_with_wrong_shape(router: respx.MockRouter, make_client, payload):
    """A 2xx JSON body of the wrong shape raises ResponseDecodeError, never a cattrs error."""
    router.get(TASK_PATH).respond(200, json=payload)

    async with make_client(max_retries=0) as client:
        with pytest.raises(ResponseDecodeError) as info:
            await client.tasks.get(TASK_ID)

    assert payload == info.value.body
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        pytest.param(httpx.ConnectError("refused"), APIConnectionError, id="connect-error"),
        pytest.param(httpx.RemoteProtocolError("dropped"), APIConnectionError, id="protocol-error"),
        pytest.param(httpx.ReadError("reset"), APIConnectionError, id="read-error"),
        pytest.param(httpx.ConnectTimeout("slow"), APITimeoutError, id="connect-timeout"),
        pytest.param(httpx.ReadTimeout("slow"), APITimeoutError, id="read-timeout"),
        pytest.param(httpx.PoolTimeout("busy"), APITimeoutError, id="pool-timeout"),
    ],
)
async def test_transport_failures_are_wrapped(router: respx.MockRouter, make_client, exc, cls):
    """Transport failures become APIConnectionError / APITimeoutError, the httpx one as cause."""
    router.get(TASK_PATH).mock(side_effect=exc)

    async with make_client(max_retries=0) as client:
        with pytest.raises(EvolinkError) as info:
            await client.tasks.get(TASK_ID)

    assert cls is type(info.value)
    assert isinstance(info.value.__cause__, httpx.TransportError)


async def test_undecodable_content_encoding_is_wrapped(router: respx.MockRouter, make_client):
    """A body httpx cannot decode (bad gzip) is an EvolinkError, not a raw httpx error."""
    response = httpx.Response(
        200, stream=httpx.ByteStream(b"definitely not gzip"), headers={"Content-Encoding": "gzip"}
    )
    router.get(TASK_PATH).mock(return_value=response)

    async with make_client(max_retries=0) as client:
        with pytest.raises(EvolinkError) as info:
            await client.tasks.get(TASK_ID)

    assert not isinstance(info.value, httpx.HTTPError)


async def test_credits_malformed_answer(router: respx.MockRouter, make_client):
    """A credits answer without its `data` object raises ResponseDecodeError."""
    router.get("/v1/credits").respond(200, json={"success": False})

    async with make_client() as client:
        with pytest.raises(ResponseDecodeError):
            await client.credits()


def test_error_tree():
    """Every public error derives from EvolinkError; ValidationError is also a ValueError."""
    errors = [
        obj
        for obj in vars(evolink).values()
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning)
    ]
    assert len(errors) >= 18
    for cls in errors:
        assert issubclass(cls, EvolinkError), cls
    assert issubclass(evolink.ValidationError, ValueError)
    assert issubclass(evolink.WaitTimeoutError, TimeoutError)
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(evolink.UnknownModelWarning, UserWarning)


def test_api_error_message_without_code_or_request_id():
    """An APIError's text is status and message when code and request id are unknown."""
    err = APIError("boom", status_code=500)

    assert "500: boom" == str(err)
    assert json.dumps(None) == json.dumps(err.code)
