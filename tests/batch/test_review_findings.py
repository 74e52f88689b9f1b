"""Regressions for what a review found: paying twice, lost inputs, hangs, budget, ledger."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import anyio
import anyio.lowlevel
import pytest

from _fake_server import FakeEvolink
from evolink import AsyncEvolink, GenerationRequest, OutcomeKind, SkipReason, Task, TaskStatus
from evolink._ledger import CreditLedger
from evolink._models import Usage
from evolink.testing import TEST_API_KEY, Faults, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

KEY = "sk-evo-review-test-key"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> FakeEvolink:
    return FakeEvolink(clock)


def client_for(fake, clock) -> AsyncEvolink:
    return AsyncEvolink(
        api_key=KEY, base_url="https://api.test", transport=fake.transport(), clock=clock
    )


async def run(fake, clock, items, **options):
    async with clock.running(), client_for(fake, clock) as client:
        return await client.images.generate_many(items, **options)


@pytest.mark.parametrize("refusal", [pytest.param(402, id="402"), pytest.param(409, id="409")])
async def test_a_refusal_after_an_uncertain_try_stays_uncertain(fake, clock, refusal):
    """A 500 (task maybe made) then a refusal of the resend is uncertain, not failed/skipped."""
    fake.create_script = [500, refusal]
    report = await run(fake, clock, ["a fox"])
    assert OutcomeKind.UNCERTAIN == report.outcomes[0].kind


async def test_a_server_ignoring_keys_is_not_sent_a_create_more_than_twice(anyio_backend):
    """Until a replay proves keys are honoured, a lost create is resent once at most."""
    clock = VirtualClock()
    sim = Simulator(
        clock=clock,
        seed=4,
        durations=(2, 4),
        idempotency=False,
        faults=Faults(lost_create_response=0.3),
    )
    async with (
        clock.running(),
        AsyncEvolink(
            api_key=TEST_API_KEY, base_url="https://s.test", transport=sim.transport(), clock=clock
        ) as client,
    ):
        report = await client.images.generate_many([f"p{i}" for i in range(40)])
    per_prompt = Counter(task.prompt for task in sim.tasks.values())
    assert max(per_prompt.values()) <= 2
    assert report.counts[OutcomeKind.UNCERTAIN] > 0
    assert client.idempotency_confirmed is False


async def test_an_honouring_server_lets_lost_creates_resolve(anyio_backend):
    """With keys honoured, every lost create is found again: one task per input, none uncertain."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=4, durations=(2, 4), faults=Faults(lost_create_response=0.3))
    async with (
        clock.running(),
        AsyncEvolink(
            api_key=TEST_API_KEY, base_url="https://s.test", transport=sim.transport(), clock=clock
        ) as client,
    ):
        report = await client.images.generate_many([f"p{i}" for i in range(40)])
    assert {1} == set(Counter(task.prompt for task in sim.tasks.values()).values())
    assert report.ok
    assert client.idempotency_confirmed is True


async def test_a_submit_cancelled_while_waiting_still_gets_an_outcome(fake, clock):
    """A producer cancelled while waiting for a slot leaves no input without an outcome."""
    async with clock.running(), client_for(fake, clock) as client:
        async with client.batch(max_in_flight=1) as batch:
            await batch.submit("slow")
            async with anyio.create_task_group() as tg:
                tg.start_soon(batch.submit, "b")  # waits for "slow" (12 s) to free the slot
                await clock.sleep(1)
                tg.cancel_scope.cancel()
    report = batch.report()
    assert [OutcomeKind.COMPLETED, OutcomeKind.SKIPPED] == [o.kind for o in report.outcomes]
    assert SkipReason.STOPPED == report.outcomes[1].reason
    assert 0 == batch._slots.in_use


async def test_one_key_for_two_inputs_is_rejected(fake, clock):
    """Two inputs under one idempotency key would be one task: the second is rejected."""
    key = "shared-key-0123456789"
    async with clock.running(), client_for(fake, clock) as client:
        async with client.batch() as batch:
            await batch.submit("a fox", idempotency_key=key)
            await batch.submit("a fox", idempotency_key=key)
            await batch.submit("an owl", idempotency_key="short")
            while not batch._entries:
                await anyio.lowlevel.checkpoint()
            await batch.adopt(next(iter(batch._entries)), GenerationRequest(prompt="a fox"))
    kinds = [o.kind for o in batch.report().outcomes]
    assert [OutcomeKind.COMPLETED] + [OutcomeKind.REJECTED] * 3 == kinds
    assert 0 == batch._slots.in_use


async def test_a_body_that_is_not_json_is_rejected_before_sending(fake, clock):
    """A model field JSON cannot carry is rejected, not a crash of the whole batch."""
    bad = GenerationRequest(prompt="x", extra_body={"guidance": Decimal("7.5")})
    report = await run(fake, clock, [bad, "ok"])
    assert [OutcomeKind.REJECTED, OutcomeKind.COMPLETED] == [o.kind for o in report.outcomes]
    assert 1 == fake.count("POST", "/v1/images/generations")


