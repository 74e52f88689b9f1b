"""The bounded-delay fallback: nothing known, no hint.

Issue 14: "a bounded-delay schedule (the wait before a re-read is a bounded fraction of the
task's age, so a task's detection delay stays a small fraction of its duration) where
nothing is known yet". waiting.md: "Nothing known and no hint (no estimate, no progress, no
record): the first read after 1 s, then each 50 % of the task's age later (20 % with batch
reads), a bounded-delay schedule: a task of duration D is seen done by 1.5 D at the
latest."

Reads of such a schedule grow geometrically, so a task of duration T costs about
log(T) / log(1.5) reads (log(T) / log(1.2) at batch reads' 20 %), not T / 1 s.
"""

from __future__ import annotations

import itertools
import math

import pytest
from _attack14_server import (
    HostileServer,
    batch_ok,
    client_for,
    no_estimate,
    task_of,
    within,
)

from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio


async def _blind_wait(duration: float, batch_endpoint: bool) -> tuple[float, list[float]]:
    clock = VirtualClock()
    server = HostileServer(clock, batch=batch_ok if batch_endpoint else None)
    async with client_for(server, clock) as client, clock.running():
        task = server.add(duration=duration, estimate=no_estimate, send_progress=False)
        ended = await within(
            clock, 3 * duration + 100, lambda: client.tasks.wait(task_of(server, task))
        )
    assert ended.error is None, repr(ended.error)
    assert ended.value.status.value == "completed"
    assert ended.value.id == task.id
    assert ended.at is not None
    return ended.at, task.reads


@pytest.mark.parametrize("batch_endpoint", [True, False], ids=["batch-endpoint", "get-only"])
@pytest.mark.parametrize("duration", [2.0, 13.0, 60.0, 600.0, 3600.0])
async def test_attack14_blind_task_seen_by_one_and_a_half_its_duration(
    duration: float, batch_endpoint: bool
) -> None:
    """Promise: "a task of duration D is seen done by 1.5 D at the latest" (and the first
    read comes after 1 s, so below 1 s the bound is the first read)."""
    seen, reads = await _blind_wait(duration, batch_endpoint)
    assert seen <= max(1.5 * duration, 1.0) + 0.05, f"seen at {seen:.2f} for D={duration}"
    assert reads[0] >= 1.0 - 1e-6, f"first read at {reads[0]:.3f}, before 1 s"


@pytest.mark.parametrize("batch_endpoint", [True, False], ids=["batch-endpoint", "get-only"])
@pytest.mark.parametrize("duration", [60.0, 600.0, 3600.0])
async def test_attack14_blind_task_costs_logarithmic_reads(
    duration: float, batch_endpoint: bool
) -> None:
    """Promise: "then each 50 % of the task's age later (20 % with batch reads)": a blind
    task of duration T costs O(log T) reads. Checked against the more generous 20 %:
    at most log(T) / log(1.2) + 5 reads."""
    _, reads = await _blind_wait(duration, batch_endpoint)
    bound = math.log(duration) / math.log(1.2) + 5
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(reads)]
    assert len(reads) <= bound, (
        f"{len(reads)} reads for a blind task of {duration:.0f} s (bound {bound:.0f}); "
        f"gaps near the end {gaps[-8:]}"
    )


@pytest.mark.parametrize("batch_endpoint", [True, False], ids=["batch-endpoint", "get-only"])
async def test_attack14_each_gap_is_a_bounded_fraction_of_the_age(batch_endpoint: bool) -> None:
    """Promise: "the wait before a re-read is a bounded fraction of the task's age" and at
    most 50 % of it (waiting.md): no gap of the blind schedule exceeds half the age at the
    read before it, and none is a fixed small step where a fraction was promised (each is
    at least 2 % of the age, "never a storm")."""
    _, reads = await _blind_wait(1000.0, batch_endpoint)
    for before, after in itertools.pairwise(reads):
        assert after - before <= 0.5 * before + 0.05, (before, after)
        assert after - before >= 0.02 * before - 1e-6, (before, after)
