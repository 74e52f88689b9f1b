"""Promises 5, 12 and 13 of the issue (the key quoted back, slow and huge answers) and the
FastAPI `wait` extra."""

from __future__ import annotations

import json
import logging
import time
import traceback
import tracemalloc

import anyio
import httpx
import pytest
from _hostile_fake import (
    API_KEY,
    BASE_URL,
    ENTRIES,
    OTHER_SECRET,
    BigBody,
    FakeAPI,
    SocketFake,
    error_body,
    run_batch,
    task_body,
)

from evolink import (
    APIError,
    AsyncEvolink,
    AuthenticationError,
    EvolinkError,
    OutcomeKind,
    TaskStatus,
)
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

QUOTED_401 = {
    "error": {
        "code": "unauthorized",
        "message": f"Invalid API key provided: {API_KEY}",
        "type": "authentication_error",
        "param": API_KEY,
    },
    "request": {"headers": {"Authorization": f"Bearer {API_KEY}"}},
}
QUOTED_OTHER = error_body(
    "invalid_request",
    f"upstream provider refused credential {OTHER_SECRET} for this model",
    "invalid_request_error",
)


def _every_rendering(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(exc.args)]
    for name in ("message", "body", "code", "param", "type", "request_id"):
        value = getattr(exc, name, None)
        parts.append(repr(value))
        try:
            parts.append(json.dumps(value, default=repr))
        except (TypeError, ValueError):
            parts.append(str(value))
    return "\n".join(parts)


# -- 5. the key quoted back by the server --------------------------------------------------


@pytest.mark.parametrize("call", ["create", "read"])
async def test_key_quoted_in_a_401_never_reaches_the_error(call, caplog):
    """Promise 5: a 401 saying "Invalid API key provided: <the key>" (and quoting it in
    other fields): the raised APIError's str, repr, traceback and body must not hold it."""
    caplog.set_level(logging.DEBUG)
    clock = VirtualClock()
    fake = FakeAPI(clock)
    fake.refused_creates = {0: (401, QUOTED_401)}

    async def quoting_read(request):
        if request.method == "GET":
            return httpx.Response(401, json=QUOTED_401)
        return await FakeAPI.handle(fake, request)

    transport = httpx.MockTransport(quoting_read)
    async with AsyncEvolink(
        api_key=API_KEY, base_url=BASE_URL, transport=transport, clock=clock, max_retries=0
    ) as client:
        with pytest.raises(AuthenticationError) as caught:
            if call == "create":
                await client.images.generate("a red fox in snow")
            else:
                await client.tasks.get("task-unified-1767225600-abcdefgh")
    rendered = _every_rendering(caught.value)
    assert API_KEY not in rendered, "the API key quoted by the server reached the error"
    assert API_KEY[8:] not in rendered
    assert API_KEY not in caplog.text, "the API key quoted by the server reached a log record"


async def test_other_secret_in_server_text_is_redacted(caplog):
    """Promise 5: any other `sk-` shaped secret in the server's error text is redacted."""
    caplog.set_level(logging.DEBUG)
    clock = VirtualClock()
    fake = FakeAPI(clock)
    fake.refused_creates = {0: (400, QUOTED_OTHER)}
    async with fake.client(max_retries=0) as client:
        with pytest.raises(APIError) as caught:
            await client.images.generate("a red fox in snow")
    rendered = _every_rendering(caught.value)
    assert OTHER_SECRET not in rendered, "an sk- secret in server text reached the error"
    assert OTHER_SECRET not in caplog.text


@pytest.mark.parametrize("entry", ENTRIES)
async def test_secrets_in_server_text_stay_out_of_batch_outcomes(entry):
    """Promise 5 through a batch: a failed task's message quoting an sk- secret, and a 401
    quoting the key, must not reach the outcomes or the report."""
    clock = VirtualClock()
    fake = FakeAPI(
        clock,
        duration=3.0,
        errors={
            0: {
                "code": "service_error",
                "message": f"provider said: bad key {OTHER_SECRET} / {API_KEY}",
                "type": "task_error",
            }
        },
        refused_creates={1: (401, QUOTED_401)},
    )
    async with fake.client(max_retries=0) as client, clock.running():
        report = await run_batch(client, entry, ["one", "two", "three"], max_in_flight=1)
    rendered = "\n".join(
        [repr(report)] + [f"{o.error_code} {o.error_message} {o!r}" for o in report.outcomes]
    )
    assert OutcomeKind.FAILED is report.outcomes[0].kind
    assert API_KEY not in rendered, "the API key quoted by the server reached an outcome"
    assert OTHER_SECRET not in rendered, "an sk- secret in server text reached an outcome"


# -- 12. a slow answer must respect the timeout ---------------------------------------------


