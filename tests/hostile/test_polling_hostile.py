"""Promises 6-11 of the issue: impossible credits, hostile estimates and progress, unknown
statuses and server task ids used as URL paths. Everything runs on a virtual clock."""

from __future__ import annotations

import contextlib
import math

import anyio
import pytest
from _hostile_fake import ENTRIES, VALID_KINDS, FakeAPI, run_batch, timed_batch

from evolink import EvolinkError, OutcomeKind, TaskStatus, WaitTimeoutError
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio


# -- 6. impossible credits_reserved --------------------------------------------------------


@pytest.mark.parametrize("amount", [-2.5, math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("entry", ENTRIES)
async def test_impossible_credits_reserved_is_not_budget(entry, amount):
    """Promise 6: a negative, NaN or infinite reservation must not make room under
    max_credits=5: ten prompts must not all be created."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=50.0, estimated_time=50, credits_reserved=amount)
    prompts = [f"a paper boat, variation {i}" for i in range(10)]
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            report = await run_batch(client, entry, prompts, max_in_flight=10, max_credits=5)
    creates = fake.count("POST", "/v1/images/generations")
    assert creates < 10, f"credits_reserved={amount!r} let {creates} creates through a budget of 5"
    assert len(prompts) == len(report.outcomes)
    for total in (report.reserved, report.charged, report.released):
        assert total.is_finite()
        assert total >= 0


@pytest.mark.parametrize("amount", [-2.5, math.nan, math.inf])
async def test_impossible_credits_reserved_is_a_decode_problem_of_that_answer(amount):
    """Promise 6: an impossible amount is a decode problem of the create's answer, not a task
    with a negative or NaN reservation the budget would then count."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=5.0, credits_reserved=amount)
    async with fake.client(max_retries=0) as client, clock.running():
        try:
            task = await client.images.generate("a paper boat")
        except Exception:  # noqa: BLE001 - any typed refusal of the answer will do
            return
    reserved = task.usage.credits_reserved
    pytest.fail(f"credits_reserved={amount!r} was accepted as {reserved!r}")


# -- 7. a hostile estimated_time -----------------------------------------------------------


@pytest.mark.parametrize("estimate", [86400, 1e9, math.inf])
async def test_wait_reads_a_fast_task_despite_a_huge_estimate(estimate):
    """Promise 7: estimated_time 86400, 1e9 or Infinity; the task ends in 2 s; `wait` must
    see it within 60 virtual seconds."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=2.0, estimated_time=estimate)
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            task = await client.images.generate("a red fox in snow")
            start = clock.monotonic()
            with anyio.CancelScope() as scope:
                scope.deadline = anyio.current_time() + 15  # real-time guard
                done = await client.tasks.wait(task, timeout=4 * 3600)
            waited = clock.monotonic() - start
    assert TaskStatus.COMPLETED == done.status
    assert waited < 60, (
        f"estimated_time={estimate!r}: a 2 s task was first read after {waited:.0f} s"
    )


@pytest.mark.parametrize("estimate", [86400, 1e9, math.inf])
@pytest.mark.parametrize("entry", ENTRIES)
async def test_batch_reads_a_fast_task_despite_a_huge_estimate(entry, estimate):
    """Promise 7 through a batch: every 2 s task must be seen ended within 60 s."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=2.0, estimated_time=estimate)
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            report, delays = await timed_batch(
                client, clock, entry, ["a", "b", "c"], max_in_flight=4
            )
    assert all(OutcomeKind.COMPLETED is o.kind for o in report.outcomes), report.counts
    worst = max(delays.values())
    assert worst < 60, f"estimated_time={estimate!r}: a 2 s task was seen done after {worst:.0f} s"
    assert report.elapsed < 60 + 5


# -- 8. progress stuck low -----------------------------------------------------------------

STUCK = [20, 5, 1]
BOUND_60 = 1.25 * 60 + 5


@pytest.mark.parametrize("stuck", STUCK)
async def test_wait_with_progress_stuck_low(stuck):
    """Promise 8: a 60 s task whose progress says `stuck`% throughout must be seen done
    within 1.25x its duration plus a few seconds."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=60.0, estimated_time=60, progress=lambda _elapsed: stuck)
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            task = await client.images.generate("a slow painting")
            start = clock.monotonic()
            done = await client.tasks.wait(task)
            waited = clock.monotonic() - start
    assert TaskStatus.COMPLETED == done.status
    assert waited <= BOUND_60, (
        f"progress stuck at {stuck}%: a 60 s task was seen after {waited:.0f} s"
    )


@pytest.mark.parametrize("stuck", STUCK)
@pytest.mark.parametrize("entry", ENTRIES)
async def test_batch_with_progress_stuck_low(entry, stuck):
    """Promise 8 through a batch."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=60.0, estimated_time=60, progress=lambda _elapsed: stuck)
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            report, delays = await timed_batch(client, clock, entry, ["a", "b"], max_in_flight=4)
    assert all(OutcomeKind.COMPLETED is o.kind for o in report.outcomes)
    worst = max(delays.values())
    assert worst <= BOUND_60, f"progress stuck at {stuck}%: seen after {worst:.0f} s"


# -- 9. progress above 100 -----------------------------------------------------------------

# Progress over 100 while `processing`: held there, or still climbing (10 %/s, 1 %/s).
ABOVE_100 = {
    "held-101": lambda _elapsed: 101,
    "held-150": lambda _elapsed: 150,
    "held-1e6": lambda _elapsed: 10**6,
    "climbing-10/s": lambda elapsed: int(elapsed * 10),
    "climbing-1/s": lambda elapsed: int(elapsed),  # noqa: PLW0108 - reads as the others
}


@pytest.mark.parametrize("shape", list(ABOVE_100))
async def test_wait_with_progress_above_100_is_no_poll_storm(shape):
    """Promise 9: a task `processing` at progress > 100 until 290 s: under 100 reads."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=290.0, estimated_time=10, progress=ABOVE_100[shape])
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            task = await client.images.generate("an overachiever")
            done = await client.tasks.wait(task, timeout=300)
    reads = fake.reads_of(task.id)
    assert reads < 100, f"progress {shape}: {reads} reads of one task in 300 s"
    assert TaskStatus.COMPLETED == done.status


@pytest.mark.parametrize("shape", ["held-150", "climbing-10/s", "climbing-1/s"])
@pytest.mark.parametrize("entry", ENTRIES)
async def test_batch_with_progress_above_100_is_no_poll_storm(entry, shape):
    """Promise 9 through a batch (one task, so the reads are all of it)."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=290.0, estimated_time=10, progress=ABOVE_100[shape])
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            report = await run_batch(client, entry, ["an overachiever"], max_in_flight=1)
    reads = fake.reads_of(report.outcomes[0].task.id)
    assert reads < 100, f"progress {shape}: {reads} reads of one task in 300 s"


# -- 10. a task stuck in an unknown status -------------------------------------------------

DEADLINE = 120.0


@pytest.mark.parametrize("entry", ENTRIES)
async def test_unknown_status_ends_by_a_per_task_deadline(entry):
    """Promise 10: no per-task deadline is documented; this is written against
    `task_deadline=` (seconds) on generate_many/batch. A task stuck in "queued_upstream"
    must end by it with a clear outcome, the others complete, and the batch finishes."""
    clock = VirtualClock()
    fake = FakeAPI(
        clock,
        duration=5.0,
        durations={0: math.inf},
        statuses={0: "queued_upstream"},
    )
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            start = clock.monotonic()
            report = await run_batch(
                client, entry, ["stuck", "fine"], max_in_flight=4, task_deadline=DEADLINE
            )
            elapsed = clock.monotonic() - start
    # The server makes its first create the stuck one; two creates race, so find it by id.
    stuck, fine = sorted(
        report.outcomes, key=lambda o: o.task is None or o.task.id != fake.created_ids[0]
    )
    assert OutcomeKind.COMPLETED is fine.kind
    assert stuck.kind in VALID_KINDS - {OutcomeKind.COMPLETED}
    assert stuck.error_code, "the stuck task's outcome does not say why it ended"
    assert stuck.task is not None
    assert fake.created_ids[0] == stuck.task.id
    assert elapsed <= DEADLINE + 35
    assert fake.reads_of(stuck.task.id) < 60


async def test_wait_on_unknown_status_honours_its_timeout():
    """Promise 10, single task: `tasks.wait(timeout=)` (documented) ends a stuck task."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=math.inf, status_while_running="queued_upstream")
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            task = await client.images.generate("stuck")
            start = clock.monotonic()
            with pytest.raises(WaitTimeoutError):
                await client.tasks.wait(task, timeout=DEADLINE)
            elapsed = clock.monotonic() - start
    assert elapsed <= DEADLINE + 1
    assert fake.reads_of(task.id) < 60


# -- 11. server task ids used as URL paths -------------------------------------------------

HOSTILE_IDS = [
    "task-unified-1/../../credits",
    "task-unified-1/%2e%2e/%2e%2e/credits",
    "../../v1/credits",
    "task-unified-1?status=completed",
    "task-unified-1#fragment",
    "task-unified-1/../batch",
]


def _check_paths(fake: FakeAPI) -> None:
    for request in fake.requests:
        raw = request.raw_path
        if request.method == "POST":
            assert raw in {"/v1/images/generations", "/v1/tasks/batch"}, raw
            continue
        assert request.method == "GET", (request.method, raw)
        if raw in {"/v1/catalog/models", "/v1/catalog/pricing"}:
            continue  # a batch reads the catalog before its first create: no task id in it
        assert raw.startswith("/v1/tasks/"), f"a server task id sent a read to {raw}"
        segment = raw[len("/v1/tasks/") :]
        assert "/" not in segment, f"a server task id split the path: {raw}"
        assert not request.query, f"a server task id added a query: {raw}"
    assert not fake.foreign_reads, f"read a task the server never named: {fake.foreign_reads}"


@pytest.mark.parametrize("hostile_id", HOSTILE_IDS)
@pytest.mark.parametrize("entry", ENTRIES)
async def test_hostile_task_id_in_a_batch(entry, hostile_id):
    """Promise 11: a create answering a path-like id never sends a request outside
    /v1/tasks/..., and the input ends with a clear outcome."""
    clock = VirtualClock()
    fake = FakeAPI(
        clock,
        duration=3.0,
        batch_mode="404",
        ids=lambda i: hostile_id if i == 0 else f"task-unified-1767225600-ok{i}",
    )
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            report = await run_batch(client, entry, ["hostile", "fine"], max_in_flight=4)
    _check_paths(fake)
    hostile, fine = report.outcomes
    assert OutcomeKind.COMPLETED is fine.kind
    assert hostile.kind in VALID_KINDS
    assert hostile.kind is OutcomeKind.COMPLETED or hostile.error_code


@pytest.mark.parametrize("hostile_id", HOSTILE_IDS)
async def test_hostile_task_id_in_wait(hostile_id):
    """Promise 11 through `images.generate` + `tasks.wait`."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=3.0, ids=lambda _i: hostile_id)
    with anyio.fail_after(20):
        async with fake.client(max_retries=0) as client, clock.running():
            # A typed refusal (an EvolinkError) is a fine ending; anything else escapes.
            with contextlib.suppress(EvolinkError):
                task = await client.images.generate("hostile")
                await client.tasks.wait(task, timeout=60)
    _check_paths(fake)
