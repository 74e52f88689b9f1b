"""Every response shape the docs and Evolink's own client show is read, none crashes.

`usage.cost` as a number or an object, `error.code` as a string, an integer or missing,
`result_data` with its media URLs, and a 2xx whose body says `success: false`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import respx
from _core_support import CREATE_PATH, TASK_ID, TASK_PATH, task_payload

from evolink import (
    APIError,
    AuthenticationError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    Task,
)
from evolink._converter import parse_result_data, parse_task
from evolink._models import ResultData

# -- usage.cost ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cost", "expected", "kept"),
    [
        pytest.param(1.5, Decimal("1.5"), {}, id="number"),
        pytest.param(
            {"credits": 2.5, "usd": 0.03, "cny": 0.2},
            Decimal("2.5"),
            {"cost": {"credits": 2.5, "usd": 0.03, "cny": 0.2}},
            id="object",
        ),
        pytest.param({"usd": 0.03}, None, {"cost": {"usd": 0.03}}, id="object-without-credits"),
    ],
)
def test_usage_cost_number_or_object(cost, expected, kept):
    """`usage.cost` reads as credits from a number or `{credits, usd, cny}`; an object stays
    in `usage.extra` as sent."""
    task = parse_task(task_payload(usage={"credits_reserved": 2.5, "cost": cost}))

    assert task.usage is not None
    assert expected == task.usage.cost
    assert kept == dict(task.usage.extra)


# -- error.code ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        pytest.param({"code": "service_error", "message": "m"}, "service_error", True, id="str"),
        pytest.param({"code": 1004, "message": "m"}, "1004", False, id="int"),
        pytest.param({"message": "m"}, "unknown_error", True, id="missing"),
        pytest.param({"code": None, "message": "m"}, "unknown_error", True, id="null"),
        pytest.param({"code": [1], "message": "m"}, "unknown_error", True, id="list"),
    ],
)
def test_task_error_code_forms(error, code, retryable):
    """A failed task decodes whatever form its error code takes."""
    task = parse_task(task_payload(status="failed", error=error))

    assert task.error is not None
    assert (code, retryable) == (task.error.code, task.error.is_retryable)


# -- result_data -------------------------------------------------------------------------


def test_result_data_typed():
    """`result_data`'s media URLs are typed; what is not a file stays in its `extra`."""
    payload = task_payload(
        status="completed",
        results=["https://cdn.test/v.mp4"],
        result_data={"video_url": "https://cdn.test/v.mp4", "element_id": "el-1"},
    )

    task = parse_task(payload)

    assert (
        ResultData(video_url="https://cdn.test/v.mp4", extra={"element_id": "el-1"})
        == task.result_data
    )
    assert ("https://cdn.test/v.mp4",) == task.media_urls


@pytest.mark.parametrize(
    ("results", "result_data", "expected"),
    [
        pytest.param([], None, (), id="nothing"),
        pytest.param(["https://c/1.png"], None, ("https://c/1.png",), id="results-only"),
        pytest.param(
            [], {"audio_url": "https://c/a.mp3"}, ("https://c/a.mp3",), id="result-data-only"
        ),
        pytest.param(
            ["https://c/1.png", "https://c/2.png"],
            {"image_url": "https://c/2.png", "video_url": "https://c/v.mp4"},
            ("https://c/1.png", "https://c/2.png", "https://c/v.mp4"),
            id="merged-in-order-once",
        ),
        pytest.param(
            ["https://c/1.png"],
            {"image_url": "https://c/i.png", "video_url": "https://c/v.mp4", "audio_url": "a"},
            ("https://c/1.png", "https://c/i.png", "https://c/v.mp4", "a"),
            id="image-video-audio",
        ),
        pytest.param(
            ["https://c/1.png"], [{"z_index": 0}], ("https://c/1.png",), id="a-list-is-left"
        ),
        pytest.param(["https://c/1.png"], "odd", ("https://c/1.png",), id="a-string-is-left"),
        pytest.param(
            [], {"image_url": "", "video_url": 5}, (), id="empty-and-non-string-urls-ignored"
        ),
    ],
)
def test_media_urls(results, result_data, expected):
    """`media_urls` is `results` then `result_data`'s URLs, each once, in order."""
    task = parse_task(task_payload(status="completed", results=results, result_data=result_data))

    assert expected == task.media_urls


