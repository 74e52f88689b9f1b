"""The FastAPI integration: callbacks quoting the key, its answers and its logs."""

from __future__ import annotations

import logging

import anyio
import httpx
import pytest
from _secrecy_hostile import SK_KEY, assert_clean, error_body
from fastapi import FastAPI

from evolink import AsyncEvolink
from evolink.fastapi import EvolinkIntegration


def _integration(reads: list[str]) -> tuple[EvolinkIntegration, FastAPI]:
    def handler(request: httpx.Request) -> httpx.Response:
        reads.append(request.url.path)
        return httpx.Response(404, content=error_body(SK_KEY, code="task_not_found"))

    evolink = EvolinkIntegration(
        public_url="https://my.app",
        secret="s3cr3t-token-0123456789abcdef",  # noqa: S106 - a test token
        client_factory=lambda: AsyncEvolink(
            api_key=SK_KEY, transport=httpx.MockTransport(handler), max_retries=0
        ),
    )
    app = FastAPI(lifespan=evolink.lifespan)
    app.include_router(evolink.callback_router)
    return evolink, app


async def _deliver(task_id: str, caplog: pytest.LogCaptureFixture, *, read: bool = True) -> str:
    caplog.set_level(logging.DEBUG)
    reads: list[str] = []
    evolink, app = _integration(reads)
    texts = [repr(evolink)]
    answers: list[int] = []
    transport = httpx.ASGITransport(app=app)
    async with (
        evolink.lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="https://my.app") as http,
    ):
        url = evolink.callback_url().replace("https://my.app", "")
        payload = {"id": task_id, "status": "completed", "note": SK_KEY, "error": SK_KEY}
        for path in (url, url + "x"):
            auth = {"Authorization": f"Bearer {SK_KEY}"}
            answer = await http.post(path, json=payload, headers=auth)
            answers.append(answer.status_code)
            texts.append(f"{answer.status_code} {answer.headers} {answer.text}")
        with anyio.move_on_after(5):
            while not reads:
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)
    if read:
        assert reads, "the callback was never confirmed by a read"
    else:
        assert not reads, f"a callback naming an id that quotes the key was read: {reads}"
        assert answers[0] == 400, answers
    texts += [
        r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in caplog.records
    ]
    return "\n".join(texts)


@pytest.mark.anyio
async def test_callback_quoting_the_key_in_its_body(caplog: pytest.LogCaptureFixture) -> None:
    assert_clean(await _deliver("task-unified-1700000000-abc", caplog), SK_KEY)


@pytest.mark.anyio
async def test_callback_whose_task_id_quotes_the_key(caplog: pytest.LogCaptureFixture) -> None:
    # Was: confirmed by a GET whose DEBUG line 'GET /v1/tasks/task-unified-<key> -> 404'
    # showed the key. Now refused (400) unread: the id would put the key in an address.
    text = await _deliver(f"task-unified-{SK_KEY}", caplog, read=False)
    assert_clean(text, SK_KEY)
