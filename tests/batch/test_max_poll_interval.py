"""`max_poll_interval`: the longest the waiting engine leaves a running task unread.

By default the engine reads each task where what it has learned says it ends. On a server
whose progress reports a steady share of the truth (`ShareProgress`), readings agree with
each other on an end too late, and a fresh client, with nothing to judge them by, sees its
first tasks late. With `max_poll_interval=1.0` no task is seen later than a 1 s loop would
see it, whatever the server's hints; the plan still reads sooner where it says so.
"""

from __future__ import annotations

import itertools
import math

import pytest

from evolink import AsyncEvolink, ConfigurationError, Evolink
from evolink.testing import (
    Estimates,
    Fixed,
    NoProgress,
    RecordedRequest,
    ShareProgress,
    Simulator,
    Uniform,
    VirtualClock,
)

pytestmark = pytest.mark.anyio

KEY = "sk-evo-max-poll-interval-tests"
PROMPTS = [f"a lighthouse, take {n}" for n in range(40)]


def lying_server(clock: VirtualClock) -> Simulator:
    """Progress that reports 40 % of the truth and no estimates: readings agree on an end
    2.5 times too late."""
    return Simulator(
        clock=clock,
        seed=5,
        durations=Uniform(20, 40),
        progress=ShareProgress(0.4),
        estimates=Estimates(missing=True),
    )


def reads_of(sim: Simulator, task_id: str) -> list[float]:
    """When the server answered a read of `task_id`: its GETs and the batch reads naming it."""

    def names(request: RecordedRequest) -> bool:
        if request.method == "GET":
            return request.path == f"/v1/tasks/{task_id}"
        return request.path == "/v1/tasks/batch" and task_id in request.body["task_ids"]

    return sorted(request.time for request in sim.requests if names(request))


def seen_late(sim: Simulator) -> list[float]:
    """For each task: how long after its end a read saw it done."""
    lateness = []
    for task in sim.tasks.values():
        end = task.created + task.duration
        lateness.append(min(t for t in reads_of(sim, task.id) if t >= end) - end)
    return lateness


def longest_gaps(sim: Simulator) -> list[float]:
    """For each task: the longest it went unread while it ran (from its create on)."""
    gaps = []
    for task in sim.tasks.values():
        end = task.created + task.duration
        times = [task.created, *(t for t in reads_of(sim, task.id) if t < end)]
        after = min(t for t in reads_of(sim, task.id) if t >= end)
        times.append(after)
        gaps.append(max(b - a for a, b in itertools.pairwise(times)))
    return gaps


async def run_batch(
    sim: Simulator, clock: VirtualClock, *, interval: float | None, batch_reads: bool
) -> None:
    async with AsyncEvolink(
        api_key=KEY, transport=sim.transport(), clock=clock, max_poll_interval=interval
    ) as client:
        async with clock.running():
            report = await client.images.generate_many(
                PROMPTS, max_in_flight=20, batch_reads=batch_reads
            )
    assert report.ok


@pytest.mark.parametrize("batch_reads", [False, True], ids=["gets", "batch-reads"])
async def test_lying_progress_is_seen_late_by_default(batch_reads: bool) -> None:
    """The control: on this server the engine's own plan sees some task more than a
    second after its end (so the tests below can fail)."""
    clock = VirtualClock()
    sim = lying_server(clock)
    await run_batch(sim, clock, interval=None, batch_reads=batch_reads)
    assert max(seen_late(sim)) > 2.0


@pytest.mark.parametrize("batch_reads", [False, True], ids=["gets", "batch-reads"])
async def test_every_task_seen_within_the_interval(batch_reads: bool) -> None:
    """With `max_poll_interval=1.0`, every task of the batch is read at least once a
    second while it runs, so each is seen done within a second of its end."""
    clock = VirtualClock()
    sim = lying_server(clock)
    await run_batch(sim, clock, interval=1.0, batch_reads=batch_reads)
    assert max(longest_gaps(sim)) <= 1.0 + 1e-6
    assert max(seen_late(sim)) <= 1.0 + 1e-6


