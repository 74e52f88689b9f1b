"""The batch: slots, budget, outcomes, 402/429, batch-read fallback, cancellation, feed."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal

import anyio
import anyio.lowlevel
import httpx
import pytest

from _fake_server import FakeEvolink
from evolink import (
    AsyncEvolink,
    BatchProgress,
    BatchReport,
    CreditLedger,
    EvolinkError,
    GenerationRequest,
    Outcome,
    OutcomeKind,
    SkipReason,
    Task,
    TaskStatus,
)
from evolink._models import Usage
from evolink.testing import TEST_API_KEY, Faults, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

KEY = "sk-evo-batch-test-key"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> FakeEvolink:
    return FakeEvolink(clock)


def client_for(fake: FakeEvolink, clock: VirtualClock) -> AsyncEvolink:
    return AsyncEvolink(
        api_key=KEY, base_url="https://api.test", transport=fake.transport(), clock=clock
    )


async def run_many(fake, clock, prompts, **options):
    async with clock.running(), client_for(fake, clock) as client:
        return await client.images.generate_many(prompts, **options)


async def test_every_input_gets_one_outcome_in_input_order(fake, clock):
    """Completed, failed, cancelled and rejected inputs each end once, in input order."""
    prompts = ["a fox", "fail:content_policy_violation", "cancel", "", "an owl"]
    report = await run_many(fake, clock, prompts, max_in_flight=2)
    kinds = [o.kind for o in report.outcomes]
    assert [
        OutcomeKind.COMPLETED,
        OutcomeKind.FAILED,
        OutcomeKind.CANCELLED,
        OutcomeKind.REJECTED,
        OutcomeKind.COMPLETED,
    ] == kinds
    assert list(range(5)) == [o.index for o in report.outcomes]
    assert 1 == report.counts[OutcomeKind.FAILED]
    assert "content_policy_violation" == report.outcomes[1].error_code
    assert report.outcomes[1].retryable is False
    assert "not_empty" == report.outcomes[3].error_code
    assert 4 == fake.count("POST", "/v1/images/generations")  # nothing sent for ""


async def test_in_flight_never_exceeds_the_limit(fake, clock):
    """At most max_in_flight tasks are unfinished at once, on the server and in the batch."""
    async with clock.running(), client_for(fake, clock) as client:
        async with client.batch(max_in_flight=5) as batch:
            await batch.submit_all([f"p{i}" for i in range(40)])
        report = batch.report()
    assert 40 == report.counts[OutcomeKind.COMPLETED]
    assert batch._slots.peak == 5
    assert fake.in_flight_peak <= 5


async def test_slots_free_as_tasks_end(fake, clock):
    """With 4 slots and 4-second tasks, 12 tasks take about 3 rounds, not 12."""
    report = await run_many(fake, clock, [f"p{i}" for i in range(12)], max_in_flight=4)
    assert 12 == report.counts[OutcomeKind.COMPLETED]
    assert 12.0 <= report.elapsed < 12.0 * 1.15


async def test_reads_per_task_stay_low(fake, clock):
    """Per-task reads average at most 2.5 with GETs, learning included (a few tasks
    explore before the engine trusts what it learned)."""
    fake.batch_endpoint = False
    await run_many(fake, clock, [f"p{i}" for i in range(30)], max_in_flight=10)
    assert fake.count("GET", "/v1/tasks/") / 30 <= 2.5


async def test_batch_reads_fall_back_to_gets_on_404(fake, clock):
    """A server without POST /v1/tasks/batch is asked once, then read task by task."""
    fake.batch_endpoint = False
    report = await run_many(fake, clock, ["a", "b", "c"], max_in_flight=3)
    assert report.ok
    assert 1 == fake.count("POST", "/v1/tasks/batch")
    assert fake.count("GET", "/v1/tasks/") >= 3


@pytest.mark.parametrize("status", [pytest.param(405, id="405"), pytest.param(501, id="501")])
async def test_batch_reads_fall_back_on_405_and_501(fake, clock, status):
    """A batch endpoint answering 405 or 501 is given up for GETs, as a 404 is."""
    fake.batch_endpoint = False
    fake.no_batch_status = status
    report = await run_many(fake, clock, ["a", "b"])
    assert report.ok
    assert 1 == fake.count("POST", "/v1/tasks/batch")


async def test_batch_endpoint_reads_many_tasks_per_request(fake, clock):
    """With the batch endpoint, 50 tasks are read in far fewer requests than tasks."""
    report = await run_many(fake, clock, [f"p{i}" for i in range(50)], max_in_flight=50)
    assert report.ok
    assert 0 == fake.count("GET", "/v1/tasks/")
    assert fake.count("POST", "/v1/tasks/batch") <= 10


async def test_budget_is_never_exceeded(fake, clock):
    """With max_credits, no create is sent whose reservation could pass the budget."""
    report = await run_many(
        fake, clock, [f"p{i}" for i in range(10)], max_in_flight=4, max_credits=10
    )
    assert 4 == report.counts[OutcomeKind.COMPLETED]
    assert 6 == report.skipped_for_budget
    assert Decimal(10) == report.charged
    assert 4 == fake.count("POST", "/v1/images/generations")
    assert all(o.reason is SkipReason.BUDGET for o in report.outcomes[4:])


async def test_released_credits_return_to_the_budget(fake, clock):
    """Credits released by a failed task can pay for a later one."""
    prompts = ["fail:content_policy_violation", "b", "c"]
    report = await run_many(fake, clock, prompts, max_in_flight=1, max_credits=5)
    assert [OutcomeKind.FAILED, OutcomeKind.COMPLETED, OutcomeKind.COMPLETED] == [
        o.kind for o in report.outcomes
    ]
    assert Decimal(5) == report.charged
    assert Decimal("2.5") == report.released


async def test_ledger_charges_pro_rata_for_partial_results(fake, clock):
    """A task that made 1 of 4 images is charged a quarter; the rest is released."""
    report = await run_many(fake, clock, [GenerationRequest(prompt="partial", n=4)])
    credits = report.outcomes[0].credits
    assert (Decimal(10), Decimal("2.5"), Decimal("7.5")) == (
        credits.reserved,
        credits.charged,
        credits.released,
    )
    assert (Decimal(10), Decimal("2.5"), Decimal("7.5")) == (
        report.reserved,
        report.charged,
        report.released,
    )


async def test_402_stops_new_submissions_and_collects_work_in_flight(fake, clock):
    """After a 402, later inputs are skipped, and tasks already made still complete."""
    fake.balance = Decimal("7.5")
    report = await run_many(fake, clock, [f"p{i}" for i in range(6)], max_in_flight=6)
    assert 3 == report.counts[OutcomeKind.COMPLETED]
    assert 3 == report.counts[OutcomeKind.SKIPPED]
    assert all(
        o.reason is SkipReason.INSUFFICIENT_CREDITS
        for o in report.outcomes
        if o.kind is OutcomeKind.SKIPPED
    )
    assert report.stopped_reason is not None
    assert "402" in report.stopped_reason


async def test_429_slows_the_batch_and_nothing_is_lost(fake, clock):
    """Refused creates are retried after a shared backoff, with the same idempotency key."""
    fake.create_script = [429, 429, 429, 429]
    fake.retry_after = "2"
    async with clock.running(), client_for(fake, clock) as client:
        async with client.batch(max_in_flight=4) as batch:
            await batch.submit_all([f"p{i}" for i in range(8)])
        report = batch.report()
    assert 8 == report.counts[OutcomeKind.COMPLETED]
    assert 8 == len(fake.tasks)  # no input made two tasks
    assert batch._pacer.rate_limited_count == 4
    assert report.elapsed >= 2.0  # the Retry-After was honoured


async def test_429_shrinks_the_in_flight_limit_then_it_grows_back(fake, clock):
    """The in-flight limit shrinks on refusals and returns to max_in_flight."""
    fake.create_script = [429, 429]
    async with clock.running(), client_for(fake, clock) as client:
        async with client.batch(max_in_flight=8) as batch:
            await batch.submit_all([f"p{i}" for i in range(30)])
    assert 8 == batch._slots.limit
    assert 30 == batch.report().counts[OutcomeKind.COMPLETED]


async def test_a_create_refused_with_429_forever_ends_failed(anyio_backend):
    """A create answered 429 every time ends failed (retryable) after a bounded time."""
    clock = VirtualClock()
    fake = FakeEvolink(clock)
    fake.create_script = [429] * 10_000
    async with (
        clock.running(),
        AsyncEvolink(
            api_key="sk-evo-x", base_url="https://a.test", transport=fake.transport(), clock=clock
        ) as client,
    ):
        report = await client.images.generate_many(["a fox"])
    outcome = report.outcomes[0]
    assert (OutcomeKind.FAILED, True) == (outcome.kind, outcome.retryable)
    assert 0 == len(fake.tasks)


async def test_a_lost_create_answer_is_reconciled_with_the_same_key(fake, clock):
    """A create answered 500 after the task was made is resent with its key: one task."""
    fake.create_script = [500]
    fake.create_anyway = True
    report = await run_many(fake, clock, ["a fox"])
    assert OutcomeKind.COMPLETED == report.outcomes[0].kind
    assert 1 == len(fake.tasks)
    keys = fake.create_keys()
    assert [2] == list(keys.values())  # two sends, one key


async def test_a_create_that_never_answers_is_uncertain(fake, clock):
    """Creates failing 500 every time end uncertain, all sent with one key."""
    fake.create_script = [500] * 20
    report = await run_many(fake, clock, ["a fox"])
    outcome = report.outcomes[0]
    assert OutcomeKind.UNCERTAIN == outcome.kind
    assert outcome.idempotency_key is not None
    assert {outcome.idempotency_key} == set(fake.create_keys())


async def test_503_on_every_try_is_a_certain_failure(fake, clock):
    """A create refused 503 every time made no task: failed and retryable, not uncertain."""
    fake.create_script = [503] * 20
    report = await run_many(fake, clock, ["a fox"])
    assert OutcomeKind.FAILED == report.outcomes[0].kind
    assert report.outcomes[0].retryable is True


@pytest.mark.parametrize("refusal", [pytest.param(402, id="402"), pytest.param(409, id="409")])
async def test_a_refusal_after_an_uncertain_try_stays_uncertain(fake, clock, refusal):
    """A 500 (task maybe made) then a refusal of the resend is uncertain, not failed/skipped."""
    fake.create_script = [500, refusal]
    report = await run_many(fake, clock, ["a fox"])
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


async def test_retry_failed_resubmits_retryable_failures_as_new_tasks(fake, clock):
    """A retryable failure is resubmitted (new key); a non-retryable one is not."""
    prompts = ["fail:service_error", "fail:content_policy_violation"]
    report = await run_many(fake, clock, prompts, retry_failed=2)
    assert [OutcomeKind.FAILED, OutcomeKind.FAILED] == [o.kind for o in report.outcomes]
    assert 3 == report.outcomes[0].attempts
    assert 1 == report.outcomes[1].attempts
    assert 2 == report.resubmitted
    assert 4 == len(fake.tasks)
    assert 4 == len(fake.create_keys())  # each resubmission under a key of its own


async def test_async_iterable_input_is_consumed_lazily(fake, clock):
    """An async generator is read only as fast as slots free: memory follows max_in_flight."""
    pulled = 0
    max_ahead = 0

    async def prompts() -> AsyncIterator[str]:
        nonlocal pulled, max_ahead
        for i in range(30):
            pulled += 1
            finished = len(batch._finished)
            max_ahead = max(max_ahead, pulled - finished)
            yield f"p{i}"

    async with clock.running(), client_for(fake, clock) as client:
        async with client.batch(max_in_flight=3) as batch:
            await batch.submit_all(prompts())
    assert 30 == batch.report().counts[OutcomeKind.COMPLETED]
    assert max_ahead <= 4


async def test_as_completed_yields_every_outcome(fake, clock):
    """as_completed yields each outcome once, the short tasks before the slow one."""
    async with clock.running(), client_for(fake, clock) as client:
        async with client.batch(max_in_flight=4) as batch:
            for prompt in ["slow", "a", "b"]:
                await batch.submit(prompt)
            seen = [o.index async for o in batch.as_completed()]
    assert 0 == seen[-1]
    assert [0, 1, 2] == sorted(seen)


async def test_progress_hook_reports_counts_credits_and_eta(fake, clock):
    """on_progress gets snapshots; the last one counts everything and has no time left."""
    snapshots: list[BatchProgress] = []
    await run_many(fake, clock, ["a", "b", "fail:service_error"], on_progress=snapshots.append)
    last = snapshots[-1]
    assert (3, 2, 1, 0) == (last.total, last.completed, last.failed, last.in_flight)
    assert Decimal(5) == last.charged
    assert 0.0 == last.eta
    assert any(s.in_flight > 0 for s in snapshots)


async def test_cancelling_the_batch_leaves_no_task_running(fake, clock):
    """Cancelling the scope stops submissions; in-flight inputs end abandoned; no task leaks."""
    async with clock.running(), client_for(fake, clock) as client:
        with anyio.CancelScope() as scope:
            async with client.batch(max_in_flight=2) as batch:
                await batch.submit_all(["a", "slow", "b"])  # "b" waits for "a" to end
                scope.cancel()
                await anyio.sleep_forever()
    report = batch.report()
    kinds = [o.kind for o in report.outcomes]
    assert [OutcomeKind.COMPLETED, OutcomeKind.ABANDONED, OutcomeKind.SKIPPED] == kinds
    assert report.outcomes[1].task_id is not None
    assert SkipReason.STOPPED == report.outcomes[2].reason


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


async def test_an_error_inside_the_block_abandons_in_flight_tasks(fake, clock):
    """An exception in the block propagates; tasks in flight end abandoned, with their ids."""
    async with clock.running(), client_for(fake, clock) as client:
        with pytest.raises(RuntimeError, match="boom"):
            async with client.batch(max_in_flight=2) as batch:
                await batch.submit("slow")
                while not batch._entries:  # until its create has answered
                    await anyio.lowlevel.checkpoint()
                raise RuntimeError("boom")
    outcome = batch.report().outcomes[0]
    assert OutcomeKind.ABANDONED == outcome.kind
    assert outcome.task_id is not None


async def test_feed_triggers_a_confirming_read(fake, clock):
    """A fed 'completed' payload is not trusted: the task is read, and only then counted."""
    async with clock.running(), client_for(fake, clock) as client:
        async with client.batch() as batch:
            await batch.submit("slow")
            while not batch._entries:
                await anyio.lowlevel.checkpoint()
            task_id = next(iter(batch._entries))
            reads_before = fake.count("POST", "/v1/tasks/batch")
            fake_payload = {"id": task_id, "status": "completed", "results": ["https://x"]}
            assert batch.feed(fake_payload) is True
            assert batch.feed({"id": "task-unified-other", "status": "completed"}) is False
            assert batch.feed({"nonsense": True}) is False
            await clock.sleep(0.5)
            assert fake.count("POST", "/v1/tasks/batch") > reads_before
            assert not batch._finished  # the read said processing: the feed was a lie
    assert OutcomeKind.COMPLETED == batch.report().outcomes[0].kind


async def test_invalid_input_is_rejected_without_a_request(fake, clock):
    """Bad sizes and non-request inputs are rejected; nothing is sent for them."""
    report = await run_many(
        fake,
        clock,
        [GenerationRequest(prompt="x", n=11), 42, "ok"],  # type: ignore[list-item]
    )
    assert [OutcomeKind.REJECTED, OutcomeKind.REJECTED, OutcomeKind.COMPLETED] == [
        o.kind for o in report.outcomes
    ]
    assert "maximum" == report.outcomes[0].error_code
    assert 1 == fake.count("POST", "/v1/images/generations")


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
    report = await run_many(fake, clock, [bad, "ok"])
    assert [OutcomeKind.REJECTED, OutcomeKind.COMPLETED] == [o.kind for o in report.outcomes]
    assert 1 == fake.count("POST", "/v1/images/generations")


async def test_options_are_validated():
    """Nonsense options are refused before anything runs."""
    client = AsyncEvolink(api_key=KEY, base_url="https://api.test")
    with pytest.raises(ValueError, match="max_in_flight"):
        client.batch(max_in_flight=0)
    with pytest.raises(ValueError, match="max_credits"):
        client.batch(max_credits=-1)
    await client.aclose()


async def test_adopt_watches_tasks_made_by_an_earlier_run(fake, clock):
    """Adopted tasks (by id or as a Task) are watched to their end; no create is sent."""
    async with clock.running(), client_for(fake, clock) as client:
        first = await client.images.generate("made earlier")
        second = await client.images.generate("also earlier")
        creates = fake.count("POST", "/v1/images/generations")
        async with client.batch() as batch:
            await batch.adopt(first.id, GenerationRequest(prompt="made earlier"))
            await batch.adopt(second, GenerationRequest(prompt="also earlier"))
    report = batch.report()
    assert [first.id, second.id] == [o.task_id for o in report.outcomes]
    assert report.ok
    assert creates == fake.count("POST", "/v1/images/generations")
    assert Decimal(5) == report.charged


async def test_hooks_see_each_create_before_it_is_sent(fake, clock):
    """on_create runs before the request leaves; on_created and on_outcome follow."""
    events: list[tuple[str, int]] = []

    def on_create(index, request, key):
        sent = fake.count("POST", "/v1/images/generations")
        events.append(("create", index))
        assert sent == index  # this input's create has not been sent yet
        assert len(key) >= 16

    async with clock.running(), client_for(fake, clock) as client:
        async with client.batch(
            max_in_flight=1,
            on_create=on_create,
            on_created=lambda index, task: events.append(("created", index)),
            on_outcome=lambda outcome: events.append(("outcome", outcome.index)),
        ) as batch:
            await batch.submit_all(["a", "b"])
    assert [
        ("create", 0),
        ("created", 0),
        ("outcome", 0),
        ("create", 1),
        ("created", 1),
        ("outcome", 1),
    ] == events


async def test_tags_come_back_on_the_outcomes(fake, clock):
    """A caller's tag rides with its input to the outcome, whatever the outcome."""
    async with clock.running(), client_for(fake, clock) as client:
        async with client.batch() as batch:
            await batch.submit("a fox", tag={"row": 7})
            await batch.submit("", tag="rejected-row")
            await batch.submit("an owl")
    tags = [o.tag for o in batch.report().outcomes]
    assert [{"row": 7}, "rejected-row", None] == tags


