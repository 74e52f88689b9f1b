"""The user cancels a batch at any moment; the report still accounts for every task and
credit, and a resumed run pays for nothing twice."""

from __future__ import annotations

from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import pytest

from evolink import BatchReport, OutcomeKind, Task

from ._harness import (
    REAL_DEADLINE,
    assert_key_hidden,
    assert_matches_server,
    assert_one_outcome_each,
    assert_totals_are_sums,
    client_for,
    new_server,
    unaccounted_tasks,
)
from ._server import Create, HostileServer, TaskPlan

pytestmark = pytest.mark.anyio

PROMPTS = [f"cancel prompt {i}" for i in range(6)]
ENDED = {OutcomeKind.COMPLETED, OutcomeKind.FAILED, OutcomeKind.CANCELLED}


def hostile(**kwargs: Any) -> HostileServer:
    server = new_server(**kwargs)
    server.plans = {
        PROMPTS[1]: TaskPlan(final="failed", credits_used=None),
        PROMPTS[2]: TaskPlan(duration=40),
    }
    server.create_faults = {
        PROMPTS[3]: [Create.RESET_AFTER_CREATE],
        PROMPTS[4]: [Create.RATE_LIMIT, Create.RATE_LIMIT_NO_HEADER],
    }
    return server


async def cut_short(
    server: HostileServer, cancel_at: int, *, before: bool, **options: Any
) -> tuple[BatchReport, list[Task], bool]:
    """Run the batch, cancelled by the user when the server sees request `cancel_at`."""
    options.setdefault("max_in_flight", 3)
    async with client_for(server) as client:
        run = client.images.generate_many(PROMPTS, **options)
        with anyio.fail_after(REAL_DEADLINE):
            with anyio.CancelScope() as scope:
                server.cancel_scope = scope
                server.cancel_at = cancel_at
                server.cancel_before_work = before
                await run
        server.cancel_at = None
        report = run.report()
        created = run.created()
    server.settle()
    return report, created, scope.cancelled_caught


def check_cut_short(report: BatchReport, created: list[Task], server: HostileServer) -> None:
    assert [o.index for o in report.outcomes] == list(range(len(report)))
    assert len(report) <= len(PROMPTS)
    for outcome in report.outcomes:
        if outcome.kind is OutcomeKind.ABANDONED:
            assert outcome.task is not None, outcome
        if outcome.kind is OutcomeKind.UNCERTAIN:
            assert outcome.idempotency_key, outcome
    lost = unaccounted_tasks(report, server, created)
    assert lost == [], f"tasks the server made and the report does not surface: {lost}"
    assert_totals_are_sums(report)
    named = {o.task_id for o in report.outcomes if o.task_id}
    assert report.reserved == sum(server.tasks[i].reserved for i in named if i in server.tasks)
    ended = [o for o in report.outcomes if o.kind in ENDED and o.task_id]
    assert sum(o.credits.charged for o in ended) == sum(
        server.tasks[o.task_id].charged for o in ended if o.task_id
    )
    assert_key_hidden(report)


@pytest.mark.parametrize("before", [True, False], ids=["before-work", "after-work"])
async def test_a_cancel_at_every_request_leaves_a_full_account(before: bool) -> None:
    cancelled = 0
    for cancel_at in range(2, 24):
        server = hostile()
        report, created, caught = await cut_short(server, cancel_at, before=before)
        cancelled += caught
        try:
            check_cut_short(report, created, server)
        except AssertionError as exc:
            raise AssertionError(f"cancelled at request {cancel_at}: {exc}") from exc
    assert cancelled >= 10  # the sweep did cut batches short


async def test_a_cancel_while_a_create_is_answered_surfaces_its_task() -> None:
    # The server has made the task and reserved its credits; the user cancels while the
    # answer is on its way. The task must be in the report or behind an uncertain key.
    for cancel_at in range(2, 12):
        server = new_server()
        report, created, _ = await cut_short(server, cancel_at, before=False, max_in_flight=1)
        request = server.seen[cancel_at - 1]
        if request.task_id is None:
            continue
        ids = {o.task_id for o in report.outcomes} | {t.id for t in created}
        keys = {o.idempotency_key for o in report.outcomes if o.kind is OutcomeKind.UNCERTAIN}
        assert request.task_id in ids or request.key in keys, (
            f"cancel at {cancel_at}: task {request.task_id} paid for, not reported"
        )


