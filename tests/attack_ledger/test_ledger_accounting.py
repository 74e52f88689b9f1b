"""Every credit reserved is accounted for: the report agrees with the server's own ledger."""

from __future__ import annotations

import json
from contextlib import aclosing
from decimal import Decimal

import anyio
import pytest

from evolink import Batch, BatchProgress, BatchReport, GenerationRequest, Outcome, OutcomeKind

from ._harness import (
    REAL_DEADLINE,
    assert_key_hidden,
    assert_matches_server,
    assert_one_outcome_each,
    assert_totals_are_sums,
    client_for,
    new_server,
    run_batch,
    unaccounted_tasks,
)
from ._server import Create, TaskPlan

pytestmark = pytest.mark.anyio


async def test_mixed_endings_agree_with_the_server_to_the_cent() -> None:
    server = new_server()
    server.plans = {
        "failed": TaskPlan(final="failed", credits_used=None),
        "cancelled": TaskPlan(final="cancelled", credits_used=None),
        "partial": TaskPlan(images_made=1, credits_used=None),
        "discount": TaskPlan(credits_used="0.7"),
        "slow": TaskPlan(duration=95),
    }
    inputs = [GenerationRequest(prompt=p, n=4) for p in server.plans]
    inputs += [GenerationRequest(prompt=f"plain {i}", n=2) for i in range(5)]
    report, _ = await run_batch(server, inputs, max_in_flight=4)
    assert_one_outcome_each(report, len(inputs))
    kinds = [o.kind for o in report.outcomes]
    assert kinds[:2] == [OutcomeKind.FAILED, OutcomeKind.CANCELLED]
    assert_totals_are_sums(report)
    assert_matches_server(report, server)
    assert report.reserved == report.charged + report.released
    assert unaccounted_tasks(report, server) == []


async def test_partial_completion_without_credits_used_is_charged_pro_rata() -> None:
    server = new_server()
    server.plans = {"partial": TaskPlan(images_made=1, credits_used=None)}
    report, _ = await run_batch(server, [GenerationRequest(prompt="partial", n=4)])
    (outcome,) = report.outcomes
    assert outcome.kind is OutcomeKind.COMPLETED
    assert outcome.credits.reserved == Decimal(8)
    assert outcome.credits.charged == Decimal(2)
    assert outcome.credits.released == Decimal(6)
    assert_matches_server(report, server)


async def test_charge_above_the_reservation_is_what_the_report_says() -> None:
    server = new_server()
    server.plans = {"dear": TaskPlan(credits_used=5)}
    report, _ = await run_batch(server, ["dear", "cheap"])
    assert_matches_server(report, server)
    assert report.outcomes[0].credits.charged == Decimal(5)
    assert report.outcomes[0].credits.released == 0
    assert_totals_are_sums(report)


async def test_a_failed_task_that_still_charges_a_fee() -> None:
    server = new_server()
    server.plans = {"fee": TaskPlan(final="failed", credits_used="0.5")}
    report, _ = await run_batch(server, ["fee"])
    (outcome,) = report.outcomes
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.credits.charged == Decimal("0.5")
    assert outcome.credits.released == Decimal("1.5")
    assert_matches_server(report, server)


@pytest.mark.parametrize(
    "plan",
    [
        TaskPlan(read_reserve_field=7.0, credits_used=2),
        TaskPlan(read_reserve_field=7.0, credits_used=None, images_made=1),
        TaskPlan(read_reserve_field=1.0, credits_used=None, images_made=1),
    ],
    ids=["used-reported", "pro-rata-read-says-more", "pro-rata-read-says-less"],
)
async def test_a_reservation_that_changes_between_reads_counts_once_as_first_made(
    plan: TaskPlan,
) -> None:
    # The create reserved 4 for two images (and says so); later reads claim another
    # reservation. The server settles against what it reserved at create.
    server = new_server()
    server.default_plan = plan
    inputs = [GenerationRequest(prompt=p, n=2) for p in ("a", "b", "c")]
    report, _ = await run_batch(server, inputs, max_in_flight=3)
    assert_one_outcome_each(report, 3)
    assert_matches_server(report, server)
    assert_totals_are_sums(report)


async def test_cents_add_up_exactly() -> None:
    server = new_server()
    server.default_plan = TaskPlan(reserved=Decimal("0.1"), credits_used="0.1")
    report, _ = await run_batch(server, [f"tenth {i}" for i in range(3)])
    assert report.reserved == Decimal("0.3")
    assert report.charged == Decimal("0.3")
    assert_matches_server(report, server)


async def test_the_same_prompt_twice_is_two_tasks_under_two_keys() -> None:
    server = new_server()
    report, _ = await run_batch(server, ["same"] * 5, max_in_flight=5)
    assert_one_outcome_each(report, 5)
    assert len(server.tasks) == 5
    assert len({o.task_id for o in report.outcomes}) == 5
    assert len({s.key for s in server.creates()}) == 5
    assert_matches_server(report, server)


