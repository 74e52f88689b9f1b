"""Callbacks are unsigned: a lying one never decides an outcome; only reads do.

docs/explanation/waiting.md: "A callback ... is a hint, not a fact: callbacks are unsigned.
The engine makes the task due at once and reads it; only what that read says counts, for
every party waiting for the task." `Batch.feed`: "The update is confirmed by reading the
task before it counts." guarantees.md: "Each input of a batch gets exactly one `Outcome`".
"""

from __future__ import annotations

import random
from typing import Any

import anyio
import pytest

from evolink import OutcomeKind, Task, TaskFailedError
from evolink.testing import VirtualClock

from ._harness import PUBLIC, app, plain
from ._server import FakeEvolink, Fate

pytestmark = pytest.mark.anyio


async def _three_parties(env: Any, task: Task) -> list[tuple[str, Task | BaseException, float]]:
    results: list[tuple[str, Task | BaseException, float]] = []

    async def run(name: str, waiting: Any) -> None:
        outcome, at = await env.timed_outcome(waiting)
        results.append((name, outcome, at))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "wait by id", env.integration.wait(task.id))
        tg.start_soon(run, "wait(task)", env.integration.wait(task))
        tg.start_soon(run, "client wait", env.client.tasks.wait(task, raise_on_failure=True))
    return results


@pytest.mark.parametrize("lie_at", [0.02, 3.0, 19.99])
async def test_a_completed_lie_for_a_running_task_never_ends_a_wait(lie_at: float) -> None:
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=20.0, estimated_time=60), read_latency=0.2
    )
    async with app(server) as env:
        assert env.integration is not None
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url(), n=2
        )
        env.post_at(lie_at, lambda: server.lie(task.id, "completed"))
        env.post_at(lie_at + 0.01, lambda: server.lie(task.id, "completed"))
        env.post_at(20.05, lambda: server.final_body(task.id))
        results = await _three_parties(env, task)
        for name, outcome, at in results:
            assert isinstance(outcome, Task), (name, outcome)
            assert at >= 20.0, f"{name} ended at {at:.2f}, before the task did"
            assert outcome.status.value == "completed"
            assert list(outcome.results) == server.task(task.id).results(), name
            assert not any("evil.example" in url for url in outcome.results)


async def test_a_failed_lie_for_a_task_that_completes_is_not_believed() -> None:
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=10.0, estimated_time=60), read_latency=0.2
    )
    async with app(server) as env:
        assert env.integration is not None
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url()
        )
        # The task really ends at 10; the body of its callback says it failed.
        env.post_at(10.05, lambda: server.lie(task.id, "failed"))
        results = await _three_parties(env, task)
        for name, outcome, at in results:
            assert not isinstance(outcome, TaskFailedError), f"{name} raised {outcome!r}"
            assert isinstance(outcome, Task), (name, outcome)
            assert outcome.status.value == "completed", name
            assert outcome.error is None
            assert at <= 10.05 + 0.2 + 0.3, f"{name} woke at {at:.2f}"


async def test_a_true_status_with_forged_fields_gives_the_read_s_fields() -> None:
    """The status is true, but the results and the credits in the body are forged."""
    server = FakeEvolink(
        VirtualClock(), fate=Fate(duration=10.0, estimated_time=60), read_latency=0.2
    )
    async with app(server) as env:
        assert env.integration is not None
        task = await env.client.images.generate(
            "a lighthouse", callback_url=env.integration.callback_url(), n=2
        )

        def forged() -> dict[str, Any]:
            body = server.final_body(task.id)
            body["results"] = ["https://evil.example/phish.png"]
            body["usage"] = {"billing_rule": "per_call", "credits_reserved": 999.0}
            body["model"] = "evil-model"
            return body

        env.post_at(10.05, forged)
        results = await _three_parties(env, task)
        for name, outcome, _ in results:
            assert isinstance(outcome, Task), (name, outcome)
            assert list(outcome.results) == server.task(task.id).results(), name
            assert outcome.model == "gpt-image-2", name
            assert outcome.credits_reserved == 5, name


