"""Callbacks as hints: one read per confirmed task, whatever order and number they come in.

Issue 14: "A task confirmed by a callback costs one read, not two." waiting.md: "the
FastAPI receiver hands a callback for a watched task to the engine, whose one read confirms
it for every party waiting for that task (a batch and a `wait` alike)"; "A callback [...]
is a hint, not a fact: callbacks are unsigned. The engine makes the task due at once and
reads it; only what that read says counts". docs/how-to/fastapi.md: "Duplicate and
out-of-order deliveries are absorbed"; "`await evolink.wait(task_id)` returns when the
confirmed callback arrives".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from _attack14_server import (
    API_KEY,
    BASE_URL,
    HostileServer,
    ScriptedTask,
    within,
)

from evolink import AsyncEvolink
from evolink.testing import VirtualClock

fastapi = pytest.importorskip("fastapi")
from evolink.fastapi import EvolinkIntegration  # noqa: E402

pytestmark = pytest.mark.anyio

PUBLIC_URL = "https://app.example.com"


class App:
    """A FastAPI app with the integration, its lifespan running, on a hostile server."""

    def __init__(self, clock: VirtualClock, server: HostileServer, transport: Any) -> None:
        self.clock = clock
        self.server = server
        self.integration = EvolinkIntegration(
            public_url=PUBLIC_URL,
            secret="attack14-secret-" + "x" * 24,
            client_factory=lambda: AsyncEvolink(
                api_key=API_KEY, base_url=BASE_URL, transport=transport, clock=clock
            ),
        )
        self.app = fastapi.FastAPI(lifespan=self.integration.lifespan)
        self.app.include_router(self.integration.callback_router)
        self.statuses: list[int] = []

    async def deliver(self, body: dict[str, Any], *, at: float | None = None) -> None:
        """POST a callback body to the app's receiver (at virtual time `at`)."""
        if at is not None:
            await self.clock.sleep(max(0.0, at - self.clock.monotonic()))
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
            response = await http.post(self.integration.callback_url(), json=body)
        self.statuses.append(response.status_code)


@asynccontextmanager
async def running_app(
    transport: Callable[[HostileServer], Any] | None = None,
) -> AsyncIterator[App]:
    clock = VirtualClock()
    server = HostileServer(clock)
    app = App(clock, server, transport(server) if transport else server.transport())
    async with app.integration.lifespan(app.app), clock.running():
        yield app


def _done_body(task: ScriptedTask) -> dict[str, Any]:
    body = task.body(task.end + 1.0)
    assert body is not None
    return body


def _reads_from(task: ScriptedTask, since: float) -> int:
    return sum(1 for at in task.reads if at >= since - 1e-9)


async def test_attack14_a_callback_costs_one_read() -> None:
    """Promise: "a task confirmed by a callback costs one read, not two", and the wait
    returns when the confirmed callback arrives (not at its own next planned read)."""
    async with running_app() as app:
        task = app.server.add(duration=100.0)
        ended: dict[str, Any] = {}

        async def waiter() -> None:
            ended["w"] = await within(app.clock, 1000, lambda: app.integration.wait(task.id))

        async with anyio.create_task_group() as group:
            group.start_soon(waiter)
            group.start_soon(lambda: app.deliver(_done_body(task), at=task.end + 0.5))
    assert app.statuses == [202]
    end = ended["w"]
    assert end.error is None
    assert end.value.status.value == "completed"
    assert list(end.value.results) == task.results
    assert end.at <= task.end + 0.5 + 0.1, f"returned at {end.at:.2f}, callback at {task.end + 0.5}"
    assert _reads_from(task, task.end + 0.5) == 1, [round(r, 2) for r in task.reads]


@pytest.mark.parametrize("spacing", [0.0, 3.0, 60.0])
async def test_attack14_duplicate_callbacks_cost_one_read(spacing: float) -> None:
    """Promise: "Duplicate [...] deliveries are absorbed" and a callback costs one read:
    three deliveries of the same end (at once, 3 s or 60 s apart) make one read."""
    async with running_app() as app:
        task = app.server.add(duration=100.0)
        ended: dict[str, Any] = {}

        async def waiter() -> None:
            ended["w"] = await within(app.clock, 1000, lambda: app.integration.wait(task.id))

        async with anyio.create_task_group() as group:
            group.start_soon(waiter)
            for i in range(3):
                group.start_soon(
                    lambda i=i: app.deliver(_done_body(task), at=task.end + 0.5 + i * spacing)
                )
    assert app.statuses == [202, 202, 202]
    assert ended["w"].value.status.value == "completed"
    assert _reads_from(task, task.end + 0.5) == 1, [round(r, 2) for r in task.reads]


