"""A genuine callback wakes whoever waits, promptly, however it races the waits' own reads.

docs/explanation/waiting.md, "Callbacks": the engine makes the task due at once and reads
it; a callback may overtake the answer of a wait's first read, or come before anyone
watches the task, and the first party to watch it then reads it at once "instead of at its
next planned read (the predicted end from a stale answer, then the grace: seconds)". The
how-to: `wait` "returns when the confirmed callback arrives". Every scenario's tasks have
`estimated_time` 60, so a wait that missed the callback would wake tens of seconds late.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from evolink.testing import VirtualClock

from ._harness import app
from ._races import MODES, SLACK, race
from ._server import FakeEvolink, Fate, Read

pytestmark = pytest.mark.anyio

# Ends spread over the first read, the create's answer and just after: the task ending,
# and its callback landing, before, during and after each of them.
EARLY_ENDS = [0.001, 0.03, 0.06, 0.12, 0.2, 0.28, 0.33, 0.4, 0.55, 0.75, 1.1, 2.5]


@pytest.mark.parametrize("mode", MODES)
async def test_a_callback_at_any_moment_of_the_start_wakes_the_party_promptly(mode: str) -> None:
    late = []
    for end in EARLY_ENDS:
        result = await race(mode, end=end)
        assert result.status == "completed", str(result)
        if result.late:
            late.append(str(result))
    assert not late, "woke late after a genuine callback:\n" + "\n".join(late)


@pytest.mark.parametrize("mode", ["wait-id", "wait-task", "client-wait", "feed"])
async def test_a_callback_before_the_create_answers_is_not_lost(mode: str) -> None:
    """The create's answer is slow (1 s): the task ends and calls back before the id is known."""
    late = []
    for end in [0.001, 0.3, 0.7, 0.95]:
        result = await race(mode, end=end, create_latency=1.0, latency=0.2)
        assert result.status == "completed", str(result)
        if result.late:
            late.append(str(result))
    assert not late, "woke late after a callback that overtook the create:\n" + "\n".join(late)


@pytest.mark.parametrize("mode", ["wait-id", "client-wait-id"])
async def test_a_callback_overtaking_a_slow_first_read_wakes_right_after_that_read(
    mode: str,
) -> None:
    """The first read is out for 2 s; the task ends and calls back while it is out."""
    late = []
    for end in [0.01, 0.3, 0.9, 1.5, 1.95]:
        result = await race(mode, end=end, first_latency=2.0, latency=0.2)
        assert result.status == "completed", str(result)
        if result.late:
            late.append(str(result))
    assert not late, "woke late after a callback overtaking the first read:\n" + "\n".join(late)


async def _race_planned_read(mode: str, nth: int) -> tuple[float, float, float, list[Any]]:
    """The task ends while the party's `nth` read of it is in flight, and calls back then.

    Returns (the read's answer, the callback's arrival, when the party woke, the reads).
    """
    server = FakeEvolink(VirtualClock(), fate=Fate(duration=None, estimated_time=60))
    marks: dict[str, float] = {}
    async with app(server) as env:
        assert env.integration is not None
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        latency = 0.4

        def read_latency(read: Read) -> float:
            if task.id in read.ids and len(server.reads_of(task.id)) == nth and not marks:
                marks["answer"] = read.sent + latency

                async def end_and_call_back() -> None:
                    await env.sleep_until(read.sent + 0.1)
                    server.end_now(task.id)
                    await env.sleep_until(read.sent + 0.15)
                    marks["callback"] = env.now()
                    await env.post(server.final_body(task.id))

                env.tg.start_soon(end_and_call_back)
            return latency

        server.read_latency = read_latency
        waits = {
            "wait-id": lambda: env.integration.wait(task.id),
            "wait-task": lambda: env.integration.wait(task),
            "client-wait": lambda: env.client.tasks.wait(task),
        }
        done, woke = await env.timed(waits[mode]())
        assert done.status.value == "completed"
        reads = [(round(r.sent, 2), r.statuses.get(task.id)) for r in server.reads_of(task.id)]
        return marks["answer"], marks["callback"], woke, reads


@pytest.mark.parametrize("mode", ["wait-id", "wait-task", "client-wait"])
async def test_a_callback_landing_while_a_planned_read_is_out_wakes_after_one_more_read(
    mode: str,
) -> None:
    """Race the 1st, 2nd and 3rd read: the read out says "running", the callback "done"."""
    late = []
    for nth in (1, 2, 3):
        answer, callback, woke, reads = await _race_planned_read(mode, nth)
        if woke > answer + 0.4 + SLACK:
            late.append(
                f"read {nth}: answered {answer:.2f}, callback {callback:.2f}, "
                f"woke {woke:.2f}; reads {reads}"
            )
    assert not late, "\n".join(late)