async def test_a_batch_fed_lies_ends_every_input_as_the_reads_say() -> None:
    fates = [
        Fate(duration=20.0),
        Fate(duration=20.0, final="failed"),
        Fate(duration=20.0, final="cancelled"),
        Fate(duration=20.0),
    ]
    server = FakeEvolink(
        VirtualClock(), fate=lambda _, body: fates[int(body["prompt"][-1])], read_latency=0.2
    )
    async with plain(server) as env:
        claimed: list[bool] = []
        async with env.client.batch(callback_url=f"{PUBLIC}/hooks", max_in_flight=8) as batch:

            async def liar() -> None:
                await env.sleep_until(5.0)
                ids = [server.id_of(f"a heron {i}") for i in range(4)]
                claimed.append(batch.feed(server.lie(ids[0], "completed")))
                claimed.append(batch.feed(Task.from_dict(server.lie(ids[1], "completed"))))
                claimed.append(batch.feed(server.lie(ids[2], "failed")))
                claimed.append(batch.feed(server.lie(ids[3], "cancelled")))
                await env.sleep_until(20.05)
                # Each genuine end, answered with the opposite.
                claimed.append(batch.feed(server.lie(ids[0], "failed")))
                claimed.append(batch.feed(server.lie(ids[1], "completed")))
                claimed.append(batch.feed(Task.from_dict(server.lie(ids[2], "completed"))))
                claimed.append(batch.feed(server.lie(ids[3], "failed")))

            env.tg.start_soon(liar)
            await batch.submit_all([f"a heron {i}" for i in range(4)])
        report = batch.report()
        kinds = [o.kind for o in report.outcomes]
        assert kinds == [
            OutcomeKind.COMPLETED,
            OutcomeKind.FAILED,
            OutcomeKind.CANCELLED,
            OutcomeKind.COMPLETED,
        ]
        for outcome in report.outcomes:
            assert outcome.task is not None
            assert outcome.task.id == server.id_of(f"a heron {outcome.index}")
            assert outcome.task.status.value == fates[outcome.index].final
            assert not any("evil.example" in url for url in outcome.task.results)
        assert claimed == [True] * 8, "feed() should claim the batch's own tasks"


async def test_feed_claims_only_the_batch_s_own_tasks() -> None:
    server = FakeEvolink(VirtualClock(), fate=Fate(duration=10.0), read_latency=0.2)
    async with plain(server) as env:
        other = await env.client.images.generate("not the batch's")
        async with env.client.batch(callback_url=f"{PUBLIC}/hooks") as batch:

            async def feed() -> None:
                await env.sleep_until(3.0)
                own = server.order[1]
                assert batch.feed(server.lie(own, "processing")) is True
                assert batch.feed(server.lie(other.id, "completed")) is False
                assert batch.feed({"id": "task-unified-0-nobody", "status": "completed"}) is False

            env.tg.start_soon(feed)
            await batch.submit_all(["a heron"])
        (outcome,) = batch.report().outcomes
        assert outcome.kind is OutcomeKind.COMPLETED
        assert outcome.task is not None
        assert outcome.task.id == server.order[1]


async def test_every_input_ends_once_under_callback_chaos() -> None:
    """24 inputs; callbacks genuine, duplicated, late, lost, lying and for strangers."""
    rng = random.Random(20261203)
    n = 24
    finals = [rng.choice(["completed", "completed", "failed", "cancelled"]) for _ in range(n)]
    durations = [rng.uniform(2.0, 25.0) for _ in range(n)]
    fates = [  # by the order the server makes the tasks in
        Fate(duration=d, final=f, estimated_time=int(d * rng.uniform(0.5, 2.5)) + 1)
        for d, f in zip(durations, finals, strict=True)
    ]
    server = FakeEvolink(
        VirtualClock(),
        fate=lambda i, _: fates[i],
        read_latency=lambda r: 0.1 + 0.05 * (len(r.ids) % 4),
        shuffle_batch=True,
    )
    async with app(server) as env:
        assert env.integration is not None
        seen: list[int] = []

        def on_create(task: Any) -> None:
            end = task.ended_at
            style = rng.choice(["genuine", "twice", "late", "lost", "lie-then-genuine"])
            if style == "lost":
                return
            if style == "lie-then-genuine":
                opposite = "failed" if task.fate.final == "completed" else "completed"
                env.post_at(
                    task.created_at + 0.5 * (end - task.created_at),
                    lambda: server.lie(task.id, opposite),
                )
            delay = rng.uniform(3.0, 9.0) if style == "late" else 0.05
            env.post_at(end + delay, lambda: server.final_body(task.id))
            if style == "twice":
                env.post_at(end + delay + rng.uniform(0, 2), lambda: server.final_body(task.id))
            stranger = f"task-unified-0-stranger{task.index}"
            env.post_at(end, {"id": stranger, "status": "completed"})

        server.on_create.append(on_create)
        batch = env.integration.batch(
            env.integration.start_batch(
                [f"a heron {i}" for i in range(n)],
                max_in_flight=8,
                on_outcome=lambda o: seen.append(o.index),
            )
        )
        waited: dict[str, str] = {}

        async def wait(task_id: str) -> None:
            waited[task_id] = (await env.integration.wait(task_id)).status.value

        while not batch.finished:
            for task in batch.created():
                if task.id not in waited:
                    waited[task.id] = "?"
                    env.tg.start_soon(wait, task.id)
            await env.clock.sleep(0.5)
        await env.clock.sleep(40.0)
        report = batch.report()
    assert sorted(seen) == list(range(n)), f"outcomes by index: {sorted(seen)}"
    assert [o.index for o in report.outcomes] == list(range(n))
    assert len(server.order) == n, "a task was created twice"
    for outcome in report.outcomes:
        assert outcome.task is not None
        truth = server.task(outcome.task.id)
        assert truth.body.get("prompt") == f"a heron {outcome.index}"
        assert outcome.kind.value == truth.fate.final, (outcome, truth.fate)
        assert outcome.task.status.value == truth.fate.final
        assert waited[truth.id] == truth.fate.final, (truth.id, waited[truth.id])
