"""Read budget of lone waits, the hurry of a batch's last tasks, and a task shared by a
batch and a `tasks.wait`. asyncio only where the runs are long (the suite's time)."""

from __future__ import annotations

import random

import anyio
import pytest
from _common14d import on_server, uniform

from evolink import OutcomeKind

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def _lone_waits(client, server, count):
    first = len(server.order)
    for _ in range(count):
        task = await client.images.generate("a heron")
        await client.tasks.wait(task)
    return server.order[first:]


async def test_lone_waits_with_gets_keep_to_the_read_budget():
    """A client that only ever calls `tasks.wait` (reads by GET) on a learned model must
    spend about 2.3 reads a task (2.55 with probes), not the no-budget price of batch
    reads. Measured: ~9 reads a task; after a 404 from /v1/tasks/batch: 2.55."""
    async with on_server(progress="none", estimate="missing", durations=uniform(5)) as (
        client,
        server,
        _clock,
    ):
        await client.images.generate_many(
            [f"warm {i}" for i in range(300)], max_in_flight=100, batch_reads=False
        )
        tasks = await _lone_waits(client, server, 20)
    assert server.batch_requests == 0
    reads = sum(len(t.reads) for t in tasks) / len(tasks)
    assert reads <= 3.0, reads


async def test_task_near_the_top_of_a_bounded_record_is_read_at_its_last_end():
    async with on_server(progress="none", estimate="missing", durations=uniform(7)) as (
        client,
        server,
        _clock,
    ):
        await client.images.generate_many(
            [f"warm {i}" for i in range(300)], max_in_flight=100, batch_reads=True
        )
        last_end = max(t.seen_done - t.created for t in server.order)
        server.durations = lambda _i: 5.97
        tasks = await _lone_waits(client, server, 4)
    seen = [t.seen_done - t.created for t in tasks]
    assert all(s <= last_end + 0.1 for s in seen), (last_end, seen)


async def test_hurried_last_task_is_seen_sooner_than_a_wait():
    """A batch of one (max_in_flight 10: its last tenth is that task) is read at the hurry
    price; the same durations waited for by `tasks.wait` are priced as always."""
    rng = random.Random(11)
    async with on_server(progress="none", estimate="missing", durations=uniform(5)) as (
        client,
        server,
        _clock,
    ):
        # Batch reads tried, found missing (404): waits are priced as GETs.
        await client.images.generate_many(
            [f"warm {i}" for i in range(300)], max_in_flight=100, batch_reads=True
        )
        hurried, waited = [], []
        for _ in range(16):
            duration = 2 + 4 * rng.random()
            server.durations = lambda _i, d=duration: d
            await client.images.generate_many(["h"], max_in_flight=10, batch_reads=False)
            hurried.append(server.order[-1])
            waited.extend(await _lone_waits(client, server, 1))

    def delay(tasks):
        return sum(t.seen_done - t.ends for t in tasks) / len(tasks)

    def reads(tasks):
        return sum(len(t.reads) for t in tasks) / len(tasks)

    assert delay(hurried) < 0.8 * delay(waited), (delay(hurried), delay(waited))
    assert reads(hurried) > reads(waited)


async def test_retried_last_task_is_hurried_and_ends_the_batch():
    """A retried failure is a new create (the hurry pauses); once it is made, it is the
    batch's last task and nothing more will come: it is read as the last few are."""
    async with on_server(progress="none", estimate="missing", durations=uniform(5)) as (
        client,
        server,
        clock,
    ):
        await client.images.generate_many(
            [f"warm {i}" for i in range(300)], max_in_flight=100, batch_reads=True
        )
        server.fail = lambda i: "service_error" if i == 300 else None
        server.durations = lambda _i: 4.0
        with anyio.fail_after(10):
            report = await client.images.generate_many(
                ["r"], max_in_flight=10, retry_failed=1, batch_reads=False
            )
        ended = clock.monotonic()
    assert [OutcomeKind.COMPLETED] == [o.kind for o in report.outcomes]
    assert report.resubmitted == 1
    assert server.creates == 302
    retried = server.order[-1]
    assert retried.max_in_flight == 1
    assert ended - retried.ends < 0.4, ended - retried.ends


@pytest.mark.parametrize("batch_endpoint", [False, True])
async def test_task_watched_by_batch_and_wait_is_read_once_per_read(batch_endpoint):
    async with on_server(
        progress="none",
        estimate="honest",
        durations=lambda _i: 5.0,
        latency=0.2,
        batch_endpoint=batch_endpoint,
    ) as (client, server, clock):
        got = {}

        async def waiter(task):
            got["task"] = await client.tasks.wait(task)
            got["at"] = clock.monotonic()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                report = await client.images.generate_many(
                    ["a", "b"],
                    max_in_flight=10,
                    on_created=lambda _i, task: tg.start_soon(waiter, task),
                )
    assert [OutcomeKind.COMPLETED] * 2 == [o.kind for o in report.outcomes]
    assert got["task"].status.value == "completed"
    for task in server.order:
        assert task.max_in_flight == 1
        done_reads = [r for r in task.reads if r.status == "completed"]
        assert len(done_reads) == 1, [(r.sent, r.status) for r in task.reads]


async def test_wait_outlives_a_batch_that_abandons_the_shared_task():
    async with on_server(progress="none", estimate="honest", durations=lambda _i: 8.0) as (
        client,
        server,
        clock,
    ):
        got = {}

        async def waiter(task):
            got["task"] = await client.tasks.wait(task)
            got["at"] = clock.monotonic()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                report = await client.images.generate_many(
                    ["a"],
                    max_in_flight=10,
                    task_deadline=3,
                    on_created=lambda _i, task: tg.start_soon(waiter, task),
                )
    assert [OutcomeKind.ABANDONED] == [o.kind for o in report.outcomes]
    assert got["task"].status.value == "completed"
    task = server.order[0]
    assert task.max_in_flight == 1
    assert got["at"] - task.ends < 8.0