async def test_batch_reads_held_to_the_interval_share_their_requests() -> None:
    """Held reads fall due on one grid of the interval: a batch request a tick carries
    every task it holds, not one request per task (40 tasks of 20-40 s in two waves:
    about 80 ticks, against some 1,200 reads)."""
    clock = VirtualClock()
    sim = lying_server(clock)
    await run_batch(sim, clock, interval=1.0, batch_reads=True)
    batch_requests = [r for r in sim.requests if r.path == "/v1/tasks/batch"]
    reads = sum(len(r.body["task_ids"]) for r in batch_requests)
    span = max(t.created + t.duration for t in sim.tasks.values())
    assert reads > 20 * len(PROMPTS)
    assert len(batch_requests) <= math.ceil(span) + 10


async def test_a_wait_on_a_task_that_shows_nothing_reads_once_an_interval() -> None:
    """A task of 100 s with neither progress nor estimate: by default read a share of its
    age apart (a few reads, the last seconds after its end); held to 5 s, read as the plan
    has it while that is sooner (1, 1.5, 2.25, ... s: 7 reads to 11 s), then every 5 s, no
    more (a ceiling on the gap, not a storm)."""
    lateness = {}
    reads = {}
    for interval in (None, 5.0):
        clock = VirtualClock()
        sim = Simulator(
            clock=clock,
            seed=2,
            durations=Fixed(100),
            progress=NoProgress(),
            estimates=Estimates(missing=True),
        )
        async with AsyncEvolink(
            api_key=KEY, transport=sim.transport(), clock=clock, max_poll_interval=interval
        ) as client:
            async with clock.running():
                task = await client.images.generate("a fox")
                assert (await client.tasks.wait(task)).is_success
        (task_id,) = sim.tasks
        lateness[interval] = seen_late(sim)[0]
        reads[interval] = len(reads_of(sim, task_id))
        if interval is not None:
            assert max(longest_gaps(sim)) <= interval + 1e-6
    assert lateness[None] > 5.0
    assert lateness[5.0] <= 5.0 + 1e-6
    assert reads[None] < reads[5.0] <= 7 + (100 - 11) / 5.0 + 1


async def test_an_interval_longer_than_the_plan_changes_nothing() -> None:
    """Where the plan reads sooner than the interval anyway, the reads are the plan's."""
    times = {}
    for interval in (None, 300.0):
        clock = VirtualClock()
        sim = Simulator(clock=clock, seed=11, durations=Uniform(4, 8))
        async with AsyncEvolink(
            api_key=KEY, transport=sim.transport(), clock=clock, max_poll_interval=interval
        ) as client:
            async with clock.running():
                report = await client.images.generate_many(PROMPTS[:10], max_in_flight=5)
        assert report.ok
        times[interval] = [r.time for r in sim.requests if r.method == "GET"]
    assert times[300.0] == times[None]


@pytest.mark.parametrize("bad", [0, 0.05, -1.0, math.nan, math.inf, True, "1"])
async def test_a_bad_interval_is_refused_before_any_request(bad: object) -> None:
    clock = VirtualClock()
    sim = Simulator(clock=clock)
    with pytest.raises(ConfigurationError, match="max_poll_interval"):
        AsyncEvolink(
            api_key=KEY,
            transport=sim.transport(),
            clock=clock,
            max_poll_interval=bad,  # type: ignore[arg-type]
        )
    with (
        Evolink(api_key=KEY, transport=sim.transport(), max_poll_interval=bad) as client,  # type: ignore[arg-type]
        pytest.raises(ConfigurationError, match="max_poll_interval"),
    ):
        client.images.generate("a fox")
    assert sim.requests == []


def test_the_blocking_client_passes_the_interval_on() -> None:
    """`Evolink(max_poll_interval=...)` is the async client's, made on first use."""
    sim = Simulator(durations=Fixed(0.05))
    with Evolink(api_key=KEY, transport=sim.transport(), max_poll_interval=0.5) as client:
        task = client.images.generate("a fox")
        assert client.tasks.wait(task).is_success
        assert client._async_client().max_poll_interval == 0.5