async def test_server_refusal_of_a_create_is_a_failed_outcome(fake, clock):
    """A 400 from the server ends the input failed with its code; no task exists."""
    fake.create_script = [400]
    report = await run_many(fake, clock, ["a"])
    outcome = report.outcomes[0]
    assert (OutcomeKind.FAILED, "boom", None) == (outcome.kind, outcome.error_code, outcome.task)


async def test_a_refused_key_stops_the_batch(fake, clock):
    """A 401 on create fails that input and skips the rest: one create, not one per input."""
    fake.create_script = [401]
    report = await run_many(fake, clock, ["a", "b", "c"], max_in_flight=1)
    assert [OutcomeKind.FAILED, OutcomeKind.SKIPPED, OutcomeKind.SKIPPED] == [
        o.kind for o in report.outcomes
    ]
    assert SkipReason.UNAUTHORIZED == report.outcomes[1].reason
    assert 1 == fake.count("POST", "/v1/images/generations")


async def test_refused_connections_are_retried_then_fail_certainly(fake, clock):
    """A create that never connects is retried, then fails certainly (no task was made)."""
    fake.refuse_connections = 2
    report = await run_many(fake, clock, ["a"])
    assert OutcomeKind.COMPLETED == report.outcomes[0].kind
    fake.refuse_connections = 100
    report = await run_many(fake, clock, ["b"])
    assert (OutcomeKind.FAILED, True) == (report.outcomes[0].kind, report.outcomes[0].retryable)


