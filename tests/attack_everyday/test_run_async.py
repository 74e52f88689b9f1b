"""images.run (async), hooks that raise, and the docs' everyday promises on a virtual clock."""

from __future__ import annotations

import json
import sys

import httpx
import pytest
from _attack_helpers import API, KEY, TASK_ID, FakeAPI, task_json

import evolink
from evolink import AsyncEvolink, BatchReport, OutcomeKind
from evolink.testing import Faults, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


async def test_run_returns_a_completed_task_with_results():
    clock = VirtualClock()
    sim = Simulator(clock=clock)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            done = await client.images.run("a red fox in snow", size="1:1", n=2, timeout=300)
    assert done.is_success
    assert len(done.results) == 2
    assert done.credits_reserved == 5
    assert sim.count("POST", "/v1/images/generations") == 1


@pytest.mark.parametrize("fault", ["failure", "cancel"])
async def test_run_raises_task_failed_carrying_the_task(fault):
    clock = VirtualClock()
    faults = Faults(task_failure=1.0) if fault == "failure" else Faults(cancellation=1.0)
    sim = Simulator(clock=clock, faults=faults)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            with pytest.raises(evolink.TaskFailedError) as info:
                await client.images.run("a red fox in snow", timeout=300)
    task = info.value.task
    assert task.id in sim.tasks
    assert task.status.value == ("failed" if fault == "failure" else "cancelled")
    assert task.is_terminal
    assert not task.is_success
    assert "evolink.TaskFailedError" in repr(type(info.value))
    assert sim.count("POST", "/v1/images/generations") == 1


async def test_run_raises_wait_timeout_carrying_the_task_and_one_can_wait_on():
    clock = VirtualClock()
    sim = Simulator(clock=clock, durations=100)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            with pytest.raises(evolink.WaitTimeoutError) as info:
                await client.images.run("a red fox in snow", timeout=10)
            assert isinstance(info.value, TimeoutError)
            assert not info.value.task.is_terminal
            done = await client.tasks.wait(info.value.task)
    assert done.is_success
    assert sim.count("POST", "/v1/images/generations") == 1


async def test_run_with_timeout_zero_does_not_create_twice_or_hang():
    clock = VirtualClock()
    sim = Simulator(clock=clock, durations=5)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            with pytest.raises(evolink.WaitTimeoutError):
                await client.images.run("a red fox", timeout=0)
    assert sim.count("POST", "/v1/images/generations") == 1


async def test_run_task_completed_without_results_is_not_silently_ok():
    # A hostile server: `completed` with an empty `results`.
    api = FakeAPI()
    api.routes["POST", "/v1/images/generations"] = lambda _: httpx.Response(
        200, json=task_json("pending")
    )
    api.routes["GET", f"/v1/tasks/{TASK_ID}"] = lambda _: httpx.Response(
        200, json=task_json("completed", results=[])
    )
    clock = VirtualClock()
    async with AsyncEvolink(
        api_key=KEY, base_url=API, transport=api.transport(), clock=clock
    ) as client:
        async with clock.running():
            done = await client.images.run("a fox", timeout=60)
    # Whatever the SDK decides, it returns a terminal task and does not loop forever.
    assert done.is_terminal


@pytest.mark.parametrize("hook", ["on_progress", "on_outcome", "on_create", "on_created"])
async def test_a_raising_batch_hook_surfaces_the_users_exception(hook):
    clock = VirtualClock()
    sim = Simulator(clock=clock)

    class BoomError(Exception):
        pass

    def explode(*_: object) -> None:
        raise BoomError("from the callback")

    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            raised: BaseException | None = None
            try:
                await client.images.generate_many(["a", "b"], **{hook: explode})
            except BaseException as exc:  # noqa: BLE001
                raised = exc
            if isinstance(raised, BaseExceptionGroup):  # the user's error, perhaps grouped
                assert raised.split(BoomError)[1] is None, repr(raised)
            elif raised is not None:
                assert isinstance(raised, BoomError), repr(raised)
            # The client survives a hook that raised.
            await client.credits()


async def test_readme_json_round_trip_of_a_batch_report():
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=3, faults=Faults(task_failure=0.3))
    prompts = [f"a lighthouse at dusk, style {i}" for i in range(20)] + ["", "x" * 32001]
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            report = await client.images.generate_many(prompts, max_in_flight=32, max_credits=500)
    saved = report.to_json()
    assert BatchReport.from_dict(json.loads(saved)) == report
    assert BatchReport.from_dict(report.to_dict()) == report
    assert report.counts[OutcomeKind.REJECTED] == 2
    assert sum(report.counts.values()) == len(prompts)
    assert report.reserved == report.charged + report.released
    text = repr(report)
    assert text.startswith("BatchReport(outcomes=22,")
    assert len(text) < 400
    assert "lighthouse" not in text


async def test_repr_of_a_huge_report_stays_short():
    clock = VirtualClock()
    sim = Simulator(clock=clock, durations=(1, 2))
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            report = await client.images.generate_many(
                [f"p{i}" for i in range(300)], max_in_flight=100
            )
    assert len(repr(report)) < 400
    assert len(str(report)) < 400
    assert len(report.completed) == 300


async def test_max_credits_is_never_exceeded():
    clock = VirtualClock()
    sim = Simulator(clock=clock)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            report = await client.images.generate_many(
                [f"q{i}" for i in range(20)], max_in_flight=32, max_credits=10
            )
    assert report.reserved <= 10
    assert sim.ledger.reserved <= 10
    assert len(report.completed) == 4
    assert report.counts[OutcomeKind.SKIPPED] == 16
