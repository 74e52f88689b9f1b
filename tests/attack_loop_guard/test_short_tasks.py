"""Tasks of 3-10 s whose progress lies (stuck at 99 % from a tenth of the way, or a
sawtooth restarting from 0), one GET per read, three batches of 150 on 30 slots.

"never to a schedule that reads more often than the loop would" / the brief's "never more
than a 1 s loop's reads": checked per task (strict) and on average."""

from __future__ import annotations

import functools

import anyio
import pytest
from _harness import BatchResult, make, one_outcome_each, run_batch
from _servers import Sawtooth, StuckAt

from evolink.testing import Uniform

CASES = {"stuck-at-99": StuckAt(99, 0.1), "sawtooth": Sawtooth(0.1)}


@functools.cache
def life(name: str) -> tuple[BatchResult, ...]:
    async def go() -> tuple[BatchResult, ...]:
        sim, clock, client = make(seed=3, durations=Uniform(3, 10), progress=CASES[name])
        async with client:
            return tuple(
                [await run_batch(sim, clock, client, 150, 30, prefix=f"b{b}") for b in range(3)]
            )

    return anyio.run(go)


@pytest.mark.parametrize("name", list(CASES))
def test_mean_reads_within_loop(name: str) -> None:
    for r in life(name):
        one_outcome_each(r)
        ours = sum(v.reads_to_seen for v in r.views) / len(r.views)
        loop = sum(v.loop_reads for v in r.views) / len(r.views)
        assert ours <= loop, f"{name}: {ours:.2f} reads a task vs the loop's {loop:.2f}"


@pytest.mark.parametrize("name", list(CASES))
def test_no_task_read_more_often_than_loop(name: str) -> None:
    over = [
        f"batch {i}: D={v.duration:.2f}s read {v.reads_to_seen} times vs the loop's {v.loop_reads} "
        f"(ages {[round(x - v.created, 2) for x in v.reads]})"
        for i, r in enumerate(life(name))
        for v in r.views
        if v.reads_to_seen > v.loop_reads
    ]
    n = sum(len(r.views) for r in life(name))
    assert not over, f"{name}: {len(over)} of {n} tasks: " + "; ".join(over[:3])