async def test_failed_reads_are_retried_later(fake, clock):
    """A 500 or a malformed body on a read does not lose the task: it is read again."""
    fake.read_script = [500, 500, 500, 200]  # 200 here means: malformed JSON
    report = await run_many(fake, clock, ["a", "b"])
    assert report.ok


async def test_reads_refused_for_the_key_end_the_tasks_uncertain(fake, clock):
    """401 on reads (a revoked key) ends the tasks uncertain instead of polling forever."""
    fake.read_script = [401] * 3
    report = await run_many(fake, clock, ["a"])
    assert (OutcomeKind.UNCERTAIN, "scripted") == (
        report.outcomes[0].kind,
        report.outcomes[0].error_code,
    )


async def test_reads_that_always_fail_end_the_task_uncertain(anyio_backend):
    """A task whose every read fails ends uncertain after a bounded time, not never."""
    clock = VirtualClock()
    fake = FakeEvolink(clock)
    fake.read_script = [500] * 10_000
    async with (
        clock.running(),
        AsyncEvolink(
            api_key="sk-evo-x", base_url="https://a.test", transport=fake.transport(), clock=clock
        ) as client,
    ):
        report = await client.images.generate_many(["a fox"])
    assert OutcomeKind.UNCERTAIN == report.outcomes[0].kind
    assert report.elapsed < 3600


