"""Every error the SDK raises, whatever way the hostile server quotes the key back."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from _secrecy_hostile import (
    ODD_KEY,
    PLAIN_KEY,
    SK_KEY,
    assert_clean,
    error_body,
    error_texts,
    json_escaped,
    partly_escaped,
    refusing,
    success_false_body,
)

from evolink import AsyncEvolink, EvolinkError

Call = Callable[[AsyncEvolink], Awaitable[Any]]


async def _list_tasks(client: AsyncEvolink) -> list[Any]:
    return [task async for task in client.tasks.list(limit=5)]


OPERATIONS: dict[str, Call] = {
    "tasks.get": lambda c: c.tasks.get("task-unified-1700000000-abc"),
    "images.generate": lambda c: c.images.generate("a red fox in snow"),
    "credits": lambda c: c.credits(),
    "files.upload": lambda c: c.files.upload(b"GIF89a" + b"\x00" * 64, file_name="a.gif"),
    "files.quota": lambda c: c.files.quota(),
    "files.list": lambda c: c.files.list(),
    "tasks.list": _list_tasks,
}


async def _raise(key: str, handler: Any, op: Call, caplog: pytest.LogCaptureFixture) -> str:
    caplog.set_level(logging.DEBUG)
    async with AsyncEvolink(
        api_key=key, transport=httpx.MockTransport(handler), max_retries=0
    ) as client:
        with pytest.raises(EvolinkError) as info:
            await op(client)
    logs = "\n".join(
        r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in caplog.records
    )
    return error_texts(info.value) + "\n" + logs


@pytest.mark.anyio
@pytest.mark.parametrize("op", list(OPERATIONS), ids=list(OPERATIONS))
@pytest.mark.parametrize("key", [SK_KEY, ODD_KEY, PLAIN_KEY], ids=["sk", "odd", "plain"])
async def test_key_quoted_verbatim_in_an_error_envelope(
    key: str, op: str, caplog: pytest.LogCaptureFixture
) -> None:
    handler = refusing(401, error_body(key))
    assert_clean(await _raise(key, handler, OPERATIONS[op], caplog), key, what=op)


@pytest.mark.anyio
@pytest.mark.parametrize("op", ["credits", "files.quota", "files.upload"])
async def test_key_quoted_verbatim_in_a_success_false_envelope(
    op: str, caplog: pytest.LogCaptureFixture
) -> None:
    handler = refusing(200, success_false_body(ODD_KEY))
    assert_clean(await _raise(ODD_KEY, handler, OPERATIONS[op], caplog), ODD_KEY, what=op)


@pytest.mark.anyio
@pytest.mark.parametrize("op", list(OPERATIONS), ids=list(OPERATIONS))
async def test_key_quoted_json_escaped_in_an_error_envelope(
    op: str, caplog: pytest.LogCaptureFixture
) -> None:
    handler = refusing(401, error_body(partly_escaped(SK_KEY)))
    assert_clean(await _raise(SK_KEY, handler, OPERATIONS[op], caplog), SK_KEY, what=op)


@pytest.mark.anyio
@pytest.mark.parametrize("key", [SK_KEY, ODD_KEY, PLAIN_KEY], ids=["sk", "odd", "plain"])
async def test_key_fully_escaped_in_an_error_envelope(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    handler = refusing(400, error_body(json_escaped(key), code="invalid_request"))
    assert_clean(await _raise(key, handler, OPERATIONS["tasks.get"], caplog), key)


@pytest.mark.anyio
@pytest.mark.parametrize("op", ["credits", "files.quota", "files.upload"])
async def test_key_json_escaped_in_a_success_false_envelope(
    op: str, caplog: pytest.LogCaptureFixture
) -> None:
    handler = refusing(200, success_false_body(partly_escaped(SK_KEY)))
    assert_clean(await _raise(SK_KEY, handler, OPERATIONS[op], caplog), SK_KEY, what=op)


@pytest.mark.anyio
@pytest.mark.parametrize("op", list(OPERATIONS), ids=list(OPERATIONS))
@pytest.mark.parametrize("key", [SK_KEY, PLAIN_KEY], ids=["sk", "plain"])
async def test_key_in_the_reason_phrase(
    key: str, op: str, caplog: pytest.LogCaptureFixture
) -> None:
    handler = refusing(401, b"", extensions={"reason_phrase": f"Bad key {key}".encode()})
    assert_clean(await _raise(key, handler, OPERATIONS[op], caplog), key, what=op)


@pytest.mark.anyio
@pytest.mark.parametrize("op", list(OPERATIONS), ids=list(OPERATIONS))
@pytest.mark.parametrize("key", [SK_KEY, ODD_KEY, PLAIN_KEY], ids=["sk", "odd", "plain"])
async def test_key_in_every_header_of_an_error(
    key: str, op: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {
        "X-Request-Id": f"req-{key}",
        "X-Oneapi-Request-Id": key,
        "Retry-After": key,
        "WWW-Authenticate": f'Bearer error="invalid_token", key="{key}"',
        "Location": f"https://evil.example/{key}",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, content=error_body("nothing"), headers=headers)

    assert_clean(await _raise(key, handler, OPERATIONS[op], caplog), key, what=op)


@pytest.mark.anyio
@pytest.mark.parametrize("status", [200, 400, 429, 500])
async def test_key_in_a_body_that_is_not_json(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    handler = refusing(status, f"<html>your key {ODD_KEY} is bad</html>".encode())
    assert_clean(await _raise(ODD_KEY, handler, OPERATIONS["tasks.get"], caplog), ODD_KEY)


@pytest.mark.anyio
@pytest.mark.parametrize("key", [SK_KEY, ODD_KEY, PLAIN_KEY], ids=["sk", "odd", "plain"])
async def test_transport_error_quoting_the_authorization_header(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        said = f"proxy refused {request.headers['Authorization']!r} {dict(request.headers)}"
        raise httpx.ConnectError(said, request=request)

    for op in ("tasks.get", "images.generate", "files.upload"):
        assert_clean(await _raise(key, handler, OPERATIONS[op], caplog), key, what=op)


@pytest.mark.anyio
@pytest.mark.parametrize("key", [SK_KEY, ODD_KEY], ids=["sk", "odd"])
async def test_unmapped_transport_error_holding_the_request(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    class WeirdError(Exception):
        pass

    def handler(request: httpx.Request) -> httpx.Response:
        raise WeirdError(f"{request.headers} {request.headers['Authorization']}")

    for op in ("tasks.get", "images.generate"):
        assert_clean(await _raise(key, handler, OPERATIONS[op], caplog), key, what=op)
