"""Promises 1-3 of the issue: a refused batch read, a duplicated task id, a batch cut short."""

from __future__ import annotations

import anyio
import pytest
from _hostile_fake import ENTRIES, VALID_KINDS, FakeAPI, result_url, run_batch

from evolink import OutcomeKind
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

PROMPTS = [f"a lighthouse at dusk, style {i}" for i in range(6)]
CONTROLS = ["ok", "404"]  # well-behaved and documented answers: these pass today
REFUSALS = [401, 403, 400, 422, "envelope", "dict", "nonjson"]


# -- 1. the batch-read endpoint refusing ---------------------------------------------------


@pytest.mark.parametrize("refusal", CONTROLS + REFUSALS)
@pytest.mark.parametrize("entry", ENTRIES)
async def test_refused_batch_read_still_collects_every_task(entry, refusal):
    """Promise 1: a refusing POST /v1/tasks/batch falls back to GETs, every task collected."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=3.0, estimated_time=10, batch_mode=refusal)
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            report = await run_batch(client, entry, PROMPTS, max_in_flight=8)
    kinds = [o.kind for o in report.outcomes]
    assert [OutcomeKind.COMPLETED] * len(PROMPTS) == kinds, (
        f"batch endpoint answering {refusal!r} stranded tasks: {kinds}"
    )
    for outcome in report.outcomes:
        assert [result_url(outcome.task.id)] == list(outcome.results)
    assert sorted(fake.created_ids) == sorted(o.task.id for o in report.outcomes)


@pytest.mark.parametrize("refusal", REFUSALS)
async def test_refused_batch_read_is_not_retried_for_the_clients_lifetime(refusal):
    """Promise 1: once refused, the batch endpoint is never asked again by that client."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=3.0, estimated_time=10, batch_mode=refusal)
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            first = await client.images.generate_many(PROMPTS, max_in_flight=8)
            async with client.batch(max_in_flight=8) as batch:
                await batch.submit_all(PROMPTS)
            second = batch.report()
            third = await client.images.generate_many(PROMPTS[:3], max_in_flight=8)
    assert fake.count("POST", "/v1/tasks/batch") <= 1, (
        f"batch endpoint answering {refusal!r} was asked "
        f"{fake.count('POST', '/v1/tasks/batch')} times by one client"
    )
    for report in (first, second, third):
        assert all(o.kind is OutcomeKind.COMPLETED for o in report.outcomes)


# -- 2. two inputs naming one task ---------------------------------------------------------


def _duplicate_ids(index: int) -> str:
    # The first two creates answer the same task id; the rest are distinct.
    return "task-unified-1767225600-dupdup" if index < 2 else f"task-unified-1767225600-u{index}"


@pytest.mark.parametrize("entry", ENTRIES)
async def test_two_inputs_naming_one_task_both_end(entry):
    """Promise 2: a server answering two creates with one id; every input gets an outcome."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=3.0, ids=_duplicate_ids)
    prompts = PROMPTS[:4]
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            report = await run_batch(client, entry, prompts, max_in_flight=8)
    assert len(prompts) == len(report.outcomes)
    assert list(range(len(prompts))) == [o.index for o in report.outcomes]
    assert all(o.kind in VALID_KINDS for o in report.outcomes)
    assert len(prompts) == sum(report.counts.values())
    # The distinct tasks completed as usual.
    for outcome in report.outcomes[2:]:
        assert OutcomeKind.COMPLETED is outcome.kind


@pytest.mark.parametrize("entry", ENTRIES)
async def test_two_inputs_naming_one_task_with_budget(entry):
    """Promise 2 under a budget and tight in-flight limit: the batch must still finish."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=3.0, ids=_duplicate_ids)
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            report = await run_batch(client, entry, PROMPTS, max_in_flight=2, max_credits=100)
    assert list(range(len(PROMPTS))) == [o.index for o in report.outcomes]
    assert len(PROMPTS) == sum(report.counts.values())


# -- 3. a batch cut short ------------------------------------------------------------------


def _hanging_creates_fake(clock: VirtualClock) -> FakeAPI:
    # Three creates answer at once; every later create stays in flight "forever".
    return FakeAPI(
        clock,
        duration=10_000.0,
        estimated_time=10_000,
        slow_creates=dict.fromkeys(range(3, 50), 1e9),
    )


async def _cut_short_after_creates(clock, fake, body):
    """Run `body` and cancel it once three creates answered and more are in flight."""
    async with anyio.create_task_group() as tg:

        async def cancel_when_ready():
            while fake.creates < 5:
                await clock.sleep(0.01)
            await clock.sleep(1.0)
            tg.cancel_scope.cancel()

        tg.start_soon(cancel_when_ready)
        await body()
        tg.cancel_scope.cancel()


