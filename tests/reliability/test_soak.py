"""Soak under faults: every prompt ends once, credits agree to the cent, nothing is paid twice.

Runs the SDK against the real simulator in-process on a virtual clock, with every fault on
at once. The CI size is 200 prompts; `nox -s soak` sets EVOLINK_SOAK_PROMPTS=2000.
"""

from __future__ import annotations

import os
from collections import Counter
from decimal import Decimal

import pytest
from _figures import record

from evolink import AsyncEvolink, GenerationRequest, OutcomeKind, RetryPolicy
from evolink.testing import TEST_API_KEY, Faults, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

PROMPTS = int(os.environ.get("EVOLINK_SOAK_PROMPTS", "200"))

ALL_FAULTS = Faults(
    rate_limit=0.10,
    read_errors=0.05,
    create_errors=0.03,
    lost_create_response=0.02,
    malformed_json=0.01,
    task_failure=0.05,
    cancellation=0.01,
    partial_completion=0.05,
)


async def soak(seed: int, faults: Faults, prompts: int, *, balance: int = 10_000, **options):
    clock = VirtualClock()
    sim = Simulator(
        clock=clock,
        seed=seed,
        durations=(2, 8),
        faults=faults,
        retry_after=1.0,
        balance=balance,
    )
    requests = [
        GenerationRequest(prompt=f"soak prompt {i}", n=(1, 2, 4)[i % 3]) for i in range(prompts)
    ]
    async with (
        clock.running(),
        AsyncEvolink(
            api_key=TEST_API_KEY,
            base_url="https://sim.test",
            transport=sim.transport(),
            clock=clock,
            retry_policy=RetryPolicy(max_retries=3, max_delay=2.0),
        ) as client,
    ):
        report = await client.images.generate_many(requests, max_in_flight=32, **options)
    return sim, report


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in (1, 2)])
async def test_soak_with_every_fault(anyio_backend, seed):
    """Each input has one outcome; no input made two tasks; the ledgers agree to the cent."""
    # Enough credits for every prompt at 4 images and its resubmission (a 402 would stop it).
    sim, report = await soak(seed, ALL_FAULTS, PROMPTS, retry_failed=1, balance=PROMPTS * 25)

    assert PROMPTS == len(report.outcomes)
    assert list(range(PROMPTS)) == [o.index for o in report.outcomes]
    # The server honours idempotency keys, so no outcome is left uncertain.
    assert 0 == report.counts[OutcomeKind.UNCERTAIN]
    assert 0 == report.counts[OutcomeKind.REJECTED]
    # No input caused more than one task, except resubmissions the batch counted.
    per_prompt = Counter(task.prompt for task in sim.tasks.values())
    assert PROMPTS + report.resubmitted == sum(per_prompt.values())
    resubmitted = sum(max(0, o.attempts - 1) for o in report.outcomes)
    assert report.resubmitted == resubmitted
    # The SDK's ledger equals the simulator's, to the cent.
    assert sim.ledger.reserved == report.reserved
    assert sim.ledger.charged == report.charged
    assert sim.ledger.released == report.released
    assert Decimal(0) == sim.ledger.outstanding
    # Every completed outcome has its images.
    for outcome in report.completed:
        assert outcome.results
        assert outcome.task is not None
        assert sim.task(outcome.task.id).images == len(outcome.results)
    faults = Counter(r.fault for r in sim.requests if r.fault is not None)
    record(
        "soak",
        {
            "runs": 1,
            "prompts": PROMPTS,
            "requests": len(sim.requests),
            "faults": sum(faults.values()),
            **{f"fault_{kind}": count for kind, count in faults.items()},
            "failed_tasks": sum(
                1 for t in sim.tasks.values() if t.final_status.value != "completed"
            ),
            "resubmitted": report.resubmitted,
            "lost": PROMPTS - len(report.outcomes),
            "duplicated": sum(per_prompt.values()) - PROMPTS - report.resubmitted,
            "charged": str(sim.ledger.charged),
        },
    )


async def test_budget_holds_under_faults(anyio_backend):
    """With max_credits and faults, the batch never commits more than its budget."""
    sim, report = await soak(3, ALL_FAULTS, 60, max_credits=100)
    assert sim.ledger.charged <= 100
    assert report.charged <= 100
    assert report.skipped_for_budget > 0
    assert sim.ledger.charged == report.charged


async def test_without_batch_endpoint_nothing_changes_but_the_requests(anyio_backend):
    """A server without batch reads gets one GET per read, and the same outcomes."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=5, durations=(2, 8), batch_endpoint=False)
    async with (
        clock.running(),
        AsyncEvolink(
            api_key=TEST_API_KEY,
            base_url="https://sim.test",
            transport=sim.transport(),
            clock=clock,
        ) as client,
    ):
        report = await client.images.generate_many([f"p{i}" for i in range(40)], max_in_flight=10)
    assert report.ok
    assert 1 == sim.count("POST", "/v1/tasks/batch")
    # Reads wait at most a task's age (bounded delay): a little over two reads a task, and
    # more while the engine learns the model, which is all of a 40-task batch (one task in
    # four probes early, and again where it first plans on a young progress band: an
    # unprobed band can settle on the hint's word): 3.125 with this seed (2.975 before
    # the second probe). A large batch costs 2.1-3.0 (docs/benchmarks/matrix.md).
    assert sim.count("GET", "/v1/tasks/") / 40 <= 3.2
