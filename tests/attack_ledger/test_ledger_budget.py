"""A credit budget (`max_credits`) is never exceeded, by the server's own count."""

from __future__ import annotations

from decimal import Decimal

import pytest

from evolink import GenerationRequest, OutcomeKind, SkipReason

from ._harness import (
    assert_matches_server,
    assert_one_outcome_each,
    assert_totals_are_sums,
    new_server,
    run_batch,
    unaccounted_tasks,
)
from ._server import PRICE, Create, TaskPlan

pytestmark = pytest.mark.anyio

HINT = {"gpt-image-2": PRICE}


def prompts(count: int) -> list[str]:
    return [f"budget prompt {i}" for i in range(count)]


async def test_a_hinted_budget_holds_while_creates_are_in_flight() -> None:
    server = new_server()
    server.create_delay = 3.0  # answers take a while: predictions must hold the room
    report, _ = await run_batch(
        server, prompts(30), max_in_flight=8, max_credits=20, price_hints=HINT
    )
    assert_one_outcome_each(report, 30)
    assert server.peak_committed <= 20
    assert len(report.completed) == 10
    assert report.skipped_for_budget == 20
    skipped = [o for o in report.outcomes if o.kind is OutcomeKind.SKIPPED]
    assert all(o.reason is SkipReason.BUDGET for o in skipped)
    assert_matches_server(report, server)
    assert_totals_are_sums(report)


async def test_without_a_price_only_the_probe_may_pass_the_budget() -> None:
    server = new_server()
    server.create_delay = 2.0
    report, _ = await run_batch(server, prompts(30), max_in_flight=8, max_credits=21)
    assert_one_outcome_each(report, 30)
    assert server.peak_committed <= 21 + PRICE, "more than the one probe's reservation over"
    assert_matches_server(report, server)


@pytest.mark.parametrize(
    ("budget", "expected"), [("0.3", 3), ("0.29", 2), ("0", 0)], ids=["0.3", "0.29", "0"]
)
async def test_the_budget_is_counted_in_exact_decimals(budget: str, expected: int) -> None:
    server = new_server()
    server.default_plan = TaskPlan(reserved=Decimal("0.1"), credits_used="0.1")
    report, _ = await run_batch(
        server,
        prompts(5),
        max_in_flight=5,
        max_credits=budget,
        price_hints={"gpt-image-2": "0.1"},
    )
    assert_one_outcome_each(report, 5)
    assert len(report.completed) == expected
    assert len(server.tasks) == expected
    assert report.skipped_for_budget == 5 - expected
    assert server.peak_committed <= Decimal(budget)


async def test_failures_release_room_for_waiting_inputs() -> None:
    server = new_server()
    server.default_plan = TaskPlan(final="failed", credits_used=None)
    report, _ = await run_batch(
        server, prompts(6), max_in_flight=6, max_credits=4, price_hints=HINT
    )
    assert_one_outcome_each(report, 6)
    assert report.counts[OutcomeKind.FAILED] == 6, report.counts
    assert server.peak_committed <= 4
    assert_matches_server(report, server)


async def test_abandoned_tasks_keep_their_hold() -> None:
    server = new_server()
    stuck = [f"stuck {i}" for i in range(3)]
    server.plans = {p: TaskPlan(final="never") for p in stuck}
    inputs = stuck + prompts(5)
    report, _ = await run_batch(
        server, inputs, max_in_flight=8, max_credits=6, price_hints=HINT, task_deadline=60
    )
    assert_one_outcome_each(report, 8)
    assert server.peak_committed <= 6
    for outcome in report.outcomes[:3]:
        assert outcome.kind is OutcomeKind.ABANDONED
        assert outcome.error_code == "task_deadline"
        assert outcome.task is not None
    assert all(o.reason is SkipReason.BUDGET for o in report.outcomes[3:])
    assert report.reserved == server.reserved == 6
    assert report.charged == server.charged == 0


