"""Every HTTP request the SDK sends is counted once: its counts agree with a server log.

One transport sends every request and owns every retry, so a read failing again and
again is retried at one level only, and `BatchReport.requests` (creates and reads, each
retry included) equals what the simulator saw.
"""

from __future__ import annotations

import pytest

from evolink import AsyncEvolink, OutcomeKind, RetryPolicy
from evolink.testing import TEST_API_KEY, Faults, Simulator, VirtualClock

pytestmark = pytest.mark.anyio


def _client(sim: Simulator, clock: VirtualClock, **options: object) -> AsyncEvolink:
    return AsyncEvolink(
        api_key=TEST_API_KEY,
        base_url="https://sim.test",
        transport=sim.transport(),
        clock=clock,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("batch_reads", [True, False], ids=["batch-reads", "gets"])
async def test_every_read_failing_is_counted_as_the_server_saw_it(batch_reads):
    """Every read answers 5xx: the batch gives up on each task, and counts every request."""
    clock = VirtualClock()
    faults = Faults(read_errors=1.0, error_statuses=(500,))
    sim = Simulator(clock=clock, seed=3, durations=(2, 6), faults=faults)
    async with clock.running(), _client(sim, clock) as client:
        report = await client.images.generate_many(
            [f"fox {i}" for i in range(3)], batch_reads=batch_reads, max_in_flight=3
        )
    # Created, never read back: each task's outcome is unknown, and said so.
    assert [OutcomeKind.UNCERTAIN] * 3 == [o.kind for o in report.outcomes]
    assert len(sim.requests) == report.requests
    assert len(sim.requests) == client.requests_sent
    assert 3 == sim.count("POST", "/v1/images/generations")


async def test_creates_and_reads_under_faults_are_counted_as_the_server_saw_them():
    """5xx, 429s and lost answers on creates and reads: the counts still agree."""
    clock = VirtualClock()
    faults = Faults(create_errors=0.2, read_errors=0.2, rate_limit=0.1, lost_create_response=0.1)
    sim = Simulator(clock=clock, seed=5, durations=(2, 6), faults=faults, retry_after=1.0)
    async with (
        clock.running(),
        _client(sim, clock, retry_policy=RetryPolicy(max_retries=3, max_delay=2.0)) as client,
    ):
        report = await client.images.generate_many(
            [f"owl {i}" for i in range(40)], max_in_flight=10
        )
    assert 40 == len(report.outcomes)
    assert len(sim.requests) == report.requests == client.requests_sent


async def test_a_single_read_retries_at_one_level():
    """`tasks.get` against a server failing every read: 1 + max_retries requests."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1, faults=Faults(read_errors=1.0))
    async with clock.running(), _client(sim, clock, max_retries=2) as client:
        task = await client.images.generate("a fox")
        before = len(sim.requests)
        with pytest.raises(Exception):  # noqa: B017, PT011 - the typed 5xx, whichever drawn
            await client.tasks.get(task.id)
    assert 3 == len(sim.requests) - before
    assert len(sim.requests) == client.requests_sent
