"""One waiting engine per client: every wait and batch shares its reads and what it learns."""

from __future__ import annotations

import anyio
import httpx
import pytest

from evolink import AsyncEvolink, ConfigurationError, TaskStatus
from evolink._engine import engine_of
from evolink.testing import Simulator, Uniform, VirtualClock

pytestmark = pytest.mark.anyio

KEY = "sk-evo-shared-engine-tests"


def reads(sim: Simulator) -> int:
    """Read requests the server answered: GETs of one task and batch reads."""
    return sim.count("GET", "/v1/tasks/task-") + sim.count("POST", "/v1/tasks/batch")


async def test_a_thousand_concurrent_waits_share_batch_reads():
    """1,000 `tasks.wait` at once on one client cost at most 0.3 read requests per task."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=3, durations=Uniform(2, 6), max_concurrent_tasks=2000)
    done: list[TaskStatus] = []
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():

            async def handler(index: int) -> None:
                task = await client.images.generate(f"a fox, take {index}")
                done.append((await client.tasks.wait(task)).status)

            async with anyio.create_task_group() as tg:
                for index in range(1000):
                    tg.start_soon(handler, index)

    assert [TaskStatus.COMPLETED] * 1000 == done
    # Batch reads throughout, but for a task left watched alone at the very end, which is
    # read by GET as any lone wait is (waiting.md): on a loaded machine the last task may
    # outlive the others' reads. Never two tasks by GET.
    got = {r.path for r in sim.requests if r.method == "GET" and r.path.startswith("/v1/tasks/")}
    assert len(got) <= 1, got
    assert reads(sim) / 1000 <= 0.3


async def test_a_wait_and_a_batch_on_one_task_read_it_together():
    """A task waited for by `tasks.wait` while a batch watches it is read once per read."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=4, durations=Uniform(4, 4.5))
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running(), client.batch() as batch:
            await batch.submit("a fox")
            while not batch.created():
                await clock.sleep(0.01)
            task = batch.created()[0]
            waited = await client.tasks.wait(task)

    assert waited.is_success
    assert batch.report().ok
    # Both parties saw the same reads: the engine never read the task twice at once.
    assert batch.reads == engine_of(client).watcher.reads


async def test_what_one_wait_learns_serves_the_next():
    """The engine keeps a model's record across waits: later waits read on it."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=5, durations=Uniform(2, 6))
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            for index in range(20):
                task = await client.images.generate(f"a fox, take {index}")
                await client.tasks.wait(task)
        timing = engine_of(client).timings.for_model(task.model)

    assert 20 == timing.ended


async def test_waits_in_line_for_the_reads_survive_those_that_leave():
    """Waits that leave early (cancelled in line, or while driving the reads) hand the reads
    on: every wait left still sees its task end."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=6, durations=Uniform(2, 6))
    done: list[str] = []
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            tasks = [await client.images.generate(f"a fox, take {i}") for i in range(40)]

            async def wait(index: int, scope: anyio.CancelScope) -> None:
                with scope:
                    done.append((await client.tasks.wait(tasks[index])).id)

            scopes = [anyio.CancelScope() for _ in tasks]
            async with anyio.create_task_group() as tg:
                for index, scope in enumerate(scopes):
                    tg.start_soon(wait, index, scope)
                await clock.sleep(0.5)
                # The first wait drives the reads, the next are first in line: the driver
                # leaving wakes the next, which is leaving too.
                for scope in scopes[:3] + scopes[3::3]:
                    scope.cancel()

    left = {task.id for index, task in enumerate(tasks) if index >= 3 and index % 3}
    assert left == set(done)
    assert not engine_of(client).watcher.watches(tasks[0].id)


async def test_waits_by_id_share_their_first_read():
    """Handlers holding only task ids: their first reads go out together, in batch reads,
    and a wait whose task is already watched reads nothing of its own."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=5, durations=Uniform(2, 6), max_concurrent_tasks=500)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            ids = [(await client.images.generate(f"a heron, {i}")).id for i in range(200)]
            done: list[TaskStatus] = []

            async def handler(task_id: str) -> None:
                done.append((await client.tasks.wait(task_id)).status)

            async with anyio.create_task_group() as tg:
                for task_id in ids:
                    tg.start_soon(handler, task_id)

    assert [TaskStatus.COMPLETED] * 200 == done
    assert 0 == sim.count("GET", "/v1/tasks/task-")
    assert reads(sim) / 200 <= 0.3


async def test_a_wait_by_id_cancelled_mid_read_leaves_the_others_reading():
    """The wait reading the first reads for all leaves (cancelled) while its batch read is
    out: another takes over, and every other wait ends with its task."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=6, durations=Uniform(2, 3))
    inner = sim.transport()

    class SlowBatchReads(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/v1/tasks/batch":
                await clock.sleep(1.0)
            return await inner.handle_async_request(request)

    async with AsyncEvolink(api_key=KEY, transport=SlowBatchReads(), clock=clock) as client:
        async with clock.running():
            ids = [(await client.images.generate(f"a wren, {i}")).id for i in range(10)]
            ended: dict[str, TaskStatus] = {}

            async def handler(task_id: str) -> None:
                ended[task_id] = (await client.tasks.wait(task_id)).status

            first = anyio.CancelScope()

            async def first_handler() -> None:
                with first:
                    await handler(ids[0])

            with anyio.fail_after(30):  # real seconds: a wait left behind would hang
                async with anyio.create_task_group() as tg:
                    tg.start_soon(first_handler)  # it reads the first reads for all
                    for task_id in ids[1:]:
                        tg.start_soon(handler, task_id)
                    await clock.sleep(0.5)  # its batch read is out
                    first.cancel()

    assert ids[0] not in ended
    assert dict.fromkeys(ids[1:], TaskStatus.COMPLETED) == ended


@pytest.mark.parametrize("timeout", [None, 600.0])
async def test_closing_the_client_ends_its_waits_with_an_error(timeout):
    """Waits still running when the client is closed end at once with the error their
    next read met (the client is closed), not after their timeout, nor never."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=7, durations=Uniform(50, 60))
    errors: list[BaseException] = []
    client = AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock)
    async with clock.running():
        tasks = [await client.images.generate(f"a fox, take {index}") for index in range(3)]

        async def wait(task) -> None:
            try:
                await client.tasks.wait(task, timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - the test looks at what it was
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for task in tasks:
                tg.start_soon(wait, task)
            await clock.sleep(5)
            await client.aclose()
        ended = clock.monotonic()

    assert 3 == len(errors)
    assert all(isinstance(error, ConfigurationError) for error in errors), errors
    # Read again within seconds of the close (the wait's plan), not at the tasks' ends.
    assert ended < 40