async def test_attack14_a_callback_before_anyone_waits() -> None:
    """Promise: out-of-order deliveries are absorbed: a callback that arrives before the
    handler starts waiting still ends that wait at once, with at most one more read."""
    async with running_app() as app:
        task = app.server.add(duration=5.0)
        await app.deliver(_done_body(task), at=5.5)
        await app.clock.sleep(20.0 - app.clock.monotonic())
        ended = await within(app.clock, 1000, lambda: app.integration.wait(task.id))
    assert ended.error is None
    assert ended.value.status.value == "completed"
    assert ended.at <= 20.5
    assert len(task.reads) <= 2, [round(r, 2) for r in task.reads]


async def test_attack14_a_callback_before_the_create_answered() -> None:
    """Promise: a callback that overtakes the create's answer (the server is slow to answer
    the create, the task is quick) is absorbed: the handler's wait ends as soon as it
    starts, with at most two reads of the task in all."""
    late_answer = 4.0

    def slow_creates(server: HostileServer) -> Any:
        async def handle(request: httpx.Request) -> httpx.Response:
            response = server(request)
            if request.url.path == "/v1/images/generations":
                await server.clock.sleep(late_answer)
            return response

        return httpx.MockTransport(handle)

    async with running_app(slow_creates) as app:

        def on_create(server: HostileServer, model: str, index: int) -> ScriptedTask:
            return server.add(model=model, duration=1.0)

        app.server.on_create = on_create
        made: dict[str, Any] = {}

        async def handler(client: AsyncEvolink) -> None:
            made["task"] = await client.images.generate(
                "a hostile fox", callback_url=app.integration.callback_url()
            )
            made["created_at"] = app.clock.monotonic()
            made["end"] = await within(app.clock, 1000, lambda: app.integration.wait(made["task"]))

        async def early_callback() -> None:
            while not app.server.tasks:
                await app.clock.sleep(0.1)
            (task,) = app.server.tasks.values()
            await app.deliver(_done_body(task), at=2.0)

        client = app.integration.client()  # what `Depends(evolink.client)` hands out
        async with anyio.create_task_group() as group:
            group.start_soon(handler, client)
            group.start_soon(early_callback)
    (task,) = app.server.tasks.values()
    end = made["end"]
    assert made["created_at"] >= late_answer
    assert end.error is None
    assert end.value.id == task.id
    assert end.value.status.value == "completed"
    assert end.at <= made["created_at"] + 0.5, (end.at, made["created_at"])
    assert len(task.reads) <= 2, [round(r, 2) for r in task.reads]


async def test_attack14_a_lying_callback_is_not_believed() -> None:
    """Promise: "only what that read says counts": a callback claiming the task completed
    (with another result URL) while it still runs changes nothing but costs a read; the
    wait returns the task as it really ends, with its real results."""
    async with running_app() as app:
        task = app.server.add(duration=100.0)
        lie = _done_body(task)
        lie["results"] = ["https://evil.invalid/forged.png"]
        ended: dict[str, Any] = {}

        async def waiter() -> None:
            ended["w"] = await within(app.clock, 1000, lambda: app.integration.wait(task.id))

        async with anyio.create_task_group() as group:
            group.start_soon(waiter)
            group.start_soon(lambda: app.deliver(lie, at=30.0))
    end = ended["w"]
    assert end.error is None
    assert end.value.status.value == "completed"
    assert list(end.value.results) == task.results
    assert end.at >= task.end
    assert end.at <= 2 * task.duration + 0.5


