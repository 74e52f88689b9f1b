"""The API key never shows, and every HTTP attempt logs one debug line."""

from __future__ import annotations

import logging
import pickle
import re
import traceback

import httpx
import pytest
import respx
from _core_support import API_KEY, CREATE_PATH, TASK_ID, TASK_PATH, error_body, task_payload

from evolink import AsyncEvolink, EvolinkError
from evolink._secret import Secret

pytestmark = pytest.mark.anyio

ATTEMPT_LINE = re.compile(
    r"^(?P<method>GET|POST) (?P<path>/\S+) -> (?P<status>\S+) in (?P<ms>[\d.]+) ms "
    r"\(attempt (?P<attempt>\d+)\)$"
)


def _texts_of(exc: BaseException) -> list[str]:
    """Everything a user or an error tracker could print of `exc` and its chain."""
    texts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        texts += [repr(value) for value in vars(current).values()]
        todo += [current.__cause__, current.__context__]
    return texts


def test_secret_hides_itself():
    """A Secret shows '***' in repr, str and f-strings, and cannot be pickled."""
    secret = Secret(API_KEY)

    assert "'***'" == repr(secret) == str(secret) == f"{secret}"
    assert API_KEY == secret.reveal()
    assert Secret(API_KEY) == secret
    assert secret != API_KEY
    assert hash(Secret(API_KEY)) == hash(secret)
    with pytest.raises(TypeError):
        pickle.dumps(secret)


async def test_client_repr_and_str_hide_the_key(make_client):
    """Neither repr nor str of the client shows the key."""
    async with make_client() as client:
        assert API_KEY not in repr(client)
        assert API_KEY not in str(client)
        assert "***" in repr(client)
        assert API_KEY not in repr(vars(client))


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(httpx.Response(401, json=error_body("unauthorized")), id="401"),
        pytest.param(httpx.Response(500, text="oops"), id="500"),
        pytest.param(httpx.Response(429, json=error_body("rate_limit_exceeded")), id="429"),
        pytest.param(httpx.ConnectError("refused"), id="connect-error"),
        # A proxy's refusal, or a server's request id, may quote the key it was sent.
        pytest.param(httpx.ConnectError(f"refused for Bearer {API_KEY}"), id="error-quotes-key"),
        pytest.param(
            httpx.Response(401, json=error_body("unauthorized"), headers={"X-Request-Id": API_KEY}),
            id="request-id-quotes-key",
        ),
        pytest.param(
            httpx.Response(500, text="oops", headers={"X-Oneapi-Request-Id": f"r-{API_KEY}"}),
            id="oneapi-request-id-quotes-key",
        ),
        pytest.param(httpx.ReadTimeout("slow"), id="read-timeout"),
        pytest.param(httpx.Response(200, text="not json"), id="bad-json"),
        pytest.param(httpx.Response(200, json={"id": 1}), id="bad-shape"),
    ],
)
@pytest.mark.parametrize(
    "operation", [pytest.param("get", id="get"), pytest.param("create", id="create")]
)
async def test_errors_never_carry_the_key(
    router: respx.MockRouter, make_client, caplog, failure, operation
):
    """No error, its cause, context or traceback, nor any log line contains the key."""
    router.get(TASK_PATH).mock(side_effect=[failure] * 3)
    router.post(CREATE_PATH).mock(side_effect=[failure] * 3)
    caplog.set_level(logging.DEBUG)

    async with make_client() as client:
        call = client.tasks.get(TASK_ID) if operation == "get" else client.images.generate("a fox")
        with pytest.raises(EvolinkError) as info:
            await call

    # The key did go out, in the header.
    assert f"Bearer {API_KEY}" == router.calls.last.request.headers["Authorization"]
    for text in _texts_of(info.value):
        assert API_KEY not in text
    # Nor do our own frames' local variables (what error trackers capture).
    tb = info.value.__traceback__
    while tb is not None:
        if "/evolink/" in tb.tb_frame.f_code.co_filename:
            for name, value in tb.tb_frame.f_locals.items():
                assert API_KEY not in repr(value), name
        tb = tb.tb_next
    assert caplog.records
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in repr(record.args)


async def test_success_logs_never_carry_the_key(router: respx.MockRouter, make_client, caplog):
    """A successful session logs nothing containing the key."""
    router.get(TASK_PATH).respond(200, json=task_payload())
    router.post(CREATE_PATH).respond(200, json=task_payload())
    caplog.set_level(logging.DEBUG)

    async with make_client() as client:
        await client.images.generate("a fox")
        await client.tasks.get(TASK_ID)

    assert 2 == len([r for r in caplog.records if r.name == "evolink"])
    # httpx's own lines are checked too.
    assert any(r.name == "httpx" for r in caplog.records)
    assert all(API_KEY not in r.getMessage() for r in caplog.records)


async def test_configuration_errors_never_carry_the_key(make_client):
    """Errors about the client's set-up do not show the key."""
    with pytest.raises(EvolinkError) as info:
        AsyncEvolink(api_key=API_KEY, max_retries=-1)
    assert all(API_KEY not in text for text in _texts_of(info.value))

    client = make_client()
    await client.aclose()
    with pytest.raises(EvolinkError) as info:
        await client.tasks.get(TASK_ID)
    assert all(API_KEY not in text for text in _texts_of(info.value))


async def test_one_debug_line_per_attempt(router: respx.MockRouter, make_client, caplog):
    """Each HTTP attempt logs method, path, status, elapsed and attempt number under `evolink`."""
    router.get(TASK_PATH).mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(200, json=task_payload()),
        ]
    )
    caplog.set_level(logging.DEBUG, logger="evolink")

    async with make_client() as client:
        await client.tasks.get(TASK_ID)

    attempts = [
        (m.group("method"), m.group("path"), m.group("status"), m.group("attempt"))
        for r in caplog.records
        if r.name == "evolink" and r.levelno == logging.DEBUG
        for m in [ATTEMPT_LINE.match(r.getMessage())]
        if m is not None
    ]
    assert [
        ("GET", TASK_PATH, "ConnectError", "1"),
        ("GET", TASK_PATH, "503", "2"),
        ("GET", TASK_PATH, "200", "3"),
    ] == attempts
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


async def test_no_log_lines_above_debug(router: respx.MockRouter, make_client, caplog):
    """Failures are raised, not logged at INFO or above."""
    router.get(TASK_PATH).respond(500)
    caplog.set_level(logging.INFO, logger="evolink")

    async with make_client() as client:
        with pytest.raises(EvolinkError):
            await client.tasks.get(TASK_ID)

    assert [] == caplog.records


async def test_a_key_of_any_shape_quoted_back_is_hidden():
    """Not only `sk-` keys: the client's own key, whatever it looks like, is hidden in what a
    transport or a server's headers quote back."""
    key = "plain-key-7f3e9a1b2c"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy refused {request.headers['Authorization']}")

    def quote(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json=error_body("unauthorized"), headers={"X-Request-Id": key})

    for handler in (refuse, quote):
        transport = httpx.MockTransport(handler)
        async with AsyncEvolink(api_key=key, transport=transport, max_retries=0) as client:
            with pytest.raises(EvolinkError) as info:
                await client.tasks.get(TASK_ID)
        for text in _texts_of(info.value):
            assert key not in text