def test_result_data_non_string_url_kept_as_sent():
    """A media field that is not a string is no URL: it stays in `extra`, the rest reads."""
    result_data = parse_result_data({"video_url": ["https://c/v.mp4"], "audio_url": "https://c/a"})

    assert ResultData(audio_url="https://c/a", extra={"video_url": ["https://c/v.mp4"]}) == (
        result_data
    )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="null"),
        pytest.param([{"url": "https://c/1.png"}], id="list"),
        pytest.param(3, id="number"),
    ],
)
def test_result_data_not_an_object(value):
    """`result_data` that is not an object gives no typed view, and no error."""
    task = parse_task(task_payload(result_data=value))

    assert task.result_data is None
    assert value == task.extra["result_data"]


def test_result_data_stays_in_extra_and_round_trips():
    """`extra["result_data"]` is unchanged (old code reads it), and `to_dict` round-trips."""
    raw = {"image_url": "https://c/1.png", "songs": [{"id": "s1", "audio_url": "https://c/s"}]}
    task = parse_task(task_payload(status="completed", result_data=raw))

    assert raw == task.extra["result_data"]
    assert raw == task.to_dict()["result_data"]
    assert task == Task.from_dict(task.to_dict())
    assert task.result_data == Task.from_dict(task.to_dict()).result_data


def test_result_data_to_dict():
    """`ResultData` dumps to the API's shape, unknown fields included."""
    result_data = ResultData(video_url="https://c/v.mp4", extra={"element_id": "el-1"})

    assert {"video_url": "https://c/v.mp4", "element_id": "el-1"} == result_data.to_dict()
    assert result_data == ResultData.from_dict(result_data.to_dict())


# -- success: false with HTTP 200 -----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "cls", "code", "message"),
    [
        pytest.param(
            {"success": False, "code": 402, "msg": "Insufficient balance", "data": None},
            InsufficientCreditsError,
            402,
            "Insufficient balance",
            id="files-envelope-402",
        ),
        pytest.param(
            {"success": False, "code": 401, "message": "Invalid token"},
            AuthenticationError,
            401,
            "Invalid token",
            id="credits-envelope-401",
        ),
        pytest.param(
            {"success": False, "code": "404", "msg": "no such file"},
            NotFoundError,
            "404",
            "no such file",
            id="code-as-digit-string",
        ),
        pytest.param(
            {"success": False, "code": "insufficient_balance", "msg": "top up"},
            APIError,
            "insufficient_balance",
            "top up",
            id="code-not-http-like",
        ),
        pytest.param(
            {"success": False, "code": 10010, "msg": "odd"}, APIError, 10010, "odd", id="code-big"
        ),
        pytest.param(
            {"success": False, "msg": "quota exhausted"},
            APIError,
            None,
            "quota exhausted",
            id="no-code",
        ),
        pytest.param(
            {"success": False, "code": True, "msg": "m"}, APIError, None, "m", id="code-bool"
        ),
        pytest.param(
            {"success": False, "error": {"code": 403, "message": "nested", "type": "t"}},
            PermissionDeniedError,
            403,
            "nested",
            id="nested-error-object",
        ),
    ],
)
async def test_success_false_is_an_api_error(
    router: respx.MockRouter, make_client, body, cls, code, message
):
    """A 200 whose body says `success: false` raises the error its `code` names."""
    route = router.get("/v1/credits").respond(200, json=body, headers={"X-Request-Id": "req-9"})

    async with make_client() as client:
        with pytest.raises(APIError) as info:
            await client.credits()

    assert cls is type(info.value)
    assert (200, code, message, "req-9") == (
        info.value.status_code,
        info.value.code,
        info.value.message,
        info.value.request_id,
    )
    assert body == info.value.body
    assert 1 == route.call_count