@pytest.mark.parametrize("status", [pytest.param(405, id="405"), pytest.param(501, id="501")])
async def test_batch_reads_fall_back_on_405_and_501(fake, clock, status):
    """A batch endpoint answering 405 or 501 is given up for GETs, as a 404 is."""
    fake.batch_endpoint = False
    fake.no_batch_status = status
    report = await run(fake, clock, ["a", "b"])
    assert report.ok
    assert 1 == fake.count("POST", "/v1/tasks/batch")


async def test_reads_refused_for_the_key_end_the_tasks_uncertain(fake, clock):
    """401 on reads (a revoked key) ends the tasks uncertain instead of polling forever."""
    fake.read_script = [401] * 3
    report = await run(fake, clock, ["a"])
    assert (OutcomeKind.UNCERTAIN, "scripted") == (
        report.outcomes[0].kind,
        report.outcomes[0].error_code,
    )


async def test_a_refused_key_stops_the_batch(fake, clock):
    """A 401 on create fails that input and skips the rest: one create, not one per input."""
    fake.create_script = [401]
    report = await run(fake, clock, ["a", "b", "c"], max_in_flight=1)
    assert [OutcomeKind.FAILED, OutcomeKind.SKIPPED, OutcomeKind.SKIPPED] == [
        o.kind for o in report.outcomes
    ]
    assert SkipReason.UNAUTHORIZED == report.outcomes[1].reason
    assert 1 == fake.count("POST", "/v1/images/generations")


async def test_price_hints_keep_the_first_create_within_budget(fake, clock):
    """With a price hint, even the first create is held to the budget; nothing is sent."""
    request = GenerationRequest(prompt="big", n=4)
    report = await run(fake, clock, [request], max_credits=5, price_hints={"gpt-image-2": 2.5})
    assert SkipReason.BUDGET == report.outcomes[0].reason
    assert 0 == fake.count("POST", "/v1/images/generations")


async def test_unknown_prices_are_probed_one_at_a_time(fake, clock):
    """Without hints, one create of unknown price goes out alone, whatever its model."""
    requests = [
        GenerationRequest(prompt="a", n=4),
        GenerationRequest(prompt="b", n=4, model="doubao-seedream-4.5"),
    ]
    report = await run(fake, clock, requests, max_credits=5)
    assert [OutcomeKind.COMPLETED, OutcomeKind.SKIPPED] == [o.kind for o in report.outcomes]
    assert Decimal(10) == report.charged  # over by the probe's own reservation, as documented


def test_the_ledger_takes_the_servers_charge_even_above_the_reservation():
    """credits_used is the charge, for any end: above the reservation, or on a failure."""
    ledger = CreditLedger()
    ledger.reserve("task-unified-1", Decimal("2.5"), images=1)
    ledger.reserve("task-unified-2", Decimal("2.5"), images=1)
    over = Task(
        id="task-unified-1",
        status=TaskStatus.COMPLETED,
        results=("u",),
        usage=Usage(credits_reserved=Decimal("2.5"), credits_used=Decimal("4.1")),
    )
    failed = Task(
        id="task-unified-2", status=TaskStatus.FAILED, usage=Usage(credits_used=Decimal(1))
    )
    ledger.settle(over)
    ledger.settle(failed)
    assert (Decimal("5.1"), Decimal("1.5"), Decimal(0)) == (
        ledger.charged,
        ledger.released,
        ledger.outstanding,
    )
    assert Decimal("5.1") == ledger.committed


async def test_a_price_learned_for_one_size_is_not_assumed_for_another(fake, clock):
    """A cheap size is not priced like an expensive one seen first (and skipped for it)."""
    original = fake.view

    def by_size(task):
        data = original(task)
        if task.prompt.startswith("big"):  # the big size costs four times as much
            data["usage"]["credits_reserved"] = float(fake.price * 4 * task.n)
        return data

    fake.view = by_size
    requests = [
        GenerationRequest(prompt="big 1", size="1536x1024"),
        GenerationRequest(prompt="small 1", size="1:1"),
        GenerationRequest(prompt="big 2", size="1536x1024"),
    ]
    report = await run(fake, clock, requests, max_credits=15, max_in_flight=1)
    # 10 + 2.5 fit; a second big one (10 more) would not, and is not started.
    assert [OutcomeKind.COMPLETED, OutcomeKind.COMPLETED, OutcomeKind.SKIPPED] == [
        o.kind for o in report.outcomes
    ]
    assert Decimal("12.5") == report.reserved


async def test_tags_come_back_on_the_outcomes(fake, clock):
    """A caller's tag rides with its input to the outcome, whatever the outcome."""
    async with clock.running(), client_for(fake, clock) as client:
        async with client.batch() as batch:
            await batch.submit("a fox", tag={"row": 7})
            await batch.submit("", tag="rejected-row")
            await batch.submit("an owl")
    tags = [o.tag for o in batch.report().outcomes]
    assert [{"row": 7}, "rejected-row", None] == tags