async def test_a_task_the_server_forgot_is_uncertain(fake, clock):
    """A task that answers 404 (expired) ends uncertain, with its id."""
    fake.batch_endpoint = False

    def forget(request):
        if request.method == "GET":
            fake.tasks.clear()

    fake.on_request = forget
    report = await run_many(fake, clock, ["a"])
    outcome = report.outcomes[0]
    assert (OutcomeKind.UNCERTAIN, "task_not_found") == (outcome.kind, outcome.error_code)
    assert outcome.task_id is not None


async def test_a_read_answered_with_another_task_does_not_hang_the_batch(anyio_backend):
    """A GET that answers a different task's body is not taken for the task asked about."""
    clock = VirtualClock()
    fake = FakeEvolink(clock, batch_endpoint=False)
    original = fake.view

    def wrong_id(task):
        data = original(task)
        data["id"] = "task-unified-someone-else"
        return data

    fake.view = wrong_id
    async with (
        clock.running(),
        AsyncEvolink(
            api_key="sk-evo-x", base_url="https://a.test", transport=fake.transport(), clock=clock
        ) as client,
    ):
        fake.view = original  # the create's answer is right...
        async with client.batch() as batch:
            await batch.submit("a fox")
            fake.view = wrong_id  # ...every read after it is for another task
    outcome = batch.report().outcomes[0]
    assert OutcomeKind.UNCERTAIN == outcome.kind


