"""Reads that lie, drop, duplicate or never end: every input still ends once, paid once."""

from __future__ import annotations

import pytest

from evolink import OutcomeKind

from ._harness import (
    assert_matches_server,
    assert_one_outcome_each,
    assert_totals_are_sums,
    new_server,
    run_batch,
    unaccounted_tasks,
)
from ._server import TaskPlan

pytestmark = pytest.mark.anyio

PROMPTS = [f"read prompt {i}" for i in range(8)]


@pytest.mark.parametrize("mode", ["missing", "duplicate", "foreign"])
async def test_a_batch_read_endpoint_that_misbehaves(mode: str) -> None:
    server = new_server(batch_endpoint=mode)
    server.plans = {PROMPTS[1]: TaskPlan(final="failed", credits_used=None)}
    report, _ = await run_batch(server, PROMPTS, max_in_flight=8)
    assert_one_outcome_each(report, 8)
    assert report.counts[OutcomeKind.COMPLETED] == 7
    assert report.counts[OutcomeKind.FAILED] == 1
    assert "task-unified-1-foreign" not in {o.task_id for o in report.outcomes}
    assert_matches_server(report, server)
    assert_totals_are_sums(report)


async def test_a_batch_read_that_always_leaves_one_task_out() -> None:
    server = new_server(batch_endpoint="drop")
    server.dropped_ids = {"task-unified-1767225600-000002"}
    report, _ = await run_batch(server, PROMPTS, max_in_flight=8)
    assert_one_outcome_each(report, 8)
    assert report.ok, report.counts
    assert_matches_server(report, server)


async def test_a_batch_read_stuck_on_a_stale_answer_still_ends_the_input() -> None:
    server = new_server(batch_endpoint="stale")
    server.dropped_ids = {"task-unified-1767225600-000003"}
    report, _ = await run_batch(server, PROMPTS, max_in_flight=8, task_deadline=600)
    assert_one_outcome_each(report, 8)
    (stuck,) = [o for o in report.outcomes if o.task_id == "task-unified-1767225600-000003"]
    assert stuck.kind in {OutcomeKind.COMPLETED, OutcomeKind.ABANDONED}
    assert unaccounted_tasks(report, server) == []
    assert report.reserved == server.reserved
    if stuck.kind is OutcomeKind.COMPLETED:
        assert_matches_server(report, server)


async def test_tasks_that_never_end_are_abandoned_at_the_deadline_with_their_hold() -> None:
    server = new_server()
    server.plans = {p: TaskPlan(final="never") for p in PROMPTS[:2]}
    report, _ = await run_batch(server, PROMPTS, max_in_flight=8, task_deadline=120)
    assert_one_outcome_each(report, 8)
    for outcome in report.outcomes[:2]:
        assert outcome.kind is OutcomeKind.ABANDONED
        assert outcome.error_code == "task_deadline"
        assert outcome.task is not None
        assert outcome.credits.reserved == 2
        assert outcome.credits.charged == 0
    assert report.elapsed < 600
    assert (report.reserved, report.charged) == (server.reserved, server.charged)
    assert report.reserved == report.charged + report.released + 4  # still held: two tasks
    assert_totals_are_sums(report)


async def test_a_task_that_vanishes_mid_watch_still_ends_the_input() -> None:
    server = new_server(batch_endpoint="missing")
    server.default_plan = TaskPlan(duration=30)
    server.plans = {PROMPTS[0]: TaskPlan(duration=300)}

    original = server.handle_async_request
    gone = []

    async def vanishing(request):  # the task expires on the server after a while
        if server.clock.time() - 1767225600 > 60:
            for task in server.tasks_for(PROMPTS[0]):
                gone.append(server.tasks.pop(task.id))
        return await original(request)

    server.handle_async_request = vanishing  # type: ignore[method-assign]
    report, _ = await run_batch(server, PROMPTS[:3], max_in_flight=3)
    assert_one_outcome_each(report, 3)
    assert report.outcomes[0].kind in {OutcomeKind.UNCERTAIN, OutcomeKind.ABANDONED}
    assert gone, "the task never vanished"
    assert report.outcomes[0].task_id == gone[0].id
    assert report.outcomes[0].credits.charged == 0