async def test_attack14_callbacks_for_unknown_tasks_disturb_nobody() -> None:
    """Promise: the receiver answers 202 at once and confirms with a read; a callback for a
    task nobody made (its read answers 404), or a body that is not a task, disturbs neither
    the app nor the other waits."""
    async with running_app() as app:
        tasks = [app.server.add(duration=50.0 + i) for i in range(5)]
        stranger = dict(_done_body(tasks[0]), id="task-unified-1767225600-nobody00")
        ended: dict[str, Any] = {}

        async def waiter(task: ScriptedTask) -> None:
            ended[task.id] = await within(app.clock, 1000, lambda: app.integration.wait(task.id))

        async with anyio.create_task_group() as group:
            for task in tasks:
                group.start_soon(waiter, task)
            group.start_soon(lambda: app.deliver(stranger, at=10.0))
            group.start_soon(lambda: app.deliver(stranger, at=11.0))
            group.start_soon(lambda: app.deliver({"id": "not-a-task"}, at=12.0))
            for task in tasks:
                group.start_soon(lambda task=task: app.deliver(_done_body(task), at=task.end))
    for task in tasks:
        end = ended[task.id]
        assert end.error is None
        assert end.value.id == task.id
        assert end.value.status.value == "completed"
        assert end.at <= task.end + 0.1
        assert _reads_from(task, task.end) == 1
    assert 404 not in app.statuses[:2]


async def test_attack14_many_handlers_waiting_share_batch_reads() -> None:
    """Promise: "concurrent waits from a thousand request handlers coalesce into batch reads"
    (issue 14), the FastAPI integration's `wait` included: 200 handlers waiting by task id
    (as docs/how-to/fastapi.md's `evolink.wait(task_id)`), no callbacks coming, cost fewer
    than one read request per task."""
    async with running_app() as app:
        tasks = [app.server.add(duration=20.0 + (i % 17)) for i in range(200)]
        ended: dict[str, Any] = {}

        async def waiter(task: ScriptedTask) -> None:
            ended[task.id] = await within(app.clock, 1000, lambda: app.integration.wait(task.id))

        async with anyio.create_task_group() as group:
            for task in tasks:
                group.start_soon(waiter, task)
    for task in tasks:
        assert ended[task.id].error is None
        assert ended[task.id].value.id == task.id
    per_task = app.server.read_requests() / len(tasks)
    assert per_task < 1.0, (
        f"{per_task:.2f} read requests per task ({len(app.server.batch_requests())} batch "
        f"reads, {len(app.server.get_requests())} GETs)"
    )


async def test_attack14_batch_feed_costs_one_read_per_task() -> None:
    """Promise: "A callback (`batch.feed(payload)`, or the FastAPI receiver) [...] The
    engine makes the task due at once and reads it": a batch fed each task's end reads
    each task once after the feed, and each outcome is the task as it ended."""
    clock = VirtualClock()
    server = HostileServer(clock)

    def on_create(server: HostileServer, model: str, index: int) -> ScriptedTask:
        return server.add(model=model, duration=100.0 + index)

    server.on_create = on_create
    async with (
        AsyncEvolink(
            api_key=API_KEY, base_url=BASE_URL, transport=server.transport(), clock=clock
        ) as client,
        clock.running(),
    ):
        fed: dict[str, float] = {}

        async def feeder(batch: Any) -> None:
            while len(server.tasks) < 10:
                await clock.sleep(0.5)
            for task in sorted(server.tasks.values(), key=lambda t: t.end):
                await clock.sleep(max(0.0, task.end + 0.25 - clock.monotonic()))
                fed[task.id] = clock.monotonic()
                assert batch.feed(_done_body(task))

        async with client.batch(max_in_flight=10) as batch:
            async with anyio.create_task_group() as group:
                group.start_soon(feeder, batch)
                await batch.submit_all([f"p{i}" for i in range(10)])
        report = batch.report()
    assert [o.kind.value for o in report.outcomes] == ["completed"] * 10
    for outcome in report.outcomes:
        task = server.tasks[outcome.task.id]
        assert list(outcome.task.results) == task.results
        assert _reads_from(task, fed[task.id]) == 1, [round(r, 2) for r in task.reads]