async def test_progress_events_follow_the_batch_to_its_end(fake, clock):
    """progress_events yields snapshots until the batch ends; the last one is complete."""
    seen: list[BatchProgress] = []

    async with clock.running(), client_for(fake, clock) as client:
        async with anyio.create_task_group() as tg:
            async with client.batch(total=3) as batch:

                async def follow() -> None:
                    async for snapshot in batch.progress_events():
                        seen.append(snapshot)

                tg.start_soon(follow)
                await batch.submit_all(["a", "b", "c"])
    assert 3 == seen[-1].completed
    assert 0 == seen[-1].waiting
    assert 3 == seen[-1].finished


async def test_report_and_submit_need_the_batch_running(fake, clock):
    """report() inside the block and submit() outside it are clear errors."""
    async with clock.running(), client_for(fake, clock) as client:
        batch = client.batch()
        with pytest.raises(EvolinkError, match="async with"):
            await batch.submit("a")
        async with batch:
            await batch.submit("slow")
            with pytest.raises(EvolinkError, match="still running"):
                batch.report()


class HangingCreates(httpx.AsyncBaseTransport):
    """Creates never answer; everything else goes to the fake."""

    def __init__(self, fake: FakeEvolink) -> None:
        self._inner = fake.transport()
        self.sent = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/images/generations":
            self.sent.set()
            await anyio.sleep_forever()
        return await self._inner.handle_async_request(request)


