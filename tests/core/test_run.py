"""`client.images.run`: one call from a prompt to a completed task, or a typed error."""

from __future__ import annotations

import pytest

from evolink import AsyncEvolink, TaskFailedError, TaskStatus, WaitTimeoutError
from evolink.testing import Faults, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

KEY = "sk-evo-run-tests"


async def test_run_returns_the_completed_task():
    """run creates one task, waits, and returns it completed with its images."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            task = await client.images.run("a red fox in snow", size="1:1", n=2)

    assert TaskStatus.COMPLETED == task.status
    assert 2 == len(task.results)
    assert 1 == sim.count("POST", "/v1/images/generations")
    assert {"size": "1:1", "n": 2} == {k: sim.requests[0].body[k] for k in ("size", "n")}


@pytest.mark.parametrize(
    ("faults", "status"),
    [
        pytest.param(Faults(task_failure=1.0), TaskStatus.FAILED, id="failed"),
        pytest.param(Faults(cancellation=1.0), TaskStatus.CANCELLED, id="cancelled"),
    ],
)
async def test_run_raises_when_the_task_does_not_complete(faults: Faults, status: TaskStatus):
    """A failed or cancelled task raises TaskFailedError carrying it, never returns."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1, faults=faults)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            with pytest.raises(TaskFailedError) as caught:
                await client.images.run("a red fox in snow")

    assert status == caught.value.task.status


async def test_run_raises_wait_timeout_with_the_task():
    """Past `timeout` the WaitTimeoutError carries the task, and waiting on it can go on."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1, durations=100.0)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            with pytest.raises(WaitTimeoutError) as caught:
                await client.images.run("a red fox in snow", timeout=10)
            assert 10 == caught.value.timeout
            done = await client.tasks.wait(caught.value.task)

    assert done.is_success
    assert 1 == sim.count("POST", "/v1/images/generations")