@pytest.mark.anyio
async def test_success_false_request_id_from_body(router: respx.MockRouter, make_client):
    """The files envelope's own `request_id` is kept when no header names one."""
    body = {"success": False, "code": 400, "msg": "bad", "request_id": "rid-7"}
    router.get("/v1/credits").respond(200, json=body)

    async with make_client() as client:
        with pytest.raises(APIError) as info:
            await client.credits()

    assert "rid-7" == info.value.request_id


@pytest.mark.anyio
async def test_success_false_server_code_is_retried(router: respx.MockRouter, make_client):
    """A read refused with a 5xx code is retried like an HTTP 5xx, then raised."""
    body = {"success": False, "code": 503, "msg": "busy"}
    route = router.get("/v1/credits").respond(200, json=body)

    async with make_client(max_retries=2) as client:
        with pytest.raises(ServerError):
            await client.credits()

    assert 3 == route.call_count


@pytest.mark.anyio
async def test_success_false_rate_limit_keeps_retry_after(router: respx.MockRouter, make_client):
    """A `success: false` 429 is a RateLimitError with the answer's Retry-After."""
    body = {"success": False, "code": 429, "msg": "slow down"}
    router.get("/v1/credits").respond(200, json=body, headers={"Retry-After": "7"})

    async with make_client(max_retries=0) as client:
        with pytest.raises(RateLimitError) as info:
            await client.credits()

    assert 7.0 == info.value.retry_after


@pytest.mark.anyio
async def test_success_false_on_create_is_not_resent(router: respx.MockRouter, make_client):
    """A create refused with a non-retryable code is raised at once (no second charge)."""
    body = {"success": False, "code": 402, "msg": "no credits"}
    route = router.post(CREATE_PATH).respond(200, json=body)

    async with make_client(max_retries=2) as client:
        with pytest.raises(InsufficientCreditsError):
            await client.images.generate(prompt="a fox")

    assert 1 == route.call_count


@pytest.mark.anyio
async def test_success_false_message_hides_keys(router: respx.MockRouter, make_client):
    """Any `sk-` key a refusal quotes is hidden, as in a 4xx answer."""
    body = {"success": False, "code": 401, "msg": "key sk-evo-OTHERKEY123456 is revoked"}
    router.get("/v1/credits").respond(200, json=body)

    async with make_client() as client:
        with pytest.raises(AuthenticationError) as info:
            await client.credits()

    assert "OTHERKEY" not in str(info.value)
    assert "OTHERKEY" not in repr(info.value.body)


@pytest.mark.anyio
async def test_success_false_saying_nothing_is_a_decode_error(
    router: respx.MockRouter, make_client
):
    """`{"success": false}` alone names no failure: an answer off the documented shape."""
    router.get("/v1/credits").respond(200, json={"success": False})

    async with make_client(max_retries=0) as client:
        with pytest.raises(ResponseDecodeError):
            await client.credits()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"success": False}, id="task-with-success-false"),
        pytest.param({"success": "false"}, id="success-as-string"),
        pytest.param({"success": 0}, id="success-as-zero"),
        pytest.param({"success": True}, id="success-true"),
    ],
)
async def test_task_shaped_or_not_exactly_false_is_untouched(
    router: respx.MockRouter, make_client, extra: dict[str, Any]
):
    """A task body is a task whatever `success` says; only `success: false` exactly refuses."""
    router.get(TASK_PATH).respond(200, json=task_payload(status="completed", **extra))

    async with make_client() as client:
        task = await client.tasks.get(TASK_ID)

    assert TASK_ID == task.id
    assert extra == dict(task.extra)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        pytest.param([{"success": False}], id="a-list"),
        pytest.param({"success": None}, id="success-null"),
    ],
)
async def test_other_bodies_are_not_refusals(router: respx.MockRouter, make_client, body):
    """Only an object with `success` exactly false is a refusal."""
    router.get("/v1/credits").respond(200, json=body)

    async with make_client(max_retries=0) as client:
        with pytest.raises(ResponseDecodeError):
            await client.credits()