async def test_a_create_in_flight_when_stopped_is_uncertain(fake, clock):
    """A create sent but unanswered when the batch stops may have made a task: uncertain."""
    transport = HangingCreates(fake)
    async with clock.running():
        client = AsyncEvolink(
            api_key=KEY, base_url="https://api.test", transport=transport, clock=clock
        )
        async with client:
            with anyio.CancelScope() as scope:
                async with client.batch() as batch:
                    await batch.submit("a")
                    await transport.sent.wait()
                    scope.cancel()
    outcome = batch.report().outcomes[0]
    assert (OutcomeKind.UNCERTAIN, "stopped") == (outcome.kind, outcome.error_code)
    assert outcome.idempotency_key is not None


async def test_cancelled_while_draining_abandons_what_runs(fake, clock):
    """A cancellation that lands while the block's end waits for tasks abandons them."""
    async with clock.running(), client_for(fake, clock) as client:
        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as scope:

                async def cancel_soon() -> None:
                    await clock.sleep(1)
                    scope.cancel()

                tg.start_soon(cancel_soon)
                async with client.batch() as batch:
                    await batch.submit("slow")
    assert OutcomeKind.ABANDONED == batch.report().outcomes[0].kind


async def test_an_adopted_task_already_finished_ends_at_once(fake, clock):
    """Adopting a task that already ended records its outcome without a read."""
    async with clock.running(), client_for(fake, clock) as client:
        task = await client.images.generate("done")
        await clock.sleep(5)
        finished = await client.tasks.get(task.id)
        reads = fake.count("POST", "/v1/tasks/batch")
        async with client.batch() as batch:
            await batch.adopt(finished, GenerationRequest(prompt="done"))
    assert batch.report().ok
    assert reads == fake.count("POST", "/v1/tasks/batch")
    assert 0 == batch.reads


