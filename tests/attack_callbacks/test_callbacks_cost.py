"""What a callback costs: one read, for every party waiting for the task.

docs/explanation/waiting.md: "a callback costs one read: the FastAPI receiver hands a
callback for a watched task to the engine, whose one read confirms it for every party
waiting for that task (a batch and a `wait` alike)"; "The receiver's own confirming read
goes through the engine too, so a wait that starts while it is out takes it as its own:
one read still confirms the callback for every party"; waits by id "share their first
read"; "Never two reads of one task in flight at once". The how-to: "Duplicate and
out-of-order deliveries are absorbed".
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from evolink.testing import VirtualClock

from ._harness import Env, app
from ._server import FakeEvolink, Fate

pytestmark = pytest.mark.anyio

LATENCY = 1.0


def _reads(server: FakeEvolink, task_id: str, since: float) -> list[tuple[float, str | None]]:
    return [(round(r.sent, 2), r.statuses.get(task_id)) for r in server.reads_of(task_id, since)]


def _party(env: Env, kind: str, task: Any) -> Any:
    assert env.integration is not None
    return {
        "wait-id": lambda: env.integration.wait(task.id),
        "wait-task": lambda: env.integration.wait(task),
        "client-wait": lambda: env.client.tasks.wait(task),
        "client-wait-id": lambda: env.client.tasks.wait(task.id),
    }[kind]()


async def test_one_read_confirms_a_callback_for_a_batch_and_five_waits() -> None:
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=20.0, estimated_time=60), read_latency=LATENCY
    )
    async with app(server) as env:
        assert env.integration is not None
        ended: list[float] = []
        batch_id = env.integration.start_batch(
            ["a lighthouse"], on_outcome=lambda o: ended.append(env.now())
        )
        batch = env.integration.batch(batch_id)
        await env.sleep_until(2.0)
        (task,) = batch.created()
        woke: list[tuple[str, str, float]] = []

        async def party(kind: str) -> None:
            done, at = await env.timed(_party(env, kind, task))
            woke.append((kind, done.status.value, at))

        async with anyio.create_task_group() as tg:
            for kind in ("wait-id", "wait-id", "wait-task", "client-wait", "client-wait-id"):
                tg.start_soon(party, kind)
            env.post_at(20.05, lambda: server.final_body(task.id))
        while not batch.finished:
            await env.clock.sleep(0.1)
        assert [w[1] for w in woke] == ["completed"] * 5
        assert len(_reads(server, task.id, since=20.05)) == 1, _reads(server, task.id, 0)
        assert max(w[2] for w in woke) <= 20.05 + LATENCY + 0.3
        assert ended
        assert ended[0] <= 20.05 + LATENCY + 0.3


async def test_duplicate_deliveries_cost_one_read_and_none_once_settled() -> None:
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=20.0, estimated_time=60), read_latency=LATENCY
    )
    async with app(server) as env:
        assert env.integration is not None
        env.genuine_callbacks(delay=0.05, copies=4, spacing=0.1)  # all while the read is out
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        done = await env.integration.wait(task)
        assert done.status.value == "completed"
        await env.sleep_until(30.0)
        assert len(_reads(server, task.id, since=20.0)) == 1, _reads(server, task.id, 0)
        # Evolink retries, a proxy replays: the same body again, long after.
        for _ in range(3):
            response = await env.post(server.final_body(task.id))
            assert response.status_code == 202
        await env.clock.sleep(5.0)
        again = await env.integration.wait(task.id)
        assert again.status.value == "completed"
        assert len(_reads(server, task.id, since=30.0)) == 0, _reads(server, task.id, 0)


@pytest.mark.parametrize("kind", ["wait-id", "client-wait-id", "wait-task", "client-wait"])
async def test_a_wait_starting_while_the_receiver_confirms_takes_that_read(kind: str) -> None:
    """The task ended, its callback came at 1.0, nobody waited: the receiver reads it (1 s).

    A wait starts at 1.5, while that read is out: the docs say it takes that read as its own.
    """
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=0.2, estimated_time=60), read_latency=LATENCY
    )
    async with app(server) as env:
        assert env.integration is not None
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        await env.sleep_until(1.0)
        await env.post(server.final_body(task.id))
        await env.sleep_until(1.5)
        done, woke = await env.timed(_party(env, kind, task))
        assert done.status.value == "completed"
        reads = _reads(server, task.id, since=0.0)
        assert len(reads) == 1, f"{kind}: reads {reads}, woke at {woke:.2f}"
        assert woke <= 2.0 + 1e-6, f"{kind}: woke at {woke:.2f}, reads {reads}"


@pytest.mark.parametrize("kind", ["wait-task", "wait-id"])
async def test_a_lying_callback_just_before_a_wait_costs_one_read(kind: str) -> None:
    """A callback says "completed" at 1.0 for a task that runs to 100 s; nobody waits yet.

    The receiver reads the task (out 1.0-2.0: "processing"); a wait starts at 1.5 and, per
    the docs, takes that read as its own. The lie has then been answered: it must not be
    read again and again.
    """
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=100.0, estimated_time=60), read_latency=LATENCY
    )
    async with app(server) as env:
        assert env.integration is not None
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        await env.sleep_until(1.0)
        await env.post(server.lie(task.id, "completed"))
        await env.sleep_until(1.5)
        waiting = env.tg
        result: dict[str, Any] = {}

        async def wait() -> None:
            result["task"], result["at"] = await env.timed(_party(env, kind, task))

        waiting.start_soon(wait)
        await env.sleep_until(8.0)
        reads = _reads(server, task.id, since=0.0)
        assert len(reads) == 1, f"{kind}: one lying callback, reads by 8 s: {reads}"


async def test_a_flood_of_callbacks_never_puts_two_reads_of_a_task_in_flight() -> None:
    """Forty lying callbacks in four seconds while the reads take a second each."""
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=30.0, estimated_time=60), read_latency=LATENCY
    )
    async with app(server) as env:
        assert env.integration is not None
        env.genuine_callbacks(delay=0.05)
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        for k in range(40):
            env.post_at(10.0 + 0.1 * k, lambda: server.lie(task.id, "completed"))
        parties = [
            env.integration.wait(task.id),
            env.integration.wait(task),
            env.client.tasks.wait(task),
        ]
        results: list[str] = []

        async def run(waiting: Any) -> None:
            results.append((await waiting).status.value)

        async with anyio.create_task_group() as tg:
            for waiting in parties:
                tg.start_soon(run, waiting)
        assert results == ["completed"] * 3
        assert server.peak_in_flight[task.id] == 1, server.peak_in_flight
        flood = [r for r in server.reads_of(task.id) if 10.0 <= r.sent < 14.0]
        # At most one read a second (each waits for the one out), whatever the callbacks.
        assert len(flood) <= 5, _reads(server, task.id, 0)


async def test_waits_by_id_for_a_batch_s_tasks_read_nothing_of_their_own() -> None:
    """The engine watches the batch's tasks: a wait by id needs no first read of its own."""
    server = FakeEvolink(
        VirtualClock(),
        fate=lambda i, _: Fate(duration=10.0 + 5 * i, estimated_time=60),
        read_latency=0.3,
    )
    async with app(server) as env:
        assert env.integration is not None
        env.genuine_callbacks(delay=0.05)
        batch = env.integration.batch(
            env.integration.start_batch([f"a heron {i}" for i in range(4)])
        )
        await env.sleep_until(2.0)
        assert len(batch.created()) == 4
        woke: dict[str, float] = {}

        async def wait(task_id: str) -> None:
            done, woke[task_id] = await env.timed(env.integration.wait(task_id))
            assert done.status.value == "completed"

        async with anyio.create_task_group() as tg:
            for task in batch.created():
                for _ in range(3):
                    tg.start_soon(wait, task.id)
        started = [r for r in server.reads if 2.0 <= r.sent < 2.2]
        assert not started, f"the waits by id read at once: {started}"
        for task_id in server.order:
            end = server.task(task_id).ended_at
            assert end is not None
            assert woke[task_id] <= end + 0.05 + 0.3 + 0.3, (task_id, woke[task_id], end)


async def test_a_lying_callback_costs_one_read_for_five_waits() -> None:
    """The waits are settled (their first reads done); a lie lands at 10 s."""
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=40.0, estimated_time=60), read_latency=LATENCY
    )
    async with app(server) as env:
        assert env.integration is not None
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        env.post_at(10.0, lambda: server.lie(task.id, "completed"))
        env.post_at(10.0, lambda: server.lie(task.id, "failed"))
        env.post_at(40.05, lambda: server.final_body(task.id))
        statuses: list[str] = []

        async def party(kind: str) -> None:
            statuses.append((await _party(env, kind, task)).status.value)

        async with anyio.create_task_group() as tg:
            for kind in ("wait-id", "wait-id", "wait-task", "client-wait", "client-wait-id"):
                tg.start_soon(party, kind)
        assert statuses == ["completed"] * 5
        lie_reads = [r for r in server.reads_of(task.id) if 10.0 <= r.sent < 16.0]
        assert len(lie_reads) == 1, _reads(server, task.id, 0)