async def test_thirty_waits_woken_by_thirty_simultaneous_callbacks() -> None:
    server = FakeEvolink(VirtualClock(), fate=Fate(duration=None, estimated_time=60))
    async with app(server) as env:
        assert env.integration is not None
        tasks = [
            await env.client.images.generate(
                f"a gull {i}", callback_url=env.integration.callback_url()
            )
            for i in range(30)
        ]
        woke: dict[str, float] = {}

        async def wait(task_id: str) -> None:
            done, woke[task_id] = await env.timed(env.integration.wait(task_id))
            assert done.status.value == "completed"

        async with anyio.create_task_group() as tg:
            for task in tasks:
                tg.start_soon(wait, task.id)
            await env.sleep_until(20.0)
            for task in tasks:
                server.end_now(task.id)
            await env.sleep_until(20.02)
            for task in reversed(tasks):  # out of order, all at once
                await env.post(server.final_body(task.id))
        latest = max(woke.values())
        assert latest <= 20.02 + 0.05 + SLACK, f"the last wait woke at {latest:.2f}"
        reads_after = {t.id: len(server.reads_of(t.id, since=20.0)) for t in tasks}
        assert set(reads_after.values()) == {1}, (
            f"reads of each task after the callbacks: {reads_after}"
        )


async def test_a_callback_during_a_shared_batch_read_wakes_the_batch_and_the_waits() -> None:
    """Eight tasks of a background batch, read together; one ends while such a read is out."""
    server = FakeEvolink(VirtualClock(), fate=Fate(duration=None, estimated_time=60))
    marks: dict[str, Any] = {}
    async with app(server) as env:
        assert env.integration is not None
        outcomes: dict[int, float] = {}
        batch_id = env.integration.start_batch(
            [f"a heron {i}" for i in range(8)],
            on_outcome=lambda o: outcomes.setdefault(o.index, env.now()),
        )
        batch = env.integration.batch(batch_id)

        def read_latency(read: Read) -> float:
            if read.sent > 5 and len(read.ids) >= 2 and not marks:
                victim = read.ids[-1]
                marks.update(victim=victim, answer=read.sent + 0.5)

                async def end_and_call_back() -> None:
                    await env.sleep_until(read.sent + 0.1)
                    server.end_now(victim)
                    await env.sleep_until(read.sent + 0.12)
                    await env.post(server.final_body(victim))

                env.tg.start_soon(end_and_call_back)
            return 0.5

        server.read_latency = read_latency
        await env.sleep_until(1.0)
        waited: dict[str, float] = {}

        async def wait(task_id: str) -> None:
            _, waited[task_id] = await env.timed(env.integration.wait(task_id))

        for task in batch.created():
            env.tg.start_soon(wait, task.id)
        while "victim" not in marks or marks["victim"] not in waited:
            await env.clock.sleep(0.1)
            assert env.now() < 200, "the shared batch read never raced a callback"
        victim = marks["victim"]
        bound = marks["answer"] + 0.5 + SLACK
        assert waited[victim] <= bound, (waited[victim], bound)
        index = int(server.task(victim).body["prompt"].split()[-1])
        assert outcomes.get(index, float("inf")) <= bound, (outcomes, bound)
        for task_id in server.order:
            if task_id != victim:
                server.end_now(task_id)
                await env.post(server.final_body(task_id))
        while not batch.finished:
            await env.clock.sleep(0.1)


async def test_cancelling_the_wait_that_drives_the_reads_strands_no_one() -> None:
    """A request handler's wait is cancelled (the client hung up) while its read is out."""
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=20.0, estimated_time=60), read_latency=0.5
    )
    async with app(server) as env:
        assert env.integration is not None
        env.genuine_callbacks(delay=0.05)
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        woke: dict[str, Any] = {}
        scopes: list[anyio.CancelScope] = []

        async def first() -> None:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                await env.integration.wait(task.id)
            woke["first"] = "cancelled"

        async def other(name: str, make: Any) -> None:
            done, at = await env.timed(make())
            woke[name] = (done.status.value, at)

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await env.sleep_until(0.01)
            tg.start_soon(other, "by id", lambda: env.integration.wait(task.id))
            tg.start_soon(other, "by task", lambda: env.integration.wait(task))
            tg.start_soon(other, "client", lambda: env.client.tasks.wait(task))
            await env.sleep_until(20.06)  # the confirming read is out
            scopes[0].cancel()
        assert woke["first"] == "cancelled"
        for name in ("by id", "by task", "client"):
            status, at = woke[name]
            assert status == "completed"
            assert at <= 20.05 + 2 * 0.5 + SLACK, f"{name} woke at {at:.2f}"