async def test_resubmission_respects_the_budget(fake, clock):
    """retry_failed does not resubmit when the budget has no room left for it."""
    prompts = ["fail:service_error", "b"]
    report = await run_many(fake, clock, prompts, retry_failed=3, max_credits=5, max_in_flight=2)
    assert [OutcomeKind.FAILED, OutcomeKind.COMPLETED] == [o.kind for o in report.outcomes]
    assert report.charged + report.released == report.reserved
    assert report.charged <= 5


async def test_the_first_create_of_a_model_teaches_its_price(fake, clock):
    """With a budget and an unknown price, one create goes first; the rest follow its answer."""
    order: list[int] = []
    fake.on_request = lambda request: order.append(len(fake.tasks))
    report = await run_many(fake, clock, [f"p{i}" for i in range(4)], max_credits=100)
    assert report.ok
    paths = [path for _, path, _ in fake.requests]
    creates = [n for n, path in zip(order, paths, strict=True) if path.endswith("generations")]
    assert 0 == creates[0]
    assert all(n >= 1 for n in creates[1:])  # sent after the first create was answered


async def test_price_hints_keep_the_first_create_within_budget(fake, clock):
    """With a price hint, even the first create is held to the budget; nothing is sent."""
    request = GenerationRequest(prompt="big", n=4)
    report = await run_many(fake, clock, [request], max_credits=5, price_hints={"gpt-image-2": 2.5})
    assert SkipReason.BUDGET == report.outcomes[0].reason
    assert 0 == fake.count("POST", "/v1/images/generations")


