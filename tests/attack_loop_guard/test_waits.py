"""100 concurrent `client.tasks.wait` on tasks of 60-600 s, one GET per read (the server
has no batch endpoint), after a batch of 150 taught the client the model. Waits are never
hurried: their reads are priced as always, so the loop guard ("never slower than a 1 s
loop, where a hint says where to read") is all that holds them near a loop.

Compared: each wait's lateness (the read that saw the task done, less its end) with a 1 s
loop's ceil(D) - D on the same task."""

from __future__ import annotations

import functools

import anyio
import pytest
from _harness import TaskView, make, run_batch, task_views

from evolink.testing import LinearProgress, NoProgress, SteppedProgress, Uniform

CASES = {
    "linear": LinearProgress(),
    "no-progress-honest-estimates": NoProgress(),
    "coarse-steps": SteppedProgress(25),
}


@functools.cache
def waits(name: str) -> tuple[list[TaskView], list[str]]:
    async def go() -> tuple[list[TaskView], list[str]]:
        sim, clock, client = make(
            seed=4, batch_endpoint=False, durations=Uniform(60, 600), progress=CASES[name]
        )
        async with client:
            await run_batch(sim, clock, client, 150, 30, prefix="train")
            before = set(sim.tasks)
            async with clock.running():
                tasks = [await client.images.generate(f"wait {i}") for i in range(100)]
                done: list[str] = []

                async def one(t):  # type: ignore[no-untyped-def]
                    got = await client.tasks.wait(t)
                    done.append(got.status.value)

                async with anyio.create_task_group() as tg:
                    for t in tasks:
                        tg.start_soon(one, t)
        return [v for v in task_views(sim) if v.id not in before], done

    return anyio.run(go)


@pytest.mark.parametrize("name", list(CASES))
def test_waits_mean_lateness_within_loop(name: str) -> None:
    views, statuses = waits(name)
    assert len(statuses) == 100
    assert set(statuses) == {"completed"}
    ours = sum(v.late for v in views) / len(views)
    loop = sum(v.loop_late for v in views) / len(views)
    worst = max(views, key=lambda v: v.late)
    reads = sum(v.reads_to_seen for v in views) / len(views)
    assert ours <= loop + 0.01, (
        f"{name}: 100 waits seen {ours:.3f}s late on average vs the loop's {loop:.3f}s "
        f"({reads:.2f} GETs a task); worst D={worst.duration:.1f}s {worst.late:.2f}s late, "
        f"reads at "
        f"{[round(x - worst.created, 1) for x in worst.reads]}"
    )
