"""max_poll_interval=S: every running task read at least every S seconds after its last read
(plus a request's latency), seen done within S of its end, without a storm of reads, and with
the batch requests shared."""

from __future__ import annotations

import pytest

from . import _check
from ._scenarios import SCENARIOS, fuzz

pytestmark = pytest.mark.anyio

#: Scenarios without faults or latency: the ceiling holds for every gap.
CLEAN = [
    "gen_many",
    "gen_many_get",
    "batch_hurry",
    "many_waits",
    "many_waits_get",
    "mixed",
    "waits_by_id",
    "liar",
    "liar_get",
    "fastapi_callbacks",
    "never_ending",
]


@pytest.mark.parametrize("name", CLEAN)
@pytest.mark.parametrize("interval", [0.5, pytest.param(2.5, marks=pytest.mark.soak)])
async def test_every_running_task_read_within_the_interval(name: str, interval: float) -> None:
    server = await SCENARIOS[name]({"max_poll_interval": interval})
    gap, task_id, (t0, t1) = _check.worst_gap(server)
    assert gap <= interval + 1e-6, f"{task_id} unread from {t0} to {t1} ({gap:.3f} s)"
    assert _check.seen_late(server) <= interval + 1e-6


@pytest.mark.parametrize("name", ["gen_many", "liar", "many_waits", "mixed", "never_ending"])
@pytest.mark.parametrize("interval", [1.0, pytest.param(0.1, marks=pytest.mark.soak)])
async def test_no_storm(name: str, interval: float) -> None:
    """At most one read per interval beyond the plan's own (the same workload without the
    option), give or take two, per task."""
    server = await SCENARIOS[name]({"max_poll_interval": interval})
    plain = await SCENARIOS[name]({})
    extra = _check.extra_reads(server, plain, interval)
    assert extra <= 2, f"a task read {extra:.1f} times more than the plan + once per {interval} s"


@pytest.mark.parametrize("name", ["gen_many", "liar", "many_waits", "never_ending"])
@pytest.mark.parametrize(
    "interval",
    [1.0, pytest.param(0.5, marks=pytest.mark.soak), pytest.param(5.0, marks=pytest.mark.soak)],
)
async def test_batch_requests_shared(name: str, interval: float) -> None:
    """Not many batch requests a few milliseconds apart: the held reads go together."""
    server = await SCENARIOS[name]({"max_poll_interval": interval})
    batches = [r for r in server.reads() if r[1] == "POST"]
    close = _check.close_batches(server, 0.005)
    assert close <= max(2, len(batches) // 20), (close, len(batches))


@pytest.mark.parametrize(
    "seed", [*range(1, 4), *(pytest.param(s, marks=pytest.mark.soak) for s in range(4, 25))]
)
async def test_fuzz_ceiling(seed: int) -> None:
    """Random mixes (faults, latency, GET-only servers, deadlines, hurries): a gap after an
    answered read stays within the interval plus the request's latency."""
    interval = [0.1, 0.3, 1.0, 2.0, 5.0][seed % 5]
    server = await fuzz({"max_poll_interval": interval}, seed)
    gap, task_id, (t0, t1) = _check.worst_gap(server)
    latency = server.latency
    assert gap <= interval + latency + 1e-6, (
        f"{task_id} unread from {t0} to {t1} ({gap:.3f} s > {interval} + {latency})"
    )
