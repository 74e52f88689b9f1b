"""The server's clock minutes behind or ahead of ours: a fresh task is not read late.

_server_clock / tasks.wait: a task's age comes from its `created` stamp, corrected by the
server's clock offset learned from our creates' stamps, else from `Date` headers.
"""

from __future__ import annotations

import anyio
import pytest
from _server14c import Ended, HostileServer, linear, no_estimate, no_progress, pool, run

from evolink.testing import VirtualClock

SKEWS = [-300.0, -61.0, 61.0, 300.0]


def _late_bound(duration: float) -> float:
    return max(1.0 * duration, 3.0)


@pytest.mark.parametrize("skew", SKEWS)
@pytest.mark.parametrize("by_id", [False, True])
@pytest.mark.parametrize("date_header", [True, False])
def test_created_by_this_client(skew: float, by_id: bool, date_header: bool) -> None:
    server = HostileServer(VirtualClock(), skew=skew, date_header=date_header)
    server.duration_of = lambda _m: 8.0 * server.rng.uniform(0.9, 1.1)

    async def main(client):  # type: ignore[no-untyped-def]
        return await pool(client, server, 24, 8, by_id=by_id)

    ended: list[Ended] = run(server, main)
    assert all(e.status == "completed" for e in ended)
    late = [e.delay for e in ended if e.delay > _late_bound(e.duration)]
    assert not late, late
    assert not server.overlaps


@pytest.mark.parametrize("skew", SKEWS)
@pytest.mark.parametrize("batch", ["on", "off"])
@pytest.mark.parametrize("hints", ["honest", "blind"])
def test_waits_by_id_of_tasks_made_elsewhere(skew: float, batch: str, hints: str) -> None:
    """FastAPI style: the tasks were made by another process; the handlers wait by id. The
    server's `Date` header tells its clock (it is as skewed as its stamps)."""
    server = HostileServer(VirtualClock(), skew=skew, batch_mode=batch)
    if hints == "blind":
        server.progress_of = no_progress
        server.estimate_of = no_estimate
    else:
        server.progress_of = linear
    # Some fresh, some already part-way when their wait starts.
    fakes = [server.add(duration=10.0, age=age) for age in (0.0, 0.0, 0.5, 2.0, 5.0, 8.0)]

    async def main(client):  # type: ignore[no-untyped-def]
        returned: dict[str, float] = {}

        async def one(task_id: str) -> None:
            done = await client.tasks.wait(task_id)
            assert done.status == "completed"
            returned[task_id] = server.clock.time()

        async with anyio.create_task_group() as tg:
            for fake in fakes:
                tg.start_soon(one, fake.id)
        return returned

    returned = run(server, main)
    for fake in fakes:
        delay = returned[fake.id] - fake.end_at
        assert delay <= _late_bound(fake.duration), (fake.id, delay)
    assert not server.overlaps
