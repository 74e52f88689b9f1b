"""The API key never shows: repr, str, logs, errors, tracebacks (docs/how-to/logging.md)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

import httpx
import pytest

import evolink
from evolink import AsyncEvolink, Evolink

KEY = "sk-evo-SECRETnewcomer9f8e7d6c5b4a"


def _echoing(
    status: int, where: str = "message", *, in_request_id: bool = False
) -> Callable[[httpx.Request], httpx.Response]:
    """A hostile server that quotes the Authorization header back in its error body."""

    def handler(request: httpx.Request) -> httpx.Response:
        quoted = request.headers.get("authorization", "")
        error = {"code": "echo", "message": "bad", "type": "invalid_request_error", "param": "p"}
        error[where] = f"your key {quoted} ({quoted.removeprefix('Bearer ')}) is no good"
        headers = {"X-Request-Id": f"req-{quoted.removeprefix('Bearer ')}"} if in_request_id else {}
        return httpx.Response(status, json={"error": error}, headers=headers)

    return handler


def _everything_said(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for name in ("message", "body", "code", "param", "type", "request_id", "request", "task"):
        parts.append(repr(getattr(exc, name, None)))
    parts.append(repr(vars(exc)) if hasattr(exc, "__dict__") else "")
    return "\n".join(parts)


def test_client_reprs_hide_the_key() -> None:
    async_client = AsyncEvolink(api_key=KEY)
    sync_client = Evolink(api_key=KEY)
    try:
        for text in (repr(async_client), str(async_client), repr(sync_client), str(sync_client)):
            assert KEY not in text
            assert KEY[-8:] not in text
    finally:
        sync_client.close()


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
@pytest.mark.parametrize("where", ["message", "code", "param"])
async def test_error_quoting_the_key_never_repeats_it(
    status: int, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    transport = httpx.MockTransport(_echoing(status, where))
    async with AsyncEvolink(api_key=KEY, transport=transport, max_retries=0) as client:
        with pytest.raises(evolink.EvolinkError) as caught:
            await client.tasks.get("task-unified-1757156493-imcg5zqt")
        said = _everything_said(caught.value)
        with pytest.raises(evolink.EvolinkError) as on_create:
            await client.images.generate("a fox")
        said += _everything_said(on_create.value)
    assert KEY not in said
    assert KEY not in caplog.text
    assert "SECRETnewcomer" not in said + caplog.text


@pytest.mark.anyio
async def test_a_task_whose_error_quotes_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def handler(request: httpx.Request) -> httpx.Response:
        quoted = request.headers.get("authorization", "").removeprefix("Bearer ")
        task = {
            "id": "task-unified-1757156493-imcg5zqt",
            "object": "image.generation.task",
            "created": 1757156493,
            "model": "gpt-image-2",
            "status": "failed",
            "progress": 0,
            "type": "image",
            "error": {"code": "invalid_parameters", "message": f"key {quoted} refused"},
        }
        return httpx.Response(200, json=task)

    async with AsyncEvolink(api_key=KEY, transport=httpx.MockTransport(handler)) as client:
        task = await client.tasks.get("task-unified-1757156493-imcg5zqt")
        with pytest.raises(evolink.TaskFailedError) as caught:
            task.raise_for_status()
    assert KEY not in _everything_said(caught.value)
    assert KEY not in repr(task)
    assert KEY not in caplog.text


def test_sync_client_error_traceback_hides_the_key() -> None:
    transport = httpx.MockTransport(_echoing(401))
    with Evolink(api_key=KEY, transport=transport, max_retries=0) as client:
        with pytest.raises(evolink.AuthenticationError) as caught:
            client.credits()
    assert KEY not in _everything_said(caught.value)


@pytest.mark.anyio
async def test_connection_error_hides_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused for {request.headers.get('authorization')}")

    async with AsyncEvolink(
        api_key=KEY, transport=httpx.MockTransport(handler), max_retries=0
    ) as client:
        with pytest.raises(evolink.APIConnectionError) as caught:
            await client.credits()
    assert KEY not in _everything_said(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("status", [401, 500])
async def test_request_id_quoting_the_key_never_repeats_it(status: int) -> None:
    transport = httpx.MockTransport(_echoing(status, in_request_id=True))
    async with AsyncEvolink(api_key=KEY, transport=transport, max_retries=0) as client:
        with pytest.raises(evolink.EvolinkError) as caught:
            await client.tasks.get("task-unified-1757156493-imcg5zqt")
    assert KEY not in _everything_said(caught.value)