async def test_retries_of_failed_tasks_stay_inside_the_budget() -> None:
    server = new_server()
    failing = TaskPlan(final="failed", credits_used=None, error_code="service_error")
    server.plan_queue = {p: [failing, TaskPlan()] for p in prompts(4)}
    server.create_delay = 1.0
    report, _ = await run_batch(
        server, prompts(4), max_in_flight=4, max_credits=5, price_hints=HINT, retry_failed=1
    )
    assert_one_outcome_each(report, 4)
    assert server.peak_committed <= 5
    created_for = [len(server.tasks_for(p)) for p in prompts(4)]
    started = sum(1 for count in created_for if count)
    assert report.resubmitted == len(server.tasks) - started
    for outcome, count in zip(report.outcomes, created_for, strict=True):
        assert outcome.attempts == count
    assert_matches_server(report, server)  # the failed first tasks are in the totals too


async def test_402_mid_batch_stops_submitting_and_collects_the_running() -> None:
    server = new_server(balance=10)
    server.default_plan = TaskPlan(duration=100)
    inputs = prompts(12)
    report, _ = await run_batch(server, inputs, max_in_flight=8, max_connections=1)
    assert_one_outcome_each(report, 12)
    assert len(report.completed) == 5  # the running tasks are collected
    assert not server.creates_for(inputs[-1]), "an input was started after the 402"
    for outcome in report.outcomes:
        if outcome.kind is OutcomeKind.COMPLETED:
            continue
        assert outcome.kind is OutcomeKind.SKIPPED
        assert outcome.reason is SkipReason.INSUFFICIENT_CREDITS
        assert outcome.task_id is None
    assert_matches_server(report, server)
    assert_totals_are_sums(report)


async def test_402_on_one_create_sends_nothing_more() -> None:
    server = new_server()
    inputs = prompts(6)
    server.create_faults = {inputs[3]: [Create.NO_CREDITS]}
    report, _ = await run_batch(server, inputs, max_in_flight=1)
    assert_one_outcome_each(report, 6)
    assert len(server.creates()) == 4
    assert len(report.completed) == 3
    assert all(o.reason is SkipReason.INSUFFICIENT_CREDITS for o in report.outcomes[3:])
    assert_matches_server(report, server)
    # BatchReport's docstring: stopped_reason is the refusal that stopped submissions,
    # its status and the server's code (it promised "insufficient_credits", the skip
    # reason's value, until the docstring was put right).
    assert report.stopped_reason is not None
    assert report.stopped_reason.startswith("402")


async def test_a_budget_holds_when_the_server_never_says_what_it_reserved() -> None:
    server = new_server()
    server.default_plan = TaskPlan(reserve_field=None, duration=50)
    report, _ = await run_batch(
        server, prompts(10), max_in_flight=10, max_credits=10, price_hints=HINT
    )
    assert_one_outcome_each(report, 10)
    assert unaccounted_tasks(report, server) == []
    assert server.peak_committed <= 10, f"the server committed {server.peak_committed} of 10"
    assert report.charged <= 10


async def test_a_budget_holds_through_lost_answers_on_an_honouring_server() -> None:
    server = new_server()
    server.create_faults = {p: [Create.RESET_AFTER_CREATE] for p in prompts(10)}
    report, _ = await run_batch(
        server, prompts(10), max_in_flight=10, max_credits=10, price_hints=HINT
    )
    assert_one_outcome_each(report, 10)
    assert server.peak_committed <= 10
    assert all(len(server.tasks_for(p)) <= 1 for p in prompts(10))
    assert unaccounted_tasks(report, server) == []


@pytest.mark.xfail(
    strict=True,
    reason="known: 5 creates out at once, each answer lost, each resent once before the"
    " server could show it ignores keys: it commits 16 of 10 (was 20; the possible first"
    " tasks are held from the resend on). Refusing resends the budget cannot hold made an"
    " honest server's inputs end uncertain with their tasks charged (tests/reliability/"
    "test_soak.py): left open",
)
async def test_a_budget_holds_through_lost_answers_on_a_server_ignoring_keys() -> None:
    server = new_server(honour_keys=False)
    server.create_faults = {p: [Create.TIMEOUT_AFTER_CREATE] for p in prompts(10)}
    report, _ = await run_batch(
        server, prompts(10), max_in_flight=10, max_credits=10, price_hints=HINT
    )
    assert_one_outcome_each(report, 10)
    assert server.peak_committed <= 10, f"the server committed {server.peak_committed} of 10"


