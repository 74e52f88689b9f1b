"""Callbacks that never come, reads that answer late, stale or with errors, and deadlines.

The how-to: "if it is more than `callback_grace` seconds (default 5) past the task's
predicted end, it reads the task itself"; a batch's "tasks whose callback is late are read
anyway". waiting.md: "a task is seen done by twice its duration at the latest"; "Read
errors are retried after 1 s"; "a task still running at its deadline (per kind, or the
`wait`'s timeout) is read one last time at the deadline and given up". `Tasks.wait`:
"timeout: seconds to wait at most".
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from evolink import Task, WaitTimeoutError
from evolink.testing import VirtualClock

from ._harness import app
from ._server import FakeEvolink, Fate, Read

pytestmark = pytest.mark.anyio

GRACE = 5.0
LATENCY = 0.2


@pytest.mark.parametrize("kind", ["wait-id", "wait-task"])
@pytest.mark.parametrize(("end", "estimate"), [(5.0, 5), (20.0, 20), (20.0, 30), (60.0, 60)])
async def test_a_lost_callback_costs_at_most_the_grace_past_the_predicted_end(
    kind: str, end: float, estimate: int
) -> None:
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=end, estimated_time=estimate), read_latency=LATENCY
    )
    async with app(server, grace=GRACE) as env:
        assert env.integration is not None
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        waiting = env.integration.wait(task.id if kind == "wait-id" else task)
        done, woke = await env.timed(waiting)
    assert done.status.value == "completed"
    predicted = max(end, estimate)
    assert end <= woke <= predicted + GRACE + 1.0, f"woke at {woke:.2f}"


async def test_a_lost_callback_for_a_task_far_past_its_estimate_is_still_read() -> None:
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=100.0, estimated_time=20), read_latency=LATENCY
    )
    async with app(server, grace=GRACE) as env:
        assert env.integration is not None
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        done, woke = await env.timed(env.integration.wait(task.id))
    assert done.status.value == "completed"
    assert woke <= 2 * 100.0 + GRACE, f"woke at {woke:.2f}"
    assert len(server.reads) <= 20, "a storm of reads"


async def test_a_batch_with_half_its_callbacks_lost_ends_every_task() -> None:
    durations = [4.0 + 3.0 * i for i in range(8)]
    server = FakeEvolink(
        VirtualClock(),
        fate=lambda _, body: Fate(
            duration=durations[int(body["prompt"].split()[-1])],
            estimated_time=int(durations[int(body["prompt"].split()[-1])]),
        ),
        read_latency=LATENCY,
    )
    async with app(server) as env:
        assert env.integration is not None
        ended: dict[int, float] = {}

        def on_create(task: Any) -> None:
            if int(task.body["prompt"].split()[-1]) % 2 == 0:  # the even ones call back
                env.post_at(task.ended_at + 0.05, lambda: server.final_body(task.id))

        server.on_create.append(on_create)
        batch = env.integration.batch(
            env.integration.start_batch(
                [f"a heron {i}" for i in range(8)],
                on_outcome=lambda o: ended.setdefault(o.index, env.now()),
            )
        )
        while not batch.finished:
            await env.clock.sleep(0.5)
        report = batch.report()
    assert [o.kind.value for o in report.outcomes] == ["completed"] * 8
    for index, at in ended.items():
        truth = server.task(server.id_of(f"a heron {index}"))
        assert truth.ended_at is not None
        if index % 2 == 0:
            assert at <= truth.ended_at + 0.05 + LATENCY + 0.3, (index, at)
        else:
            assert at <= truth.ended_at + (truth.ended_at - truth.created_at) + 1.0, (index, at)


async def test_a_stale_confirming_read_still_ends_the_wait_with_the_truth() -> None:
    """A lagging replica answers the reads of 15-25 s with the state of 3 s before."""
    server = FakeEvolink(
        VirtualClock(),
        fate=Fate(duration=20.0, estimated_time=60),
        read_latency=LATENCY,
        stale_by=lambda r: 3.0 if 15.0 <= r.sent <= 25.0 else 0.0,
    )
    async with app(server, grace=GRACE) as env:
        assert env.integration is not None
        env.genuine_callbacks(delay=0.05)
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        results: list[tuple[str, Any, float]] = []

        async def run(name: str, waiting: Any) -> None:
            outcome, at = await env.timed_outcome(waiting)
            results.append((name, outcome, at))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "wait by id", env.integration.wait(task.id))
            tg.start_soon(run, "client wait", env.client.tasks.wait(task))
    for name, outcome, at in results:
        assert isinstance(outcome, Task), (name, outcome)
        assert outcome.status.value == "completed", name
        assert at <= 60 + GRACE + 1.0, f"{name} woke at {at:.2f}"


async def test_a_confirming_read_that_fails_is_retried_promptly() -> None:
    server = FakeEvolink(
        VirtualClock(),
        fate=Fate(duration=20.0, estimated_time=60),
        read_latency=LATENCY,
        read_status=lambda r: 503 if 19.9 <= r.sent <= 20.3 else None,
    )
    async with app(server, grace=GRACE) as env:
        assert env.integration is not None
        env.genuine_callbacks(delay=0.05)
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        done, woke = await env.timed(env.integration.wait(task.id))
    assert done.status.value == "completed"
    failed = [r for r in server.reads if r.http_status == 503]
    assert failed, "the scenario did not fail the confirming read"
    assert woke <= 20.05 + 3.0, f"woke at {woke:.2f} after a failed confirming read"


@pytest.mark.parametrize("kind", ["wait-id", "client-wait-id"])
async def test_a_wait_by_id_gives_up_at_its_timeout_even_when_its_first_read_is_slow(
    kind: str,
) -> None:
    """timeout=10; the first read takes 8 s; the task never ends; a lie lands at 9 s."""
    server = FakeEvolink(VirtualClock(), fate=Fate(duration=None, estimated_time=60))

    def read_latency(read: Read) -> float:
        return 8.0 if read is server.reads[0] else 1.0

    server.read_latency = read_latency
    async with app(server, grace=GRACE) as env:
        assert env.integration is not None
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        env.post_at(9.0, lambda: server.lie(task.id, "completed"))
        called = env.now()
        waiting = (
            env.integration.wait(task.id, timeout=10)
            if kind == "wait-id"
            else env.client.tasks.wait(task.id, timeout=10)
        )
        outcome, at = await env.timed_outcome(waiting)
    assert isinstance(outcome, WaitTimeoutError), outcome
    # Read one last time at the deadline (1 s a read here), then given up.
    assert at <= called + 10 + 1.0 + 0.3, (
        f"timeout=10 called at {called:.2f} gave up at {at:.2f}; reads "
        f"{[(round(r.sent, 2), round(r.answered or -1, 2)) for r in server.reads]}"
    )


@pytest.mark.parametrize("end", [8.0, 9.5, 9.9])
async def test_a_callback_before_the_deadline_gives_the_completed_task(end: float) -> None:
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=end, estimated_time=60), read_latency=1.0
    )
    async with app(server, grace=GRACE) as env:
        assert env.integration is not None
        env.genuine_callbacks(delay=0.05)
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        results: list[tuple[str, Any]] = []

        async def run(name: str, waiting: Any) -> None:
            results.append((name, (await env.timed_outcome(waiting))[0]))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "wait(task)", env.integration.wait(task, timeout=10))
            tg.start_soon(run, "wait by id", env.integration.wait(task.id, timeout=10))
            tg.start_soon(run, "client wait", env.client.tasks.wait(task, timeout=10))
    for name, outcome in results:
        assert isinstance(outcome, Task), (name, outcome)
        assert outcome.status.value == "completed", name


async def test_a_callback_after_a_timed_out_wait_serves_the_next_wait_without_a_read() -> None:
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=12.0, estimated_time=60), read_latency=LATENCY
    )
    async with app(server, grace=GRACE) as env:
        assert env.integration is not None
        env.genuine_callbacks(delay=0.05)
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        first, _ = await env.timed_outcome(env.integration.wait(task.id, timeout=5))
        assert isinstance(first, WaitTimeoutError)
        assert first.task.status.value in ("pending", "processing")
        await env.sleep_until(14.0)
        reads_before = len(server.reads_of(task.id))
        done, at = await env.timed(env.integration.wait(task.id, timeout=5))
        assert done.status.value == "completed"
        assert at == pytest.approx(14.0)
        assert len(server.reads_of(task.id)) == reads_before