async def test_attack14_a_callback_whose_confirming_read_fails_once() -> None:
    """Promise: "Read errors are retried after 1 s, doubling per failure up to 30 s"
    (waiting.md): the read that confirms a callback answers 503 once; the wait still ends
    with the task soon after (within 5 s of the callback), not at its next planned read."""
    failures = {"left": 1}

    def flaky_reads(server: HostileServer) -> Any:
        def handle(request: httpx.Request) -> httpx.Response:
            is_read = request.url.path.startswith("/v1/tasks")
            if is_read and server.clock.monotonic() >= 100.0 and failures["left"]:
                failures["left"] -= 1
                body = {"error": {"code": "service_unavailable", "message": "x", "type": "x"}}
                return httpx.Response(503, json=body)
            return server(request)

        return httpx.MockTransport(handle)

    async with running_app(flaky_reads) as app:
        task = app.server.add(duration=100.0, estimate=lambda r, d: 1000)
        ended: dict[str, Any] = {}

        async def waiter() -> None:
            ended["w"] = await within(app.clock, 2000, lambda: app.integration.wait(task.id))

        async with anyio.create_task_group() as group:
            group.start_soon(waiter)
            group.start_soon(lambda: app.deliver(_done_body(task), at=task.end + 0.5))
    assert failures["left"] == 0
    end = ended["w"]
    assert end.error is None
    assert end.value.status.value == "completed"
    assert end.at <= task.end + 0.5 + 5.0, f"returned at {end.at:.1f}"


async def test_attack14_a_stale_callback_then_the_real_one() -> None:
    """Promise: "Duplicate and out-of-order deliveries are absorbed": a delivery carrying an
    older state (still processing) that arrives after the real end, and the real end, end
    the wait with the completed task, at one read after the first delivery."""
    async with running_app() as app:
        task = app.server.add(duration=100.0, estimate=lambda r, d: 1000)
        stale = task.body(task.end - 10.0)
        assert stale is not None
        ended: dict[str, Any] = {}

        async def waiter() -> None:
            ended["w"] = await within(app.clock, 2000, lambda: app.integration.wait(task.id))

        async with anyio.create_task_group() as group:
            group.start_soon(waiter)
            group.start_soon(lambda: app.deliver(_done_body(task), at=task.end + 0.5))
            group.start_soon(lambda: app.deliver(stale, at=task.end + 0.6))
    end = ended["w"]
    assert end.error is None
    assert end.value.status.value == "completed"
    assert end.at <= task.end + 0.6
    assert _reads_from(task, task.end + 0.5) == 1, [round(r, 2) for r in task.reads]


async def test_attack14_one_read_confirms_a_callback_for_a_batch_and_a_wait_alike() -> None:
    """Promise: "the FastAPI receiver hands a callback for a watched task to the engine,
    whose one read confirms it for every party waiting for that task (a batch and a `wait`
    alike)": a batch attached to the app and handlers waiting on the same tasks by id see
    each task end at its callback, for one read after it."""
    async with running_app() as app:

        def on_create(server: HostileServer, model: str, index: int) -> ScriptedTask:
            return server.add(model=model, duration=60.0 + 7 * index)

        app.server.on_create = on_create
        client = app.integration.client()
        ended: dict[str, Any] = {}
        delivered: dict[str, float] = {}

        async def handler(task: ScriptedTask) -> None:
            ended[task.id] = await within(app.clock, 1000, lambda: app.integration.wait(task.id))

        async def callbacks(group: anyio.abc.TaskGroup) -> None:
            while len(app.server.tasks) < 5:
                await app.clock.sleep(0.5)
            for task in app.server.tasks.values():
                group.start_soon(handler, task)
            for task in sorted(app.server.tasks.values(), key=lambda t: t.end):
                delivered[task.id] = task.end + 0.5
                await app.deliver(_done_body(task), at=task.end + 0.5)

        batch = client.batch(max_in_flight=5, callback_url=app.integration.callback_url())
        app.integration.attach(batch)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(callbacks, group)
                async with batch:
                    await batch.submit_all([f"p{i}" for i in range(5)])
        finally:
            app.integration.detach(batch)
    report = batch.report()
    assert [o.kind.value for o in report.outcomes] == ["completed"] * 5
    for outcome in report.outcomes:
        task = app.server.tasks[outcome.task.id]
        assert list(outcome.task.results) == task.results
        assert ended[task.id].error is None
        assert ended[task.id].value.status.value == "completed"
        assert ended[task.id].at <= delivered[task.id] + 0.1
        assert _reads_from(task, delivered[task.id]) == 1, [round(r, 2) for r in task.reads]