async def test_a_huge_reservation_ends_the_spending() -> None:
    server = new_server(balance=10**13)
    server.plans = {"budget prompt 0": TaskPlan(reserved=Decimal(10**12), credits_used=2)}
    report, _ = await run_batch(
        server, prompts(5), max_in_flight=1, max_credits=100, price_hints=HINT
    )
    assert_one_outcome_each(report, 5)
    assert len(server.tasks) == 1
    assert report.reserved == server.reserved
    assert all(o.reason is SkipReason.BUDGET for o in report.outcomes[1:])


@pytest.mark.parametrize("hinted", [True, False], ids=["hinted", "unpriced"])
async def test_a_negative_reservation_is_uncertain_and_holds_the_budget(hinted: bool) -> None:
    # reliability.md #6: negative credits make the answer undecodable, so the create is
    # uncertain; it counts against the budget for good, and if its price was unknown no
    # further create of its kind starts.
    server = new_server()
    server.plans = {"budget prompt 0": TaskPlan(reserve_field=-5)}
    server.default_plan = TaskPlan(duration=40)
    hints = HINT if hinted else {}
    report, _ = await run_batch(
        server, prompts(8), max_in_flight=4, max_credits=10, price_hints=hints
    )
    assert_one_outcome_each(report, 8)
    first = report.outcomes[0]
    assert first.kind is OutcomeKind.UNCERTAIN
    assert first.idempotency_key == server.tasks_for("budget prompt 0")[0].key
    assert server.peak_committed <= 10
    assert unaccounted_tasks(report, server) == []
    if not hinted:
        assert len(server.tasks) == 1


@pytest.mark.parametrize("value", ["2", "2.0", "two", 1e400, True, [2]], ids=repr)
async def test_a_strange_reservation_never_loses_a_task(value: object) -> None:
    server = new_server()
    server.plans = {"budget prompt 0": TaskPlan(reserve_field=value)}
    report, _ = await run_batch(
        server, prompts(4), max_in_flight=2, max_credits=8, price_hints=HINT
    )
    assert_one_outcome_each(report, 4)
    assert unaccounted_tasks(report, server) == []
    assert server.peak_committed <= 8
    assert all(len(server.tasks_for(p)) <= 1 for p in prompts(4))
    assert_totals_are_sums(report)


async def test_an_uncertain_create_holds_its_credits_for_good() -> None:
    server = new_server()
    inputs = prompts(4)
    server.create_faults = {inputs[0]: [Create.TIMEOUT_AFTER_CREATE] * 2}
    report, _ = await run_batch(server, inputs, max_in_flight=1, max_credits=4, price_hints=HINT)
    assert_one_outcome_each(report, 4)
    assert report.outcomes[0].kind is OutcomeKind.UNCERTAIN
    assert server.peak_committed <= 4, f"the server committed {server.peak_committed} of 4"
    assert all(o.reason is SkipReason.BUDGET for o in report.outcomes[2:])


async def test_unpriced_probes_whose_answers_are_lost_do_not_multiply() -> None:
    server = new_server()
    inputs = prompts(6)
    server.create_faults = {p: [Create.RESET_AFTER_CREATE] * 2 for p in inputs}
    report, _ = await run_batch(server, inputs, max_in_flight=3, max_credits=3)
    assert_one_outcome_each(report, 6)
    assert unaccounted_tasks(report, server) == []
    assert server.peak_committed <= 3 + PRICE, f"the server committed {server.peak_committed}"


async def test_an_input_larger_than_the_whole_budget_is_never_sent() -> None:
    server = new_server()
    inputs = [GenerationRequest(prompt="huge", n=10), GenerationRequest(prompt="small")]
    report, _ = await run_batch(server, inputs, max_credits=10, price_hints=HINT)
    assert_one_outcome_each(report, 2)
    assert report.outcomes[0].kind is OutcomeKind.SKIPPED
    assert report.outcomes[0].reason is SkipReason.BUDGET
    assert not server.creates_for("huge")
    assert report.outcomes[1].kind is OutcomeKind.COMPLETED
    assert server.peak_committed <= 10