def _trickle(fake, handler, method, path, _body):
    """Answer with a valid body, trickled one space every 0.25 s for 12 s."""
    if method == "POST":
        body = task_body("task-unified-1767225600-slowcreate", "pending", int(time.time()))
    else:
        body = task_body(path.rsplit("/", 1)[-1], "completed", int(time.time()), results=[])
    text = json.dumps(body).encode()
    head, tail, pad = text[:-1], text[-1:], 48
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(text) + pad))
    handler.end_headers()
    handler.wfile.write(head)
    handler.wfile.flush()
    for _ in range(pad):
        if fake.release.wait(12 / pad):
            return
        handler.wfile.write(b" ")
        handler.wfile.flush()
    handler.wfile.write(tail)
    handler.wfile.flush()


@pytest.fixture
def trickling_server():
    fake = SocketFake(_trickle)
    with fake.serving():
        yield fake


@pytest.mark.parametrize("call", ["read", "create"])
async def test_trickled_answer_respects_the_timeout(trickling_server, call):
    """Promise 12: timeout=2 and a server trickling its body for 12 s: the call must fail
    (a typed error) within about 2 s, not when the trickle ends."""
    url = trickling_server.base_url
    started = time.monotonic()
    raised = None
    async with AsyncEvolink(api_key=API_KEY, base_url=url, timeout=2, max_retries=0) as client:
        with anyio.move_on_after(5.5) as guard:
            try:
                if call == "read":
                    await client.tasks.get("task-unified-1767225600-slowread")
                else:
                    await client.images.generate("a red fox in snow")
            except Exception as exc:  # noqa: BLE001 - classified below
                raised = exc
    elapsed = time.monotonic() - started
    assert not guard.cancelled_caught, "still reading a trickled answer 5.5 s after a 2 s timeout"
    assert isinstance(raised, EvolinkError), f"no typed error for a trickled answer: {raised!r}"
    assert elapsed < 4.5, f"a 2 s timeout took {elapsed:.1f} s"


# -- 13. no size limit on answers ------------------------------------------------------------

SIZE = 200 * 1024 * 1024


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_huge_answer_is_refused_without_reading_it_whole(declared):
    """Promise 13: a 200 MB answer is refused with a typed error, fast, without reading it
    whole, and the peak of memory stays modest."""
    bodies = []

    async def huge(request):
        body = BigBody(SIZE)
        bodies.append(body)
        headers = {"content-type": "application/json"}
        if declared:
            headers["content-length"] = str(body.total)
        return httpx.Response(200, headers=headers, stream=_Stream(body))

    transport = httpx.MockTransport(huge)
    tracemalloc.start()
    started = time.monotonic()
    try:
        async with AsyncEvolink(
            api_key=API_KEY, base_url=BASE_URL, transport=transport, max_retries=0
        ) as client:
            with pytest.raises(EvolinkError):
                await client.tasks.get("task-unified-1767225600-big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    produced = sum(b.produced for b in bodies)
    assert produced < 64 * 1024 * 1024 + (1 << 16), f"read {produced >> 20} MiB of a 200 MB answer"
    assert peak < 160 * 1024 * 1024, f"peak memory {peak >> 20} MiB for one answer"
    assert elapsed < 10


class _Stream(httpx.AsyncByteStream):
    def __init__(self, body: BigBody) -> None:
        self.body = body

    async def __aiter__(self):
        async for chunk in self.body:
            yield chunk


# -- extra: FastAPI's wait without a callback -------------------------------------------------


@pytest.mark.parametrize("duration", [3.0, 4.0])
async def test_fastapi_wait_without_callback_reads_a_fast_task_in_time(duration):
    """Extra: `EvolinkIntegration.wait` for a 3-4 s task that has no callback returns
    within about 6 s (as `tasks.wait` would), not ~16 s."""
    pytest.importorskip("fastapi")
    from fastapi import FastAPI  # noqa: PLC0415

    from evolink.fastapi import EvolinkIntegration  # noqa: PLC0415

    clock = VirtualClock()
    fake = FakeAPI(clock, duration=duration, estimated_time=10)
    integration = EvolinkIntegration(public_url="https://my.app", client_factory=fake.client)
    app = FastAPI(lifespan=integration.lifespan)
    with anyio.fail_after(20):
        async with integration.lifespan(app), clock.running():
            client = integration.client()
            task = await client.images.generate("a red fox in snow")
            started = clock.monotonic()
            done = await integration.wait(task, timeout=120)
            waited = clock.monotonic() - started
    assert TaskStatus.COMPLETED == done.status
    assert waited <= 6.5, f"wait for a {duration:.0f} s task returned after {waited:.1f} s"
