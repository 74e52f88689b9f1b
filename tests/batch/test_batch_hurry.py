"""A batch with nothing left to create reads its last few tasks at a lower price of reads.

The batch ends when its last task is seen done: there, a second of delay costs the whole
batch a second, where before it cost one slot's share of one.
"""

from __future__ import annotations

import pytest

from evolink import AsyncEvolink
from evolink.testing import Estimates, Fixed, NoProgress, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

KEY = "sk-evo-batch-hurry-tests"


def blind_server(clock: VirtualClock) -> Simulator:
    """Neither progress nor estimates: reads come a share of the task's age apart."""
    return Simulator(
        clock=clock,
        seed=8,
        durations=Fixed(100),
        progress=NoProgress(),
        estimates=Estimates(missing=True),
    )


def seen_late(sim: Simulator) -> list[float]:
    """For each task in creation order: how long after its end a read saw it done."""
    lateness = []
    for task in sorted(sim.tasks.values(), key=lambda task: task.created):
        end = task.created + task.duration
        reads = [
            request.time
            for request in sim.requests
            if request.method == "GET" and request.path == f"/v1/tasks/{task.id}"
        ]
        lateness.append(min(time for time in reads if time >= end) - end)
    return lateness


async def test_the_last_task_of_a_batch_is_read_sooner_than_those_before():
    """One task in flight at a time: the first two leave slots to refill and are read
    half their age apart; the last, with nothing left to create, a tenth."""
    clock = VirtualClock()
    sim = blind_server(clock)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            report = await client.images.generate_many(
                ["a fox", "a hare", "a heron"], max_in_flight=1, batch_reads=False
            )

    assert report.ok
    first, second, last = seen_late(sim)
    # Reads at 1, 1.5, 2.25, ... s of age: the one after 100 s comes at about 130 s.
    assert first > 20
    assert second > 20
    # Reads at 1.1x the age apart: the one after 100 s comes within 10 s.
    assert last <= 10.5


async def test_a_wait_alone_is_not_hurried():
    """`tasks.wait` has no slots to refill either way: it reads at its usual price (batch
    reads here, a fifth of its age apart: the read after 100 s comes more than 10 s on)."""
    clock = VirtualClock()
    sim = blind_server(clock)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            task = await client.images.generate("a fox")
            assert (await client.tasks.wait(task)).is_success

    assert seen_late(sim)[0] > 10.5
