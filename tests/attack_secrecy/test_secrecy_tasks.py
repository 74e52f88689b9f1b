"""Tasks, results and reprs when the server quotes the key inside a task it answers."""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from _secrecy_hostile import (
    PLAIN_KEY,
    SK_KEY,
    Quoting,
    assert_clean,
    error_texts,
    partly_escaped,
    task_json,
    verbatim,
)

from evolink import AsyncEvolink, Evolink, EvolinkError, GenerationRequest, TaskStatus
from evolink.testing import Faults, Simulator, VirtualClock


def _texts_of_task(task: object) -> str:
    parts = [repr(task), str(task)]
    for name in ("to_json", "to_dict"):
        method = getattr(task, name, None)
        if method is not None:
            parts.append(str(method()))
    return "\n".join(parts)


async def _run(
    key: str, quote: Callable[[str], str], caplog: pytest.LogCaptureFixture, *, fail: bool
) -> str:
    caplog.set_level(logging.DEBUG)
    clock = VirtualClock()
    faults = Faults(task_failure=1.0) if fail else Faults()
    sim = Simulator(clock=clock, seed=3, api_keys={key}, faults=faults)
    transport = Quoting(sim.transport(), key, quote)
    texts: list[str] = []
    async with AsyncEvolink(api_key=key, transport=transport, clock=clock) as client:
        async with clock.running():
            task = await client.images.generate("a red fox in snow", n=1)
            texts.append(_texts_of_task(task))
            done = await client.tasks.wait(task, timeout=600)
            texts.append(_texts_of_task(done))
            texts.append(repr(done.error))
            try:
                done.raise_for_status()
            except EvolinkError as exc:
                texts.append(error_texts(exc))
    texts += [r.getMessage() for r in caplog.records]
    assert done.status in (TaskStatus.COMPLETED, TaskStatus.FAILED)
    assert (done.status is TaskStatus.FAILED) == fail
    return "\n".join(texts)


@pytest.mark.anyio
@pytest.mark.parametrize("fail", [False, True], ids=["completed", "failed"])
@pytest.mark.parametrize("key", [SK_KEY, PLAIN_KEY], ids=["sk", "plain"])
async def test_task_quoting_the_key_verbatim(
    key: str, fail: bool, caplog: pytest.LogCaptureFixture
) -> None:
    assert_clean(await _run(key, verbatim, caplog, fail=fail), key)


@pytest.mark.anyio
@pytest.mark.parametrize("fail", [False, True], ids=["completed", "failed"])
@pytest.mark.parametrize("key", [SK_KEY, PLAIN_KEY], ids=["sk", "plain"])
async def test_task_quoting_the_key_json_escaped(
    key: str, fail: bool, caplog: pytest.LogCaptureFixture
) -> None:
    assert_clean(await _run(key, partly_escaped, caplog, fail=fail), key)


@pytest.mark.anyio
async def test_failed_task_message_escaped_plain_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = task_json("task-unified-1700000000-abc", status="failed")
        body["error"] = {"code": "content_policy_violation", "message": "MARK"}
        raw = httpx.Response(200, json=body).content.replace(
            b"MARK", b"refused " + partly_escaped(PLAIN_KEY).encode()
        )
        return httpx.Response(200, content=raw, headers={"content-type": "application/json"})

    async with AsyncEvolink(api_key=PLAIN_KEY, transport=httpx.MockTransport(handler)) as c:
        task = await c.tasks.get("task-unified-1700000000-abc")
    assert task.status is TaskStatus.FAILED
    with pytest.raises(EvolinkError) as info:
        task.raise_for_status()
    assert_clean(error_texts(info.value), PLAIN_KEY)


@pytest.mark.anyio
async def test_task_id_quoting_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    task_id = f"task-unified-{SK_KEY}"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raw = httpx.Response(200, json=task_json(task_id, status="pending")).content
            raw = raw.replace(SK_KEY.encode(), partly_escaped(SK_KEY).encode())
            return httpx.Response(200, content=raw, headers={"content-type": "application/json"})
        return httpx.Response(404, json={"error": {"code": "task_not_found", "message": "no"}})

    texts = []
    async with AsyncEvolink(
        api_key=SK_KEY, transport=httpx.MockTransport(handler), max_retries=0
    ) as c:
        # Was: the id passed, and the key showed in the Task, the next read's DEBUG line and
        # its error. The escaped key is hidden before decoding ends, so the id becomes
        # 'task-unified-***', which is no task id: the create's answer is unusable.
        with pytest.raises(EvolinkError) as info:
            await c.images.generate("a red fox in snow")
        texts.append(error_texts(info.value))
        with pytest.raises(EvolinkError) as refused:  # and an id quoting it is never sent
            await c.tasks.get(task_id)
        texts.append(error_texts(refused.value))
    texts += [r.getMessage() for r in caplog.records]
    assert_clean("\n".join(texts), SK_KEY)


@pytest.mark.anyio
async def test_result_url_quoting_the_key_verbatim_is_hidden(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        task = task_json("task-unified-1700000000-abc")
        task["results"] = [f"https://cdn.example/r/{SK_KEY}.png?token={SK_KEY}"]
        return httpx.Response(200, json=task)

    async with AsyncEvolink(api_key=SK_KEY, transport=httpx.MockTransport(handler)) as c:
        task = await c.tasks.get("task-unified-1700000000-abc")
    assert_clean(_texts_of_task(task) + repr(task.results), SK_KEY)


def test_reprs_of_clients_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (SK_KEY, PLAIN_KEY, "x"):
        monkeypatch.setenv("EVOLINK_API_KEY", key)
        a = AsyncEvolink(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
        b = Evolink(api_key=key, base_url="http://127.0.0.1:9")
        texts = [repr(a), str(a), repr(b), str(b), repr(vars(a))]
        for obj in (a, b):
            for name in dir(obj):
                if name.startswith("__") or name == "_options":
                    continue
                try:
                    texts.append(repr(getattr(obj, name)))
                except Exception:  # noqa: BLE001, S112 - a property that needs a loop
                    continue
        if key != "x":  # a one-letter key is found in any text
            assert_clean("\n".join(texts), key)
        b.close()


def test_pickling_a_client_does_not_write_the_key() -> None:
    client = AsyncEvolink(api_key=SK_KEY, transport=httpx.MockTransport(lambda r: r))
    try:
        data = pickle.dumps(client)
    except Exception as exc:  # noqa: BLE001 - refusing is fine, if it says nothing
        assert_clean(error_texts(exc), SK_KEY)
    else:
        assert SK_KEY.encode() not in data


def test_generation_request_and_price_reprs() -> None:
    request = GenerationRequest(prompt="a red fox in snow", model="gpt-image-2")
    assert_clean(repr(request) + str(request.to_dict()), SK_KEY)
    assert Decimal(1)


def test_blocking_client_holds_the_key_in_plain_text() -> None:
    client = Evolink(api_key=PLAIN_KEY, base_url="http://127.0.0.1:9", max_retries=0)
    texts = [repr(vars(client))]
    try:
        texts.append(repr(pickle.dumps(client)))
    except Exception as exc:  # noqa: BLE001 - refusing is fine, if it says nothing
        texts.append(error_texts(exc))
    try:
        client.tasks.get("task-unified-1700000000-abc")
    except EvolinkError as exc:
        shown = traceback.TracebackException.from_exception(exc, capture_locals=True)
        texts.append("".join(shown.format()))
    client.close()
    assert_clean("\n".join(texts), PLAIN_KEY)