async def test_cancelled_client_batch_keeps_every_created_task_reachable():
    """Promise 3 (documented): leaving `client.batch()` on cancellation abandons the running
    tasks, and `batch.report()` carries each one (and the key of each create in flight)."""
    clock = VirtualClock()
    fake = _hanging_creates_fake(clock)
    keys = []
    holder = {}

    async def body():
        async with client.batch(
            max_in_flight=8, on_create=lambda i, r, key: keys.append(key)
        ) as batch:
            holder["batch"] = batch
            await batch.submit_all(PROMPTS)

    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            await _cut_short_after_creates(clock, fake, body)
    assert len(fake.created_ids) == 3
    report = holder["batch"].report()
    reachable = {o.task.id for o in report.outcomes if o.task is not None}
    assert set(fake.created_ids) <= reachable, "a task created before the cancel is lost"
    in_flight_keys = [
        r.headers["idempotency-key"] for r in fake.requests if r.path == "/v1/images/generations"
    ][3:]
    recorded = {o.idempotency_key for o in report.outcomes}
    assert set(in_flight_keys) <= recorded, "a create in flight at the cancel lost its key"


async def test_generate_many_cut_short_hands_every_created_task_to_on_created():
    """Promise 3 via `generate_many`: the only documented handle is the `on_created` and
    `on_create` hooks; after the cancel every created task id and in-flight key is known."""
    clock = VirtualClock()
    fake = _hanging_creates_fake(clock)
    created = {}
    keys = {}

    async def body():
        await client.images.generate_many(
            PROMPTS,
            max_in_flight=8,
            on_create=lambda i, r, key: keys.__setitem__(i, key),
            on_created=lambda i, task: created.__setitem__(i, task.id),
        )

    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            await _cut_short_after_creates(clock, fake, body)
    assert set(fake.created_ids) <= set(created.values())
    sent_keys = {
        r.headers["idempotency-key"] for r in fake.requests if r.path == "/v1/images/generations"
    }
    assert sent_keys <= set(keys.values())


async def test_generate_many_under_a_real_timeout_keeps_created_tasks_reachable():
    """Promise 3 with a real-time `fail_after` (the `asyncio.wait_for` of the issue), no
    virtual clock: the created ids must be reachable afterwards through the documented hook."""
    fake = FakeAPI(VirtualClock(), duration=10_000.0, estimated_time=10_000)
    gate = anyio.Event()
    original = fake._create

    async def create_then_hang():
        if fake.creates >= 3:
            fake.creates += 1
            await gate.wait()
        return await original()

    fake._create = create_then_hang
    created = []
    async with fake.client() as client:
        client_clockless = client
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.5):
                await client_clockless.images.generate_many(
                    PROMPTS,
                    max_in_flight=8,
                    on_created=lambda i, task: created.append(task.id),
                )
        gate.set()
    assert len(fake.created_ids) == 3
    assert set(fake.created_ids) <= set(created)


@pytest.mark.parametrize("cut_at", [0, 1, 3])
@pytest.mark.parametrize("entry", ["client.batch", "generate_many"])
async def test_cancel_landing_as_a_create_answers_loses_no_task(entry, cut_at):
    """Promise 3, the narrowest window: the cancellation lands just as the server answers a
    create (the task exists, its answer may never be read). Every task the server made must
    be reachable afterwards: by id in an outcome (or `on_created`), or by the idempotency key
    of an `uncertain` outcome (or `on_create`) that settles it without paying twice."""
    clock = VirtualClock()
    fake = FakeAPI(clock, duration=10_000.0, estimated_time=10_000)
    ids, keys, holder = set(), set(), {}
    hooks = {
        "on_create": lambda i, r, key: keys.add(key),
        "on_created": lambda i, task: ids.add(task.id),
    }
    with anyio.fail_after(20):
        async with fake.client() as client, clock.running():
            with anyio.CancelScope() as scope:

                def cut(index):
                    if index == cut_at:
                        scope.cancel()

                fake.before_create_answer = cut
                if entry == "generate_many":
                    await client.images.generate_many(PROMPTS, max_in_flight=8, **hooks)
                else:
                    async with client.batch(max_in_flight=8, **hooks) as batch:
                        holder["batch"] = batch
                        await batch.submit_all(PROMPTS)
    assert fake.keyed_creates, "the fake made no task"
    assert clock.monotonic() < 10_000, "the cancellation never reached the batch"
    if "batch" in holder:
        report = holder["batch"].report()
        ids |= {o.task.id for o in report.outcomes if o.task is not None}
        keys &= {o.idempotency_key for o in report.outcomes if o.task is None}
    lost = [(k, t) for k, t in fake.keyed_creates if t not in ids and k not in keys]
    assert not lost, f"tasks made by the server but reachable neither by id nor key: {lost}"
