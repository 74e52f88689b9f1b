"""Running a batch against the hostile server, and the ledger promises as assertions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio

from evolink import AsyncEvolink, BatchReport, Outcome, OutcomeKind, RetryPolicy
from evolink.testing import VirtualClock

from ._server import BASE_URL, SECRET_KEY, HostileServer

#: Real seconds any one batch may take: everything runs on a virtual clock, so a batch
#: that needs more than this is stuck, not slow.
REAL_DEADLINE = 8.0

FAST_RETRIES = RetryPolicy(max_retries=2, initial_delay=0.2, max_delay=1.0)


def new_server(**kwargs: Any) -> HostileServer:
    return HostileServer(VirtualClock(), **kwargs)


@asynccontextmanager
async def client_for(server: HostileServer, **kwargs: Any) -> AsyncIterator[AsyncEvolink]:
    kwargs.setdefault("retry_policy", FAST_RETRIES)
    async with AsyncEvolink(
        api_key=SECRET_KEY, base_url=BASE_URL, transport=server, clock=server.clock, **kwargs
    ) as client:
        async with server.clock.running():
            yield client


async def run_batch(
    server: HostileServer, inputs: Sequence[Any], **options: Any
) -> tuple[BatchReport, AsyncEvolink]:
    async with client_for(server) as client:
        with anyio.fail_after(REAL_DEADLINE):
            report = await client.images.generate_many(list(inputs), **options)
    server.settle()
    return report, client


# ----- the promises -----


def assert_one_outcome_each(report: BatchReport, count: int) -> None:
    """Every input has exactly one outcome, in input order, of a known kind."""
    assert len(report) == count, f"{len(report)} outcomes for {count} inputs"
    assert [o.index for o in report.outcomes] == list(range(count))
    for outcome in report.outcomes:
        assert isinstance(outcome.kind, OutcomeKind)
    assert sum(report.counts.values()) == count


def assert_totals_are_sums(report: BatchReport) -> None:
    """The report's totals are the sums over its outcomes' credits.

    (A second input sharing a task carries no credits of its own: the task counts once.)
    """
    outcomes = report.outcomes
    sums = tuple(
        sum((getattr(o.credits, part) for o in outcomes), Decimal(0))
        for part in ("reserved", "charged", "released")
    )
    totals = (report.reserved, report.charged, report.released)
    assert totals == sums, f"report totals {totals} != sums over its outcomes {sums}"
    for outcome in report.outcomes:
        if outcome.task_id is None:
            assert outcome.credits.reserved == 0, outcome
            assert outcome.credits.charged == 0, outcome


def assert_matches_server(report: BatchReport, server: HostileServer) -> None:
    """What the report says was reserved, charged and released is what the server did."""
    server.settle()
    assert (report.reserved, report.charged, report.released) == (
        server.reserved,
        server.charged,
        server.released,
    ), f"report {report!r} vs server {server.reserved}/{server.charged}/{server.released}"


def unaccounted_tasks(
    report: BatchReport, server: HostileServer, created: Iterable[Any] = ()
) -> list[str]:
    """Tasks the server made (and is charging for) that the report does not surface.

    A task is surfaced if the report names it (an outcome's task, or `created()`), or if
    an `uncertain` outcome, or one flagged `possible_duplicate`, carries the idempotency
    key it was made under: the caller can then settle it without paying twice. A task
    made under the key of an outcome that reports a *different* task is a silent second
    payment.
    """
    named = {o.task_id for o in report.outcomes if o.task_id is not None}
    named |= {t.id for t in created}
    # (An outcome flagged `possible_duplicate` says its key may have made a task it does
    # not name: surfaced, not silent, as guarantees.md now documents.)
    uncertain_keys = {
        o.idempotency_key
        for o in report.outcomes
        if (o.kind is OutcomeKind.UNCERTAIN or o.possible_duplicate) and o.idempotency_key
    }
    return [
        t.id
        for t in server.tasks.values()
        if t.id not in named and (t.key is None or t.key not in uncertain_keys)
    ]


def assert_key_hidden(*objects: Any) -> None:
    for obj in objects:
        for text in _texts(obj):
            assert SECRET_KEY not in text, f"the API key leaked in {text[:300]!r}"
            assert SECRET_KEY[7:] not in text, f"the API key's body leaked in {text[:300]!r}"


def _texts(obj: Any) -> list[str]:
    texts = [repr(obj), str(obj)]
    to_json = getattr(obj, "to_json", None)
    if callable(to_json):
        texts.append(to_json())
    if isinstance(obj, BatchReport):
        for outcome in obj.outcomes:
            texts.extend(_texts(outcome))
    if isinstance(obj, Outcome):
        texts.append(str(obj.error_message))
    if isinstance(obj, BaseException):
        texts.append(json.dumps([str(a) for a in obj.args]))
        texts.extend(f"{k}={v!r}" for k, v in vars(obj).items())
        for linked in (obj.__cause__, obj.__context__):
            if linked is not None:
                texts.extend(_texts(linked))
    return texts
