"""Attack 14f, promise 3: one outcome per input, no read storms, a bounded delay.

docs/explanation/waiting.md, "Why it is bounded": "never later than the bound: the first
read within 30 s; every later one within the task's age or 20 ms, whichever is longer (so
a task is seen done by twice its duration at the latest ...)"; "never a storm: every read
after the first comes at least 2 % of the task's age and 20 ms after the one before";
"These are the plan's times: with batch reads, a read due may wait for the next batch
request (at most 0.5 s, BATCH_SPACING_MAX)". README: "every prompt ends in exactly one
outcome (completed, failed, cancelled, rejected, skipped or uncertain)".

Each server behaviour of the simulator's documented knobs (and heavy tails) runs a fresh
batch of 50 tasks, 15 in flight, from the simulator's own record:

- every input has exactly one outcome, in input order, and it is the task's true end;
- no read of a task comes less than max(2 % of its age at the read before, 20 ms) after the
  read before;
- every task of at least 1 s (the blind schedule's first read is at 1 s, and the docs'
  "first read within 30 s" is not what is attacked here) is seen done by 2 x its duration
  + 20 ms with GETs, + 0.5 s with batch reads.

The docs' one exception ("two successive progress readings that predict the same end within
10 % are trusted to that end") cannot make a linear-progress task late (the prediction is
right); every server here where it could apply is named in its case.
"""

from __future__ import annotations

from typing import Any

import pytest
from _server14f import (
    CUBIC,
    DOUBLE,
    HONEST,
    LINEAR,
    MISSING,
    NONE,
    Behaviour,
    Regime,
    VirtualClock,
    batch_ids,
    client_for,
    in_order,
    make_sim,
    storm_violations,
    traces,
)

from evolink import OutcomeKind
from evolink.testing import Estimates, Faults, LogNormal, Pareto, PowerProgress, SteppedProgress

N, SLOTS = 50, 15

BEHAVIOURS: dict[str, Behaviour] = {
    "honest-linear": Behaviour(progress=LINEAR, estimates=HONEST),
    "coarse-steps": Behaviour(progress=SteppedProgress(25), estimates=HONEST),
    "no-progress": Behaviour(progress=NONE, estimates=HONEST),
    "slow-then-fast": Behaviour(progress=CUBIC, estimates=HONEST),
    "fast-then-slow": Behaviour(progress=PowerProgress(1 / 3), estimates=HONEST),
    "estimates-x2": Behaviour(progress=NONE, estimates=DOUBLE),
    "noisy-estimates": Behaviour(progress=NONE, estimates=Estimates(noise=0.5)),
    "blind": Behaviour(progress=NONE, estimates=MISSING),
    "lognormal-tail-blind": Behaviour(
        durations=LogNormal(median=4, sigma=0.8, cap=120), progress=NONE, estimates=MISSING
    ),
    "pareto-tail-linear": Behaviour(
        durations=Pareto(minimum=2, alpha=1.5, cap=200), progress=LINEAR, estimates=MISSING
    ),
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _late(batch, slack: float) -> list[tuple[str, float, float, list[float]]]:
    out = []
    for t in batch:
        if t.duration < 1.0:
            continue
        seen = t.seen_at
        if seen is None or seen - t.created > 2 * t.duration + slack + 1e-6:
            out.append(
                (
                    t.id,
                    round(t.duration, 3),
                    None if seen is None else round(seen - t.created, 3),
                    [round(r - t.created, 3) for r in t.reads],
                )
            )
    return out


async def _run(behaviour: Behaviour, *, batch_reads: bool, seed: int, faults: Faults | None = None):
    clock = VirtualClock()
    sim = make_sim(Regime(now=behaviour), clock, seed=seed, batch_endpoint=True, faults=faults)
    async with client_for(sim, clock) as client, clock.running():
        report = await client.images.generate_many(
            [f"bound {i}" for i in range(N)],
            max_in_flight=SLOTS,
            batch_reads=batch_reads,
            model="gpt-image-2",
        )
    return sim, report


def _one_outcome_each(sim, report) -> None:
    assert len(report.outcomes) == N
    assert [o.index for o in report.outcomes] == list(range(N))
    assert sum(report.counts.values()) == N
    ids = [o.task.id for o in report.outcomes if o.task is not None]
    assert len(ids) == len(set(ids)) == N
    for o in report.outcomes:
        truth = sim.task(o.task.id).final_status.value
        assert o.kind.value == truth, (o.index, o.kind, truth)


def _assert_bounds(sim: Any, report: Any, *, slack: float) -> None:
    """One outcome per input; no storm; each task seen done by 2 x its duration + `slack`."""
    _one_outcome_each(sim, report)
    batch = in_order(traces(sim), batch_ids(report))
    storms = storm_violations(batch)
    late = _late(batch, slack)
    assert not storms, f"{len(storms)} storm reads: {storms[:5]}"
    assert not late, f"{len(late)} of {N} seen after 2 x D + {slack} s: {late[:5]}"


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(BEHAVIOURS))
async def test_bounds_with_gets(name: str) -> None:
    """One outcome per input; no storm; seen done by 2 x the duration (+20 ms) (one batch
    of 50, GETs)."""
    sim, report = await _run(BEHAVIOURS[name], batch_reads=False, seed=21)
    _assert_bounds(sim, report, slack=0.02)


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["honest-linear", "no-progress", "estimates-x2", "blind"])
async def test_bounds_with_batch_reads(name: str) -> None:
    """With batch reads: one outcome per input; no storm; seen done by 2 x the duration
    plus the batch request's spacing (at most 0.5 s, BATCH_SPACING_MAX)."""
    sim, report = await _run(BEHAVIOURS[name], batch_reads=True, seed=22)
    _assert_bounds(sim, report, slack=0.5)


@pytest.mark.anyio
@pytest.mark.parametrize("batch_reads", [False, True])
async def test_one_outcome_each_under_faults(batch_reads: bool) -> None:
    """'every prompt ends in exactly one outcome' with failed and cancelled tasks and 10 %
    of reads answering 5xx; reads still never storm (the retried reads are reads: 'Read
    errors are retried after 1 s, doubling per failure')."""
    faults = Faults(task_failure=0.1, cancellation=0.05, read_errors=0.1)
    sim, report = await _run(
        Behaviour(progress=LINEAR, estimates=HONEST),
        batch_reads=batch_reads,
        seed=23,
        faults=faults,
    )
    _one_outcome_each(sim, report)
    kinds = report.counts
    assert kinds[OutcomeKind.FAILED] + kinds[OutcomeKind.CANCELLED] > 0
    batch = in_order(traces(sim), batch_ids(report))
    storms = storm_violations(batch)
    assert not storms, f"{len(storms)} storm reads: {storms[:5]}"
