"""The receiver: what it refuses, what a stranger's callback costs, and the key's secrecy.

The how-to: "A delivery with a wrong token gets 404"; "The receiver answers 202 at once ...
Duplicate and out-of-order deliveries are absorbed; bodies over 256 KB or that are not a
task are refused". docs/how-to/logging.md: "The API key never appears in log lines, in
`repr(client)`, in exception messages or in tracebacks ... the FastAPI receiver answers
such a callback [a task id quoting the key] 400".
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from evolink import APIError, EvolinkError, Task, WaitTimeoutError
from evolink.fastapi import MAX_CALLBACK_BYTES
from evolink.testing import VirtualClock

from ._harness import SECRET, app, captured_logs, render
from ._server import KEY, FakeEvolink, Fate

pytestmark = pytest.mark.anyio


async def test_a_wrong_token_is_refused_and_reads_nothing() -> None:
    server = FakeEvolink(VirtualClock(), fate=Fate(duration=20.0, estimated_time=60))
    async with app(server) as env:
        assert env.integration is not None
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        result: dict[str, Any] = {}

        async def wait() -> None:
            result["task"], result["at"] = await env.timed(env.integration.wait(task))

        env.tg.start_soon(wait)
        await env.sleep_until(5.0)
        before = len(server.reads)
        for token in ("wrong", SECRET[:-1], SECRET + "x", SECRET.upper()):
            response = await env.post(server.lie(task.id, "completed"), token=token)
            assert response.status_code == 404, token
        await env.clock.sleep(1.0)
        assert len(server.reads) == before
        assert env.integration.rejected == 4
        assert "task" not in result, "a refused delivery woke the wait"


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"not json",
        b'{"status": "completed"}',
        b'{"id": "task-unified-1-aaaa"}',
        b'{"id": "task-unified-1-aaaa", "status": 3}',
        b'{"id": 12, "status": "completed"}',
        b'{"id": "unified-1-aaaa", "status": "completed"}',
        b'{"id": "task-unified-1/../../v1/credits", "status": "completed"}',
        b'{"id": "task-unified-1?x=1", "status": "completed"}',
        b'{"id": "task-unified-' + b"a" * 300 + b'", "status": "completed"}',
        b'{"id": "task-unified-1-a%2F", "status": "completed"}',
    ],
    ids=lambda b: b[:24].decode(errors="replace"),
)
async def test_a_body_that_is_not_a_task_is_refused_and_reads_nothing(body: bytes) -> None:
    server = FakeEvolink(VirtualClock())
    async with app(server) as env:
        response = await env.post(body)
        await env.clock.sleep(2.0)
    assert response.status_code == 400
    assert server.reads == []


async def test_the_size_limit_is_exact() -> None:
    server = FakeEvolink(VirtualClock(), fate=Fate(duration=1.0))
    async with app(server) as env:
        task = await env.client.images.generate("a lighthouse")
        await env.sleep_until(2.0)

        def padded(size: int) -> bytes:
            head = json.dumps({"id": task.id, "status": "completed", "pad": ""}).encode()
            return head[:-2] + b"x" * (size - len(head)) + b'"}'

        assert len(padded(MAX_CALLBACK_BYTES)) == MAX_CALLBACK_BYTES
        too_big = await env.post(padded(MAX_CALLBACK_BYTES + 1))
        await env.clock.sleep(1.0)
        assert too_big.status_code == 413
        assert server.reads == []
        just_fits = await env.post(padded(MAX_CALLBACK_BYTES))
        assert just_fits.status_code == 202
        assert env.integration is not None
        done = await env.integration.wait(task.id)
        assert done.status.value == "completed"


async def test_callbacks_for_strangers_cost_one_read_each_and_disturb_no_wait() -> None:
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=20.0, estimated_time=60), read_latency=0.2
    )
    async with app(server) as env:
        assert env.integration is not None
        env.genuine_callbacks(delay=0.05)
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        strangers = [f"task-unified-1-stranger{i}" for i in range(5)]
        for k in range(20):
            env.post_at(2.0 + 0.9 * k, {"id": strangers[k % 5], "status": "completed"})
        done, woke = await env.timed(env.integration.wait(task.id))
        assert done.status.value == "completed"
        assert woke <= 20.05 + 0.2 + 0.3
        for stranger in strangers:
            # One read to learn it is unknown per delivery at most (4 deliveries each).
            assert len(server.reads_of(stranger)) <= 4, server.reads_of(stranger)
        assert all(d.status == 202 for d in env.deliveries)
        with pytest.raises(EvolinkError):
            await env.integration.wait(strangers[0], timeout=5)


async def test_the_key_never_shows_in_logs_or_errors_around_callbacks() -> None:
    """Reads fail quoting the key (body and X-Request-Id), strangers answer 404 quoting it."""
    server = FakeEvolink(
        VirtualClock(),
        fate=Fate(duration=20.0, estimated_time=60),
        read_latency=0.2,
        read_status=lambda r: 503 if 19.9 <= r.sent <= 40.0 else None,
    )
    errors: list[BaseException] = []
    with captured_logs() as records:
        async with app(server) as env:
            assert env.integration is not None
            env.genuine_callbacks(delay=0.05)
            task = await env.client.images.generate(
                "a lighthouse", callback_url=env.integration.callback_url()
            )
            env.post_at(20.5, {"id": "task-unified-1-stranger", "status": "completed"})
            quoting = await env.post({"id": f"task-unified-x{KEY}", "status": "completed"})
            assert quoting.status_code == 400
            outcomes: list[Any] = []

            async def run(waiting: Any) -> None:
                outcomes.append((await env.timed_outcome(waiting))[0])

            async with anyio.create_task_group() as tg:
                tg.start_soon(run, env.integration.wait(task.id, timeout=30))
                tg.start_soon(run, env.client.tasks.wait(task, timeout=30))
            await env.sleep_until(45.0)
            try:
                await env.client.tasks.get("task-unified-1-stranger")
            except APIError as exc:
                errors.append(exc)
            errors.extend(o for o in outcomes if isinstance(o, BaseException))
            tasks = [o for o in outcomes if isinstance(o, Task)]
    assert errors, "the scenario raised nothing to look at"
    assert any(isinstance(e, WaitTimeoutError) for e in errors) or tasks
    for read in server.reads:
        assert not any(KEY in task_id for task_id in read.ids), "an address quoted the key"
    leaks = [render(r) for r in records if KEY in render(r)]
    assert not leaks, leaks[:3]
    for exc in errors:
        for text in (str(exc), repr(exc), json.dumps(getattr(exc, "body", None), default=str)):
            assert KEY not in text, text
        assert KEY not in str(getattr(exc, "request_id", ""))


async def test_feed_refuses_hostile_payloads_without_raising_or_reading() -> None:
    server = FakeEvolink(VirtualClock(), fate=Fate(duration=5.0), read_latency=0.2)
    hostile: list[Any] = [
        {},
        None,
        "task-unified-1-aaaa",
        ["task-unified-1-aaaa"],
        {"id": 5, "status": "completed"},
        {"status": "completed"},
        {"id": "task-unified-1/../../v1/credits", "status": "completed"},
        {"id": "task-unified-1?page=2", "status": "completed"},
        {"id": f"task-unified-x{KEY}", "status": "completed"},
        {"id": "not-a-task", "status": "completed"},
    ]
    async with app(server) as env:
        assert env.integration is not None
        async with env.client.batch(callback_url=env.integration.callback_url()) as batch:

            async def feed() -> None:
                await env.sleep_until(1.0)
                for payload in hostile:
                    assert batch.feed(payload) is False, payload

            env.tg.start_soon(feed)
            await batch.submit_all(["a heron"])
        await env.clock.sleep(3.0)
    assert [o.kind.value for o in batch.report().outcomes] == ["completed"]
    (own,) = server.order
    assert all(read.ids == [own] for read in server.reads), [r.ids for r in server.reads]
    # Nothing went to an address a payload named (the SDK's own catalog look-up aside).
    assert not [p for p in server.other if not p[1].startswith("/v1/catalog/")], server.other
