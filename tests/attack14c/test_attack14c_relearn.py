"""A model whose speed changes in the middle of the client's life: the engine relearns.

waiting.md: the engine keeps each model's last 160 ends and leans on whatever has proven
predictive; a task is never seen done later than its age past the bound (every later read
within the task's age). After a speed change and a few record's worth of tasks, the delays
must be back to a small share of the new duration, with GETs only and with batch reads.
"""

from __future__ import annotations

import pytest
from _server14c import MISSING, Ended, HostileServer, mean, no_progress, pool, run

from evolink.testing import VirtualClock


def _phases(
    *, batch: str, first: float, second: float, stale_estimate: bool, n1: int, n2: int
) -> tuple[list[Ended], list[Ended], HostileServer]:
    server = HostileServer(VirtualClock(), batch_mode=batch)
    server.progress_of = no_progress
    speed = [first]

    def duration(_model: str) -> float:
        return speed[0] * server.rng.uniform(0.85, 1.15)

    server.duration_of = duration
    if stale_estimate:
        # The server's estimate keeps saying what the model used to take.
        server.estimate_of = lambda _t, _n: round(first)
    else:
        server.estimate_of = lambda _t, _n: MISSING

    async def main(client):  # type: ignore[no-untyped-def]
        before = await pool(client, server, n1, 16)
        speed[0] = second
        after = await pool(client, server, n2, 16)
        return before, after

    before, after = run(server, main)
    return before, after, server


def _check(ended: list[Ended], duration: float, *, share: float, most_reads: float | None) -> None:
    assert all(e.status == "completed" for e in ended)
    tail = ended[-48:]
    delays = [e.delay for e in tail]
    # Documented bound: every read after the first within the task's age -> the end is
    # seen within about one duration (plus a request's latency).
    assert max(delays) <= max(1.0 * duration, 3.0) + 1.0, sorted(delays)[-5:]
    assert mean(delays) <= share * duration, (mean(delays), sorted(delays)[-5:])
    if most_reads is not None:  # GETs: each read is a request
        assert mean([e.reads for e in tail]) <= most_reads, mean([e.reads for e in tail])


@pytest.mark.parametrize("batch", ["off", "on"])
@pytest.mark.parametrize("stale_estimate", [False, True])
def test_model_gets_50x_faster(batch: str, stale_estimate: bool) -> None:
    before, after, server = _phases(
        batch=batch, first=100.0, second=2.0, stale_estimate=stale_estimate, n1=64, n2=220
    )
    assert not server.overlaps
    reads = 8 if batch == "off" else None
    _check(before, 100.0, share=0.5, most_reads=reads)
    # Relearnt: the last tasks are seen within a small share of the new duration.
    _check(after, 2.0, share=0.5, most_reads=reads)
    # Batch reads: requests, not reads, are what is spent (16 tasks at once: at most
    # 0.5 s apart, waiting.md); fewer requests than with GETs.
    if batch == "on":
        assert server.read_requests <= 3 * (len(before) + len(after))


@pytest.mark.parametrize("batch", ["off", "on"])
@pytest.mark.parametrize("stale_estimate", [False, True])
def test_model_gets_10x_slower(batch: str, stale_estimate: bool) -> None:
    before, after, server = _phases(
        batch=batch, first=3.0, second=30.0, stale_estimate=stale_estimate, n1=100, n2=220
    )
    assert not server.overlaps
    reads = 8 if batch == "off" else None
    _check(before, 3.0, share=0.5, most_reads=reads)
    _check(after, 30.0, share=0.5, most_reads=reads)
