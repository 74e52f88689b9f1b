"""The general promises under odd hints: one outcome per input, credits accounted for,
bounded detection, no storm, never two reads of a task at once, never a crash or hang."""

from __future__ import annotations

import anyio
import pytest
from _common14d import bound_violations, on_server, uniform

from evolink import OutcomeKind

pytestmark = pytest.mark.anyio

BEHAVIOURS = [
    ("none", "honest"),
    ("steps", "double"),
    ("slowfast", "half"),
    ("none", "missing"),
    ("none", "noisy"),
    ("linear", "garbage"),
    ("garbage", "honest"),
]


@pytest.mark.parametrize("batch_reads", [False, True])
@pytest.mark.parametrize(("progress", "estimate"), BEHAVIOURS)
async def test_promises_hold_whatever_the_hints(progress, estimate, batch_reads):
    n = 120
    async with on_server(
        progress=progress,
        estimate=estimate,
        durations=uniform(3),
        batch_endpoint=batch_reads,
        latency=0.1,
        seed=9,
    ) as (client, server, _clock):
        with anyio.fail_after(30):  # real seconds: a hang fails, not stalls
            report = await client.images.generate_many(
                [f"a lamp {i}" for i in range(n)], max_in_flight=30, batch_reads=batch_reads
            )
    assert [o.index for o in report.outcomes] == list(range(n))
    assert sum(report.counts.values()) == n
    # Every task ends on the server, so every input completes, created once each.
    assert report.counts[OutcomeKind.COMPLETED] == n, report.counts
    assert server.creates == n
    assert server.reserved == report.reserved
    assert report.reserved == report.charged + report.released
    assert sum(o.credits.reserved for o in report.outcomes) == report.reserved
    # Batch requests may wait up to 0.5 s for company (the docs' batch spacing).
    slack = 0.5 if batch_reads else 0.01
    bad = bound_violations(server, slack=slack)
    if progress in {"linear", "slowfast"} or batch_reads:
        # The docs' exceptions: two progress readings that agree are trusted to their end;
        # and a read that rode along in another task's batch request before its time does
        # not move the task's own next read (the bound holds from the planned reads).
        bad = [b for b in bad if b[1] != "later than the age"]
    assert [] == bad


async def test_bool_progress_in_create_answer_is_a_hint_not_an_undecodable_answer():
    """`progress: true` is nonsense, like "soon" or [] (which the SDK shrugs off). The
    create made a task; the SDK must not call its outcome unknown and resend it."""
    async with on_server(progress="linear", durations=lambda _i: 3.0) as (client, server, _c):
        orig = server._progress
        server._progress = lambda rec, now: True if now == rec.created else orig(rec, now)
        with anyio.fail_after(10):
            report = await client.images.generate_many(["a kite"], max_in_flight=4)
    assert server.creates == 1
    assert [OutcomeKind.COMPLETED] == [o.kind for o in report.outcomes], report.outcomes[0]


async def test_garbage_hints_on_reads_of_a_lone_wait_never_hang():
    async with on_server(progress="garbage", estimate="garbage", seed=4) as (client, server, _c):
        with anyio.fail_after(20):
            for _ in range(8):
                task = await client.images.generate("a moth")
                done = await client.tasks.wait(task, timeout=600)
                assert done.status.value == "completed"
    # A wait given a task knows its age from the `created` stamp, whole seconds (the docs:
    # the bound holds to about a second for a task under a second old).
    assert [] == bound_violations(server, slack=1.0)