async def test_after_a_cancel_a_second_batch_finishes_without_paying_twice() -> None:
    for cancel_at in (3, 4, 5, 7, 9):
        server = hostile()
        first, created, _ = await cut_short(server, cancel_at, before=False)
        async with client_for(server) as client:
            with anyio.fail_after(REAL_DEADLINE):
                async with client.batch(max_in_flight=3) as batch:
                    for outcome in first.outcomes:
                        request = outcome.request
                        assert request is not None
                        if outcome.kind is OutcomeKind.ABANDONED and outcome.task:
                            await batch.adopt(outcome.task, request)
                        elif outcome.kind is OutcomeKind.UNCERTAIN:
                            await batch.submit(request, idempotency_key=outcome.idempotency_key)
                        elif outcome.kind is OutcomeKind.SKIPPED:
                            await batch.submit(PROMPTS[outcome.index])
                    for prompt in PROMPTS[len(first) :]:
                        await batch.submit(prompt)
        second = batch.report()
        server.settle()
        for prompt in PROMPTS:
            assert len(server.tasks_for(prompt)) == 1, (
                f"cancel at {cancel_at}: {prompt!r} made {len(server.tasks_for(prompt))} tasks"
            )
        known = {o.task_id for o in (*first.outcomes, *second.outcomes) if o.task_id}
        assert set(server.tasks) <= known | {t.id for t in created}
        assert all(o.kind in ENDED for o in second.outcomes), second.counts


@pytest.mark.parametrize("honour_keys", [True, False], ids=["honours-keys", "ignores-keys"])
async def test_a_journal_resumes_a_cancelled_run_without_paying_twice(
    tmp_path: Path, honour_keys: bool
) -> None:
    for cancel_at in (3, 4, 6, 8):
        server = new_server(honour_keys=honour_keys)
        server.plans = {PROMPTS[1]: TaskPlan(final="failed", credits_used=None)}
        journal = tmp_path / f"journal-{cancel_at}.sqlite3"
        options = {"journal": str(journal), "run": "nightly", "max_in_flight": 1}
        first, created, _ = await cut_short(server, cancel_at, before=False, **options)
        check_cut_short(first, created, server)
        async with client_for(server) as client:
            with anyio.fail_after(REAL_DEADLINE):
                second = await client.images.generate_many(PROMPTS, **options)
        server.settle()
        assert_one_outcome_each(second, len(PROMPTS))
        for prompt in PROMPTS:
            assert len(server.tasks_for(prompt)) == 1, (
                f"cancel at {cancel_at}: {prompt!r} made {len(server.tasks_for(prompt))} tasks"
            )
        kinds = [o.kind for o in second.outcomes]
        assert kinds[1] is OutcomeKind.FAILED
        assert kinds.count(OutcomeKind.COMPLETED) == 5
        assert unaccounted_tasks(second, server) == []


async def test_the_resumed_report_accounts_for_the_whole_run(tmp_path: Path) -> None:
    server = new_server()
    options = {"journal": str(tmp_path / "j.sqlite3"), "run": "r", "max_in_flight": 2}
    # cut short once some inputs have ended and others still run
    first, _, caught = await cut_short(server, 8, before=False, **options)
    assert caught
    assert any(o.kind is OutcomeKind.COMPLETED for o in first.outcomes)
    async with client_for(server) as client:
        with anyio.fail_after(REAL_DEADLINE):
            second = await client.images.generate_many(PROMPTS, **options)
    assert second.ok
    assert any(o.resumed for o in second.outcomes)
    assert_totals_are_sums(second)
    assert_matches_server(second, server)