@pytest.mark.parametrize("first_running", [True, False], ids=["first-running", "first-ended"])
async def test_a_server_that_answers_two_creates_with_one_task_id(first_running: bool) -> None:
    # Documented (reliability.md #2): the second input shares the first's task, ends with
    # it with code `shared_task`, and the task's credits count once.
    server = new_server()
    server.reuse_task_of = {"second": "first"}
    in_flight = 3 if first_running else 1
    report, _ = await run_batch(server, ["first", "second", "third"], max_in_flight=in_flight)
    assert_one_outcome_each(report, 3)
    first, second, _third = report.outcomes
    assert first.task_id == second.task_id
    assert second.kind is first.kind
    assert_matches_server(report, server)  # the shared task's credits count once...
    assert_totals_are_sums(report)  # ...in the report and in the sum of its outcomes
    assert second.error_code == "shared_task"  # and the caller is told


async def test_rejected_inputs_send_nothing_and_cost_nothing() -> None:
    server = new_server()
    inputs = [
        "ok 1",
        GenerationRequest(prompt="   "),
        GenerationRequest(prompt="ok 2", n=0),
        "ok 3",
    ]
    report, _ = await run_batch(server, inputs)
    assert_one_outcome_each(report, 4)
    assert [o.kind for o in report.outcomes] == [
        OutcomeKind.COMPLETED,
        OutcomeKind.REJECTED,
        OutcomeKind.REJECTED,
        OutcomeKind.COMPLETED,
    ]
    assert len(server.creates()) == 2
    assert_matches_server(report, server)


async def test_the_report_survives_json_with_its_ledger_intact() -> None:
    server = new_server()
    server.plans = {"x": TaskPlan(reserved=Decimal("0.3"), credits_used="0.1")}
    report, _ = await run_batch(server, ["x", "y"])
    again = BatchReport.from_dict(json.loads(report.to_json()))
    assert again == report
    assert (again.reserved, again.charged, again.released) == (
        server.reserved,
        server.charged,
        server.released,
    )
    assert_key_hidden(report)


async def test_requests_count_is_what_the_server_log_shows() -> None:
    server = new_server()
    server.plans = {"late": TaskPlan(duration=70)}
    report, _ = await run_batch(server, ["late", "a", "b", "c"], max_in_flight=2)
    assert report.requests == len(server.seen)


async def test_the_ledger_object_agrees_with_the_report() -> None:
    server = new_server()
    server.plans = {"fail": TaskPlan(final="failed", credits_used=None)}
    async with client_for(server) as client:
        async with client.batch(max_in_flight=2) as batch:
            for prompt in ["fail", "a", "b"]:
                await batch.submit(prompt)
    report = batch.report()
    ledger = batch.ledger
    assert (ledger.reserved, ledger.charged, ledger.released) == (
        report.reserved,
        report.charged,
        report.released,
    )
    assert ledger.outstanding == 0
    assert_matches_server(report, server)


async def test_every_hook_and_stream_sees_each_input_end_exactly_once() -> None:
    # A server that duplicates batch reads, reuses a task id, loses an answer and fails
    # a task: on_outcome, as_completed and the last progress snapshot all agree with the
    # report, one ending per input.
    server = new_server(batch_endpoint="duplicate")
    prompts = [f"hook {i}" for i in range(8)]
    server.reuse_task_of = {prompts[5]: prompts[0]}
    server.create_faults = {prompts[2]: [Create.RESET_AFTER_CREATE]}
    server.plans = {prompts[3]: TaskPlan(final="failed", credits_used="0.25")}
    hooked: list[Outcome] = []
    streamed: list[Outcome] = []
    snapshots: list[BatchProgress] = []
    async with client_for(server) as client:
        with anyio.fail_after(REAL_DEADLINE):
            async with client.batch(
                max_in_flight=8,
                total=len(prompts),
                on_outcome=hooked.append,
                on_progress=snapshots.append,
            ) as batch:
                await batch.submit_all(prompts)
                async with aclosing(batch.as_completed()) as outcomes:
                    async for outcome in outcomes:
                        streamed.append(outcome)
    report = batch.report()
    server.settle()
    assert_one_outcome_each(report, len(prompts))
    assert sorted(o.index for o in hooked) == list(range(len(prompts)))
    assert sorted(o.index for o in streamed) == list(range(len(prompts)))
    assert sorted(hooked, key=lambda o: o.index) == list(report.outcomes)
    last = snapshots[-1]
    assert last.completed + last.failed + last.uncertain == len(prompts)
    assert (last.reserved, last.charged, last.released) == (
        report.reserved,
        report.charged,
        report.released,
    )
    assert_matches_server(report, server)
    assert_totals_are_sums(report)


async def test_the_documented_streaming_pattern_sees_every_outcome() -> None:
    # docs/how-to/budget.md, "Streaming outcomes": a producer task submits, the block
    # iterates as_completed(); `total=` says how many inputs are coming.
    server = new_server()
    server.plans = {"koi 3": TaskPlan(final="failed", credits_used=None)}
    streamed: list[Outcome] = []

    async def produce(batch: Batch) -> None:
        for i in range(6):
            await batch.submit(GenerationRequest(prompt=f"koi {i}", size="3:2"))

    async with client_for(server) as client:
        with anyio.fail_after(REAL_DEADLINE):
            async with client.batch(max_in_flight=2, max_credits=100, total=6) as batch:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(produce, batch)
                    async with aclosing(batch.as_completed()) as outcomes:
                        async for outcome in outcomes:
                            streamed.append(outcome)
    report = batch.report()
    assert_one_outcome_each(report, 6)
    assert sorted(o.index for o in streamed) == list(range(6)), "outcomes never streamed"
