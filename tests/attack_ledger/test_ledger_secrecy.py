"""The API key never appears in reports, reprs, errors or logs, however the server quotes it."""

from __future__ import annotations

import logging
import traceback

import anyio
import pytest

from evolink import (
    AuthenticationError,
    BatchProgress,
    EvolinkError,
    InsufficientCreditsError,
    OutcomeKind,
    SkipReason,
    SubmissionUncertainError,
)

from ._harness import (
    REAL_DEADLINE,
    assert_key_hidden,
    assert_matches_server,
    assert_one_outcome_each,
    client_for,
    new_server,
    run_batch,
)
from ._server import SECRET_KEY, Create, TaskPlan

pytestmark = pytest.mark.anyio

PROMPTS = [f"secret prompt {i}" for i in range(6)]


async def test_a_batch_against_a_server_quoting_the_key_leaks_it_nowhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = new_server()
    server.plans = {PROMPTS[0]: TaskPlan(final="failed", credits_used=None)}
    server.create_faults = {
        PROMPTS[1]: [Create.TIMEOUT_AFTER_CREATE, Create.TIMEOUT_AFTER_CREATE],
        PROMPTS[4]: [Create.NO_CREDITS],
    }
    snapshots: list[BatchProgress] = []
    report, client = await run_batch(server, PROMPTS, max_in_flight=1, on_progress=snapshots.append)
    assert_one_outcome_each(report, 6)
    assert report.outcomes[0].kind is OutcomeKind.FAILED
    assert report.outcomes[1].kind is OutcomeKind.UNCERTAIN
    assert_key_hidden(report, client, *snapshots)
    for record in caplog.records:
        assert SECRET_KEY not in record.getMessage()
        assert SECRET_KEY not in repr(record.args)


async def test_a_401_quoting_the_key_stops_the_batch_without_leaking_it() -> None:
    server = new_server()
    server.create_faults = {PROMPTS[2]: [Create.UNAUTHORIZED]}
    report, _ = await run_batch(server, PROMPTS, max_in_flight=1)
    assert_one_outcome_each(report, 6)
    assert [o.kind for o in report.outcomes[:2]] == [OutcomeKind.COMPLETED] * 2
    assert all(o.task_id is None for o in report.outcomes[2:])
    assert all(o.reason is SkipReason.UNAUTHORIZED for o in report.outcomes[3:])
    assert len(server.creates()) == 3
    assert_key_hidden(report)
    assert_matches_server(report, server)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Create.NO_CREDITS, InsufficientCreditsError),
        (Create.UNAUTHORIZED, AuthenticationError),
        (Create.TIMEOUT_AFTER_CREATE, SubmissionUncertainError),
    ],
    ids=["402", "401", "uncertain"],
)
async def test_single_creates_raise_errors_without_the_key(
    fault: Create, error: type[EvolinkError]
) -> None:
    server = new_server()
    server.create_faults = {"x": [fault] * 3}
    async with client_for(server) as client:
        with anyio.fail_after(REAL_DEADLINE):
            with pytest.raises(error) as caught:
                await client.images.generate("x")
    assert_key_hidden(caught.value)
    assert SECRET_KEY not in "".join(traceback.format_exception(caught.value))
