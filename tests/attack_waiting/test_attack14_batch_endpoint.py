"""A hostile `POST /v1/tasks/batch`: it comes and goes, answers partly, adds, repeats.

The batch endpoint is undocumented (PLATFORM.md: "`POST /v1/tasks/batch` with `{task_ids:
[...]}` (<= 50) reads many tasks at once"; simulator.md: "unknown, expired and other keys'
ids are simply absent"). waiting.md, "Many tasks: batch reads": "Fallback to GETs: a 404
(or any unusable answer) from the batch endpoint makes the client read one GET per task
from then on. An id missing from a batch answer is read alone". The issue: every wait ends
exactly once with the right final task, never a stale one or another task's state.
"""

from __future__ import annotations

import random
from typing import Any

import anyio
import httpx
import pytest
from _attack14_server import (
    BatchFn,
    HostileServer,
    ScriptedTask,
    batch_ok,
    client_for,
    task_of,
    within,
)

from evolink import NotFoundError
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio


def _unavailable() -> httpx.Response:
    body = {"error": {"code": "service_unavailable", "message": "busy", "type": "server_error"}}
    return httpx.Response(503, json=body)


def flaky(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    return _unavailable() if number % 2 else server.batch_answer(ids)


def partial(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    return server.batch_answer(ids[::2])


def empty(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    return httpx.Response(200, json={"data": []})


def shuffled(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    data = server.batch_answer(ids).json()["data"]
    random.Random(number).shuffle(data)
    return httpx.Response(200, json={"data": data})


def _stale_copies(server: HostileServer, ids: list[str]) -> list[dict[str, Any]]:
    """Each task as it was just before its end (a replica lagging behind)."""
    now = server.clock.monotonic()
    return [
        body
        for task_id in ids
        if (body := server.tasks[task_id].body(min(now, server.tasks[task_id].end - 0.01)))
    ]


def duplicates_stale_first(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    stale = _stale_copies(server, ids)
    fresh = server.batch_answer(ids).json()["data"]
    return httpx.Response(200, json={"data": stale + fresh})


def duplicates_stale_last(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    stale = _stale_copies(server, ids)
    fresh = server.batch_answer(ids).json()["data"]
    return httpx.Response(200, json={"data": fresh + stale})


def with_strangers(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    """Adds tasks nobody asked for: tasks of the key nobody waits for (done), and an id
    the key never made, claiming to be completed."""
    now = server.clock.monotonic()
    strangers = [
        body for t in server.tasks.values() if t.id not in ids and (body := t.body(now + 1e6))
    ][:5]
    fake = dict(strangers[0]) if strangers else {}
    fake.update(id="task-unified-1767225600-nobody00", status="completed", progress=100)
    fake["results"] = ["https://evil.invalid/not-yours.png"]
    return server.batch_answer(ids, extra=[*strangers, fake])


def appears_late(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    return server.not_found("not_found") if number <= 2 else server.batch_answer(ids)


def disappears(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    return server.batch_answer(ids) if number <= 3 else server.not_found("not_found")


def not_a_list(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    return httpx.Response(200, json={"data": {"tasks": []}})


def html(server: HostileServer, ids: list[str], number: int) -> httpx.Response:
    return httpx.Response(200, text="<html>maintenance</html>")


BEHAVIOURS: dict[str, BatchFn] = {
    "ok": batch_ok,
    "flaky-503": flaky,
    "partial": partial,
    "empty": empty,
    "shuffled": shuffled,
    "duplicates-stale-first": duplicates_stale_first,
    "duplicates-stale-last": duplicates_stale_last,
    "strangers": with_strangers,
    "appears-late": appears_late,
    "disappears": disappears,
    "data-not-a-list": not_a_list,
    "html": html,
}


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
async def test_attack14_hostile_batch_endpoint_every_wait_ends_right(behaviour: str) -> None:
    """Promise: whatever the batch endpoint does, each of 60 concurrent waits ends once
    with its own task's true final state (status and results), by max(2 x duration, 30 s)
    plus a second, and no task is read more than 30 times (a 1 s loop would read each up
    to 40 times)."""
    clock = VirtualClock()
    server = HostileServer(clock, batch=BEHAVIOURS[behaviour])
    rng = random.Random(3)
    finals = ["completed"] * 4 + ["failed"]
    async with client_for(server, clock) as client, clock.running():
        tasks = [
            server.add(duration=rng.uniform(5, 40), final=finals[i % len(finals)])
            for i in range(60)
        ]
        # A few tasks of the key that nobody waits for (the strangers' source).
        for _ in range(5):
            server.add(duration=1.0)
        ended: dict[str, Any] = {}

        async def one(task: ScriptedTask) -> None:
            ended[task.id] = await within(
                clock, 2000, lambda: client.tasks.wait(task_of(server, task))
            )

        async with anyio.create_task_group() as group:
            for task in tasks:
                group.start_soon(one, task)
    stuck = [t.id for t in tasks if not ended[t.id].finished]
    assert not stuck, f"{len(stuck)} waits never ended (e.g. {stuck[0]})"
    for task in tasks:
        end = ended[task.id]
        assert end.error is None, repr(end.error)
        assert end.value.id == task.id
        assert end.value.status.value == task.final
        assert list(end.value.results) == task.results
        assert end.at - task.created <= max(2 * task.duration, 30.0) + 1.0
        assert len(task.reads) <= 30, f"{task.id}: {len(task.reads)} reads"
    assert "evil.invalid" not in repr([e.value for e in ended.values()])


async def test_attack14_vanished_id_in_batch_answer_ends_the_wait_not_the_others() -> None:
    """Promise: "An id missing from a batch answer is read alone; a task that answers 404
    (expired) ends `uncertain`" (for a batch); for `tasks.wait` its `get` documents
    `NotFoundError: no such task, or it expired`. A task that vanishes mid-wait ends its
    wait with an error soon after, and the other waits go on undisturbed."""
    clock = VirtualClock()
    server = HostileServer(clock)
    async with client_for(server, clock) as client, clock.running():
        gone = server.add(duration=300.0, vanish_at=40.0)
        others = [server.add(duration=50.0 + i) for i in range(20)]
        ended: dict[str, Any] = {}

        async def one(task: ScriptedTask) -> None:
            ended[task.id] = await within(
                clock, 2000, lambda: client.tasks.wait(task_of(server, task))
            )

        async with anyio.create_task_group() as group:
            for task in [gone, *others]:
                group.start_soon(one, task)
    assert ended[gone.id].finished
    assert isinstance(ended[gone.id].error, NotFoundError), repr(ended[gone.id].error)
    # Seen gone by a bounded share of its age at the vanishing (40 s): by 80 s.
    assert ended[gone.id].at <= 80.5
    for task in others:
        assert ended[task.id].error is None
        assert ended[task.id].value.status.value == "completed"
        assert ended[task.id].at - task.created <= 2 * task.duration + 1.0