async def test_unknown_prices_are_probed_one_at_a_time(fake, clock):
    """Without hints, one create of unknown price goes out alone, whatever its model."""
    requests = [
        GenerationRequest(prompt="a", n=4),
        GenerationRequest(prompt="b", n=4, model="doubao-seedream-4.5"),
    ]
    report = await run_many(fake, clock, requests, max_credits=5)
    assert [OutcomeKind.COMPLETED, OutcomeKind.SKIPPED] == [o.kind for o in report.outcomes]
    assert Decimal(10) == report.charged  # over by the probe's own reservation, as documented


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
    report = await run_many(fake, clock, requests, max_credits=15, max_in_flight=1)
    # 10 + 2.5 fit; a second big one (10 more) would not, and is not started.
    assert [OutcomeKind.COMPLETED, OutcomeKind.COMPLETED, OutcomeKind.SKIPPED] == [
        o.kind for o in report.outcomes
    ]
    assert Decimal("12.5") == report.reserved


async def test_a_batch_answer_with_a_bad_item_reads_that_task_alone(fake, clock):
    """An unparseable task in a batch answer is read again by itself."""
    original = fake.view
    spoiled: set[str] = set()

    def view(task):
        data = original(task)
        if task.id not in spoiled and data["status"] == "completed":
            spoiled.add(task.id)
            data["status"] = ["completed"]  # no status at all: the task is unreadable
        return data

    fake.view = view
    report = await run_many(fake, clock, ["a", "b"])
    assert report.ok
    assert fake.count("GET", "/v1/tasks/") >= 2


async def test_a_batch_answer_without_a_data_list_turns_to_gets(fake, clock):
    """A batch answer of the wrong shape loses nothing: the tasks are read one by one."""
    fake.batch_bodies = [{"data": "nope"}, ["not", "an", "object"]]
    report = await run_many(fake, clock, ["a"])
    assert report.ok
    assert 1 == fake.count("POST", "/v1/tasks/batch")
    assert fake.count("GET", "/v1/tasks/") >= 1


async def test_feed_during_a_read_asks_for_another_read(fake, clock):
    """A feed that lands while the task is being read triggers one more read right after."""
    async with clock.running(), client_for(fake, clock) as client:
        async with client.batch() as batch:
            fed = []

            def feed_while_reading(request):
                if request.url.path == "/v1/tasks/batch" and not fed:
                    task_id = next(iter(batch._entries))
                    fed.append(batch.feed({"id": task_id, "status": "completed"}))

            fake.on_request = feed_while_reading
            await batch.submit("slow")
    assert [True] == fed
    assert batch.report().ok


def test_report_helpers():
    """Outcome kinds print as their values; reports count and filter."""
    report = BatchReport(
        outcomes=[
            Outcome(index=0, request=None, kind=OutcomeKind.COMPLETED),
            Outcome(index=1, request=None, kind=OutcomeKind.SKIPPED, reason=SkipReason.BUDGET),
        ]
    )
    assert ("completed", "budget") == (str(OutcomeKind.COMPLETED), str(SkipReason.BUDGET))
    assert 2 == len(report)
    assert [0] == [o.index for o in report.completed]
    assert () == report.outcomes[1].results
    assert report.ok is False


def test_ledger_counts_each_task_once():
    """A replayed reservation and a duplicate settlement change nothing."""
    ledger = CreditLedger()
    ledger.reserve("task-unified-1", Decimal(5), images=2)
    ledger.reserve("task-unified-1", Decimal(5), images=2)
    assert Decimal(5) == ledger.outstanding
    done = Task(id="task-unified-1", status=TaskStatus.COMPLETED, results=("u",))
    first = ledger.settle(done)
    again = ledger.settle(done)
    assert first == again
    assert (Decimal(5), Decimal("2.5"), Decimal("2.5")) == (
        ledger.reserved,
        ledger.charged,
        ledger.released,
    )
    assert Decimal(0) == first.outstanding == ledger.outstanding


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
