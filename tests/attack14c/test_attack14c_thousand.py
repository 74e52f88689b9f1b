"""A thousand request handlers waiting by id: they coalesce into batch reads.

waiting.md: concurrent waits share requests (batch reads of up to 50 ids); with batch
reads, 0.09-0.21 requests a task in the benchmark matrix.
"""

from __future__ import annotations

import anyio
import pytest
from _server14c import HostileServer, mean, no_estimate, no_progress, run

from evolink import Task
from evolink.testing import VirtualClock

#: Two of the eight in the default suite (each is 5-10 s); all eight in `nox -s soak`.
_DEFAULT = {("honest", 0.0, "on"), ("blind", 2.0, "off")}


@pytest.mark.parametrize(
    ("hints", "stagger", "batch"),
    [
        pytest.param(
            hints,
            stagger,
            batch,
            marks=() if (hints, stagger, batch) in _DEFAULT else pytest.mark.soak,
        )
        for batch in ("on", "off")
        for stagger in (0.0, 2.0)
        for hints in ("honest", "blind")
    ],
)
def test_thousand_waits_by_id_share_batch_reads(hints: str, stagger: float, batch: str) -> None:
    server = HostileServer(VirtualClock(), read_latency=0.05, batch_mode=batch)
    if hints == "blind":
        server.progress_of = no_progress
        server.estimate_of = no_estimate

    async def main(client):  # type: ignore[no-untyped-def]
        fakes = []
        returned: dict[str, tuple[Task, float]] = {}

        async def one(task_id: str, after: float) -> None:
            await server.clock.sleep(after)
            task = await client.tasks.wait(task_id)
            returned[task_id] = (task, server.clock.time())

        async with anyio.create_task_group() as tg:
            for n in range(1000):
                fake = server.add(duration=server.rng.uniform(2.0, 6.0))
                fakes.append(fake)
                tg.start_soon(one, fake.id, stagger * n / 1000)
        return fakes, returned

    fakes, returned = run(server, main)
    assert len(returned) == 1000
    assert all(t.status == "completed" for t, _ in returned.values())
    assert server.overlaps == []
    if batch == "on":
        assert max(server.batch_sizes) <= 50
        # Read requests a task: well under one (batch reads shared by every handler).
        assert server.read_requests / 1000 <= 0.5, (server.read_requests, server.gets)
    else:
        # 404 on the batch route: one GET per read; a few a task (about 2 in the matrix).
        # (the first reads of a thousand waits may go out in 20 batches at once)
        assert server.batch_requests <= 1000 / 50
        assert server.gets / 1000 <= 6.0, server.gets
    delays = [returned[f.id][1] - f.end_at for f in fakes]
    assert max(delays) <= 6.0 + 1.0, sorted(delays)[-5:]
    assert mean(delays) <= 0.5 * 4.0, mean(delays)
