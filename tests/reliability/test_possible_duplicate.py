"""A resend the server may have answered twice is never silent (`Outcome.possible_duplicate`).

Until a replayed answer has shown that the server honours idempotency keys, a create whose
first answer was lost is resent once. A server that ignores keys then makes a second task:
the outcome says so, the log warns, and the budget holds the task the batch cannot see.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from attack_ledger._harness import run_batch
from attack_ledger._server import Create, HostileServer
from evolink import OutcomeKind, SkipReason
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio


async def test_a_key_ignoring_server_answering_a_resend_afresh_is_flagged(caplog):
    server = HostileServer(VirtualClock(), honour_keys=False)
    server.create_faults = {"lost": [Create.TIMEOUT_AFTER_CREATE]}
    with caplog.at_level(logging.WARNING, logger="evolink"):
        report, client = await run_batch(server, ["lost", "fine"], max_in_flight=2)
    lost, fine = report.outcomes
    assert OutcomeKind.COMPLETED == lost.kind
    assert lost.possible_duplicate
    assert 2 == len(server.tasks_for("lost"))  # the second task the flag warns of
    assert not fine.possible_duplicate
    assert not client.idempotency_confirmed
    assert any("second task may be made" in r.getMessage() for r in caplog.records)


async def test_a_server_that_replays_the_resend_clears_the_flag():
    server = HostileServer(VirtualClock())  # honours keys: the resend is a replay
    server.create_faults = {"lost": [Create.TIMEOUT_AFTER_CREATE]}
    report, client = await run_batch(server, ["lost"], max_credits=10, price_hints={})
    (lost,) = report.outcomes
    assert OutcomeKind.COMPLETED == lost.kind
    assert not lost.possible_duplicate
    assert client.idempotency_confirmed
    assert 1 == len(server.tasks_for("lost"))


async def test_the_budget_holds_the_task_a_resend_may_have_doubled():
    """Budget 4 at 2 a task: the first input's answer is lost and its resend answered
    afresh. The task the first attempt may have made holds 2 for good, so the second
    input no longer fits: the server never commits more than the budget."""
    server = HostileServer(VirtualClock(), honour_keys=False)
    server.create_faults = {"a": [Create.TIMEOUT_AFTER_CREATE]}
    report, _ = await run_batch(
        server, ["a", "b"], max_credits=Decimal(4), price_hints={"gpt-image-2": Decimal(2)}
    )
    a, b = report.outcomes
    assert (OutcomeKind.COMPLETED, True) == (a.kind, a.possible_duplicate)
    assert (OutcomeKind.SKIPPED, SkipReason.BUDGET) == (b.kind, b.reason)
    assert Decimal(4) == server.peak_committed
