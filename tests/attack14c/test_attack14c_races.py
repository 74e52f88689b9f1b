"""Waits by id, waits by Task and batches racing for the same tasks on a slow server.

waiting.md: one engine per client, shared by every wait; never two reads of one task in
flight at once; every wait ends in exactly one known outcome (here: the same terminal
task for every party).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from _server14c import HostileServer, no_estimate, run

from evolink import GenerationRequest, NotFoundError, Task
from evolink.testing import VirtualClock


def _slow(batch: str, latency: float) -> HostileServer:
    server = HostileServer(VirtualClock(), batch_mode=batch, read_latency=latency)
    server.duration_of = lambda _m: server.rng.uniform(4.0, 12.0)
    return server


def _same(tasks: list[Task]) -> None:
    first = tasks[0]
    for task in tasks:
        assert task.id == first.id
        assert task.status == first.status
        assert task.is_terminal
        assert list(task.results) == list(first.results)


@pytest.mark.parametrize("batch", ["on", "off"])
@pytest.mark.parametrize("latency", [0.3, 1.5, 4.0])
@pytest.mark.parametrize("adopt_by", ["task", "id"])
def test_waits_by_id_by_task_and_a_batch_race(batch: str, latency: float, adopt_by: str) -> None:
    server = _slow(batch, latency)

    async def main(client):  # type: ignore[no-untyped-def]
        tasks = []
        for _ in range(6):
            tasks.append(await client.images.generate("a bridge"))
        got: dict[str, list[Task]] = {t.id: [] for t in tasks}
        outcomes: list[Any] = []

        async def by_task(task: Task, after: float) -> None:
            await server.clock.sleep(after)
            got[task.id].append(await client.tasks.wait(task))

        async def by_id(task_id: str, after: float) -> None:
            await server.clock.sleep(after)
            got[task_id].append(await client.tasks.wait(task_id))

        async def batch_of(after: float) -> None:
            await server.clock.sleep(after)
            async with client.batch() as run_:
                for task in tasks:
                    await run_.adopt(
                        task if adopt_by == "task" else task.id,
                        GenerationRequest(prompt="a bridge"),
                    )
            outcomes.extend(run_.report().outcomes)

        async with anyio.create_task_group() as tg:
            for n, task in enumerate(tasks):
                for after in (0.0, 0.7 + n / 10, 3.1):
                    tg.start_soon(by_id, task.id, after)
                for after in (0.0, 1.9):
                    tg.start_soon(by_task, task, after)
            tg.start_soon(batch_of, 1.3)
        return tasks, got, outcomes

    tasks, got, outcomes = run(server, main)
    assert server.overlaps == []
    for task in tasks:
        assert len(got[task.id]) == 5
        _same(got[task.id])
    assert len(outcomes) == len(tasks)
    for outcome in outcomes:
        assert outcome.task is not None
        assert outcome.task.is_terminal
        _same([*got[outcome.task.id], outcome.task])


@pytest.mark.parametrize("batch", ["on", "off"])
def test_generate_many_raced_by_waits_by_id(batch: str) -> None:
    """Handlers waiting by id for the tasks a batch is creating, from the moment each is
    created."""
    server = _slow(batch, 1.0)
    server.estimate_of = no_estimate

    async def main(client):  # type: ignore[no-untyped-def]
        got: dict[str, list[Task]] = {}
        report: list[Any] = []

        async def one(task_id: str) -> None:
            got.setdefault(task_id, []).append(await client.tasks.wait(task_id))

        async with anyio.create_task_group() as tg:

            async def run_batch() -> None:
                report.append(await client.images.generate_many([f"p{i}" for i in range(16)]))

            tg.start_soon(run_batch)
            seen: set[str] = set()
            while not report:
                for task_id in list(server.tasks):
                    if task_id not in seen:
                        seen.add(task_id)
                        tg.start_soon(one, task_id)
                        tg.start_soon(one, task_id)
                await server.clock.sleep(0.05)
        return got, report[0]

    got, report = run(server, main)
    assert server.overlaps == []
    assert len(report.outcomes) == 16
    for outcome in report.outcomes:
        assert outcome.task is not None
        assert outcome.task.is_terminal
        _same([*got.get(outcome.task.id, []), outcome.task])


@pytest.mark.parametrize("batch", ["on", "off"])
def test_cancelled_handlers_do_not_break_other_waits(batch: str) -> None:
    server = _slow(batch, 2.0)

    async def main(client):  # type: ignore[no-untyped-def]
        fakes = [server.add(duration=6.0 + i) for i in range(10)]
        got: dict[str, list[Task]] = {}
        cancelled = []

        async def one(task_id: str, cancel_after: float | None) -> None:
            with anyio.CancelScope() as scope:
                if cancel_after is not None:

                    async def cancel() -> None:
                        await server.clock.sleep(cancel_after)
                        scope.cancel()

                    tg2.start_soon(cancel)
                got.setdefault(task_id, []).append(await client.tasks.wait(task_id))
            if scope.cancelled_caught:
                cancelled.append(task_id)

        async with anyio.create_task_group() as tg2:
            for n, fake in enumerate(fakes):
                # The first wait of each task is cancelled: during its first read (slow
                # server), while driving the engine, or just before the end.
                tg2.start_soon(one, fake.id, (0.5, 1.0, 3.0, 5.5, 0.01)[n % 5])
                tg2.start_soon(one, fake.id, None)
        # After the cancellations, a fresh wait on each task still works.
        again = []
        for fake in fakes:
            again.append(await client.tasks.wait(fake.id))
        return fakes, got, cancelled, again

    fakes, got, cancelled, again = run(server, main)
    assert server.overlaps == []
    assert len(cancelled) == len(fakes)
    for fake, task in zip(fakes, again, strict=False):
        assert len(got[fake.id]) == 1
        _same([*got[fake.id], task])
        assert task.status == "completed"


@pytest.mark.parametrize("batch", ["on", "off"])
def test_wait_by_id_of_unknown_task_raises_not_found(batch: str) -> None:
    server = _slow(batch, 0.5)

    async def main(client):  # type: ignore[no-untyped-def]
        fakes = [server.add(duration=5.0) for _ in range(8)]
        unknown = [f"task-unified-1767225600-unknow{n}x" for n in range(3)]
        errors: list[BaseException] = []
        got: list[Task] = []

        async def one(task_id: str) -> None:
            try:
                got.append(await client.tasks.wait(task_id))
            except NotFoundError as exc:
                errors.append(exc)

        with anyio.fail_after(60):  # real seconds: a hang fails, it does not hang
            async with anyio.create_task_group() as tg:
                for task_id in [*unknown, *(f.id for f in fakes), unknown[0]]:
                    tg.start_soon(one, task_id)
        return errors, got

    errors, got = run(server, main)
    assert len(errors) == 4
    assert len(got) == 8
    assert all(t.status == "completed" for t in got)


def test_wait_by_id_of_a_task_that_expires_meanwhile() -> None:
    """A task that disappears (404) while waited for ends the wait with an error, not a
    hang."""
    server = _slow("on", 0.2)

    async def main(client):  # type: ignore[no-untyped-def]
        fake = server.add(duration=30.0)
        outcome: list[object] = []

        async def one() -> None:
            try:
                outcome.append(await client.tasks.wait(fake.id))
            except Exception as exc:  # noqa: BLE001 - any known outcome
                outcome.append(exc)

        async def expire() -> None:
            await server.clock.sleep(10.0)
            del server.tasks[fake.id]

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(one)
                tg.start_soon(one)
                tg.start_soon(expire)
        return outcome

    outcome = run(server, main)
    assert len(outcome) == 2
    assert all(isinstance(o, NotFoundError) for o in outcome), outcome
