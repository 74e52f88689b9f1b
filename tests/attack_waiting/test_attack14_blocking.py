"""The blocking client's wait: the same engine, from threads.

waiting.md: "Every batch, every `client.tasks.wait` (and the blocking door over it) [...]
register their tasks with the client's one engine". docs/how-to/sync.md: "It is not a
second implementation [...] So retries, idempotency keys, the read plan and budgets behave
exactly as in the async client."

`Evolink` takes no `clock=`, so these run on real time, with tasks of well under a second;
nothing here asserts on elapsed time, only on results and request counts.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from _attack14_server import API_KEY, BASE_URL, HostileServer, RealClock, task_of

from evolink import Evolink, NotFoundError, WaitTimeoutError


def _client(server: HostileServer) -> Evolink:
    return Evolink(api_key=API_KEY, base_url=BASE_URL, transport=server.transport())


def test_attack14_blocking_waits_from_threads_share_batch_reads() -> None:
    """Promise: waits from 16 threads on one blocking client go through the one engine:
    each returns its own task as it ended, and they are read in shared batch reads: fewer
    read requests than tasks in all (a task left waiting alone may be read with a GET:
    "A lone task waited for alone is read with a GET")."""
    server = HostileServer(RealClock())
    finals = ["completed", "completed", "failed", "cancelled"]
    tasks = [server.add(duration=0.3 + 0.04 * i, final=finals[i % 4]) for i in range(16)]
    with _client(server) as client, ThreadPoolExecutor(16) as pool:
        done = list(pool.map(lambda t: client.tasks.wait(task_of(server, t), timeout=30), tasks))
    for task, result in zip(tasks, done, strict=True):
        assert result.id == task.id
        assert result.status.value == task.final
        assert list(result.results) == task.results
    assert server.batch_requests()
    assert server.read_requests() < len(tasks)


def test_attack14_blocking_wait_survives_hostile_hints() -> None:
    """Promise: the read plan "behave[s] exactly as in the async client": progress that
    goes backwards and an estimate of 0 still end the wait with the completed task, with
    reads that are never a storm (far fewer than one per 20 ms)."""
    server = HostileServer(RealClock())
    task = server.add(
        duration=0.8,
        estimate=lambda r, d: 0,
        progress=lambda r, a, d: [90, 10, 100, 0][r % 4],
    )
    with _client(server) as client:
        done = client.tasks.wait(task.id, timeout=30)
    assert done.id == task.id
    assert done.status.value == "completed"
    assert len(task.reads) <= 0.8 / 0.02


def test_attack14_blocking_timeout_and_vanished_task() -> None:
    """Promise (tasks.wait): `WaitTimeoutError` after `timeout` for a task that never ends
    (carrying the last read), and `get`'s `NotFoundError` for one that expires mid-wait,
    in the blocking client as in the async one."""
    server = HostileServer(RealClock())
    never = server.add(duration=float("inf"))
    gone = server.add(duration=60.0, vanish_at=0.5)
    with _client(server) as client:
        with pytest.raises(WaitTimeoutError) as timed_out:
            client.tasks.wait(never.id, timeout=0.6)
        assert timed_out.value.task.id == never.id
        with pytest.raises(NotFoundError):
            client.tasks.wait(gone.id, timeout=5)