async def test_a_resumed_run_stays_inside_the_run_s_budget(tmp_path: Path) -> None:
    # guarantees.md: "`max_credits` bounds what a run commits"; the run is the journal's.
    server = new_server()
    options = {
        "journal": str(tmp_path / "budget.sqlite3"),
        "run": "capped",
        "max_in_flight": 2,
        "max_credits": 8,
        "price_hints": {"gpt-image-2": 2},
    }
    first, _, caught = await cut_short(server, 7, before=False, **options)
    assert caught
    assert server.peak_committed <= 8  # the first part alone kept to the budget
    assert any(o.kind is OutcomeKind.COMPLETED for o in first.outcomes)
    async with client_for(server) as client:
        with anyio.fail_after(REAL_DEADLINE):
            second = await client.images.generate_many(PROMPTS, **options)
    server.settle()
    assert_one_outcome_each(second, len(PROMPTS))
    assert server.peak_committed <= 8, f"the run committed {server.peak_committed} of 8"
    assert server.charged <= 8


async def test_leaving_a_batch_on_an_exception_surfaces_every_paid_task() -> None:
    server = hostile()
    async with client_for(server) as client:
        with anyio.fail_after(REAL_DEADLINE):
            with pytest.raises(RuntimeError, match="consumer broke"):
                async with client.batch(max_in_flight=6, total=len(PROMPTS)) as batch:
                    for prompt in PROMPTS:
                        await batch.submit(prompt)
                    async with aclosing(batch.as_completed()) as outcomes:
                        async for _ in outcomes:
                            raise RuntimeError("consumer broke")
    report = batch.report()
    server.settle()
    check_cut_short(report, batch.created(), server)
    assert any(o.kind is OutcomeKind.ABANDONED for o in report.outcomes)


async def test_a_journal_run_with_concurrent_lost_creates_never_pays_twice(
    tmp_path: Path,
) -> None:
    # Key-ignoring server, creates sent at the same moment, cut short while answers are on
    # their way: the listing may be ambiguous (documented: `uncertain`), never a resend.
    for cancel_at in (3, 4, 5):
        server = new_server(honour_keys=False)
        server.create_delay = 2.0
        journal = tmp_path / f"together-{cancel_at}.sqlite3"
        options = {"journal": str(journal), "run": "together", "max_in_flight": 3}
        first, created, _ = await cut_short(server, cancel_at, before=False, **options)
        check_cut_short(first, created, server)
        async with client_for(server) as client:
            with anyio.fail_after(REAL_DEADLINE):
                second = await client.images.generate_many(PROMPTS, **options)
        server.settle()
        assert_one_outcome_each(second, len(PROMPTS))
        for prompt in PROMPTS:
            assert len(server.tasks_for(prompt)) <= 1, f"cancel at {cancel_at}: {prompt!r}"
        assert unaccounted_tasks(second, server) == []


async def test_a_run_cut_short_twice_then_resumed_pays_for_each_input_once(
    tmp_path: Path,
) -> None:
    for first_cut, second_cut in ((3, 2), (5, 3), (7, 4), (9, 6)):
        server = hostile()
        options = {
            "journal": str(tmp_path / f"twice-{first_cut}-{second_cut}.sqlite3"),
            "run": "twice",
            "max_in_flight": 2,
        }
        await cut_short(server, first_cut, before=False, **options)
        already = len(server.seen)
        await cut_short(server, already + second_cut, before=False, **options)
        async with client_for(server) as client:
            with anyio.fail_after(REAL_DEADLINE):
                final = await client.images.generate_many(PROMPTS, **options)
        server.settle()
        assert_one_outcome_each(final, len(PROMPTS))
        for prompt, outcome in zip(PROMPTS, final.outcomes, strict=True):
            count = len(server.tasks_for(prompt))
            # guarantees.md: a create whose fate the journal cannot settle (sent under a
            # key the server has not shown it honours, a listing that cannot tell) ends
            # `uncertain`, and you decide: then it may have made none, never two.
            allowed = (0, 1) if outcome.kind is OutcomeKind.UNCERTAIN else (1,)
            assert count in allowed, (
                f"cuts at {first_cut}, +{second_cut}: {prompt!r} made {count}",
                [(o.kind.value, o.error_code, o.resumed, o.attempts) for o in final.outcomes],
            )
        uncertain = final.counts[OutcomeKind.UNCERTAIN]
        assert final.counts[OutcomeKind.FAILED] == 1
        assert final.counts[OutcomeKind.COMPLETED] + uncertain == 5
