"""Rule 3: a refused batch read's ride-alongs go back to their own times.

A callback for a ride-along that comes while the refused batch request is in flight asks
for a read now (`Watcher.feed` sets `confirm`, as the task is being read); once the batch
is refused, the ride-along is put back to its planned time with `confirm` still set, so
the callback is confirmed only at that time (before the change: by GET at once).
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import httpx
import pytest

from evolink.testing import VirtualClock

# The hostile server of the waiting engine's blind suite, shared rather than copied.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "attack_waiting"))
from _attack14_server import HostileServer, client_for, task_of

pytestmark = pytest.mark.anyio


def _estimate(seconds: int):
    return lambda read, duration: seconds


class _SlowRefusal(HostileServer):
    """Refuses every batch read (500) after `delay` seconds on the clock; a hook runs
    while the request is in flight."""

    def __init__(self, clock, delay: float, during=None) -> None:
        super().__init__(
            clock,
            batch=lambda s, ids, n: httpx.Response(
                500, json={"error": {"code": "x", "message": "x", "type": "server_error"}}
            ),
        )
        self.delay, self.during = delay, during

    async def handle(self, request: httpx.Request) -> httpx.Response:
        response = self(request)
        if request.method == "POST" and request.url.path == "/v1/tasks/batch":
            if self.during is not None:
                self.during(self, list(self.requests[-1].ids))
            await self.clock.sleep(self.delay)
        return response

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


async def test_callback_for_ride_along_during_refused_batch_is_confirmed_promptly() -> None:
    clock = VirtualClock()
    fed: list[float] = []
    holder: dict[str, object] = {}

    def during(server: HostileServer, ids: list[str]) -> None:
        rider = holder["b"]
        if rider.id in ids and not fed:  # type: ignore[attr-defined]
            engine = holder["client"]._engine  # type: ignore[attr-defined]
            fed.append(clock.monotonic())
            engine.feed(server.body_now(rider))  # type: ignore[arg-type]

    server = _SlowRefusal(clock, delay=0.5, during=during)
    a = server.add(duration=20.0, estimate=_estimate(20), send_progress=False)
    # B truly ended long ago; its estimate says 24 (due after A's read, within the
    # look-ahead, so it rides along in A's batch request).
    b = server.add(duration=5.0, estimate=_estimate(24), send_progress=False)
    holder["b"] = b
    ended: dict[str, float] = {}
    async with client_for(server, clock) as client, clock.running():
        holder["client"] = client

        async def wait(task) -> None:
            await client.tasks.wait(task_of(server, task))
            ended[task.id] = clock.monotonic()

        with anyio.fail_after(30):  # real seconds
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait, a)
                tg.start_soon(wait, b)
    assert fed, "B never rode along in a batch read (the scenario did not happen)"
    # The callback said B is done while the refused request was in flight: it is read
    # once the request fails (half a second later), not at B's planned time (~24 s).

    assert ended[b.id] - fed[0] <= 1.5, (
        fed,
        ended,
        [(r.time, r.method, r.ids) for r in server.requests],
    )
