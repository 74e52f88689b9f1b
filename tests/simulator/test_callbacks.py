"""Callback delivery: the documented schedule, its faults, and a real local receiver."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from _sim_support import api, create_id

from evolink._clock import SYSTEM_CLOCK
from evolink.testing import Faults, Fixed, Simulator, Uniform, VirtualClock
from evolink.testing._uvicorn import serve_app_in_thread

pytestmark = pytest.mark.anyio
HOOK = "https://hooks.example.com/evolink"


class Receiver:
    """An in-process callback receiver answering a script of statuses, then 200."""

    def __init__(self, clock: VirtualClock, *script: int | type[Exception]) -> None:
        self.clock = clock
        self.script = list(script)
        self.bodies: list[dict[str, Any]] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(self.clock.time())
        self.bodies.append(json.loads(request.content))
        answer = self.script.pop(0) if self.script else 200
        if isinstance(answer, type):
            raise answer("unreachable", request=request)  # type: ignore[call-arg]
        return httpx.Response(answer)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


async def run_tasks(
    sim: Simulator, clock: VirtualClock, count: int, wait: float, **body: Any
) -> list[str]:
    async with clock.running(), sim, api(sim) as client:
        ids = [await create_id(client, callback_url=HOOK, **body) for _ in range(count)]
        await clock.sleep(wait)
    return ids


async def test_callback_posts_the_task_read(clock: VirtualClock) -> None:
    """When a task ends, its callback URL gets the same body a task read gives."""
    receiver = Receiver(clock)
    sim = Simulator(clock=clock, durations=Fixed(10), callback_transport=receiver.transport())
    (task_id,) = await run_tasks(sim, clock, 1, 30)
    async with api(sim) as client:
        read = (await client.get(f"/v1/tasks/{task_id}")).json()
    assert [read] == receiver.bodies
    assert [sim.task(task_id).ends_at] == receiver.times
    assert [(1, 200, True)] == [(a.attempt, a.status, a.delivered) for a in sim.callbacks]


async def test_callback_retries_after_1_2_4_seconds(clock: VirtualClock) -> None:
    """A non-2xx or unreachable receiver is retried after 1, 2 and 4 s, then given up."""
    receiver = Receiver(clock, 500, httpx.ConnectError, 503, 502, 500)
    sim = Simulator(clock=clock, durations=Fixed(10), callback_transport=receiver.transport())
    (task_id,) = await run_tasks(sim, clock, 1, 60)
    end = sim.task(task_id).ends_at
    assert [end, end + 1, end + 3, end + 7] == [a.time for a in sim.callbacks]
    assert [500, None, 503, 502] == [a.status for a in sim.callbacks]
    assert [None, "ConnectError", None, None] == [a.error for a in sim.callbacks]


async def test_callback_retry_stops_at_success(clock: VirtualClock) -> None:
    """A retry that succeeds ends the schedule."""
    receiver = Receiver(clock, 500)
    sim = Simulator(clock=clock, durations=Fixed(10), callback_transport=receiver.transport())
    await run_tasks(sim, clock, 1, 60)
    assert [500, 200] == [a.status for a in sim.callbacks]


async def test_a_sooner_task_wakes_the_dispatcher(clock: VirtualClock) -> None:
    """A task made later that ends sooner is still called back at its own end."""
    receiver = Receiver(clock)
    sim = Simulator(
        clock=clock, durations=Uniform(5, 50), seed=2, callback_transport=receiver.transport()
    )
    ids = await run_tasks(sim, clock, 20, 60)
    ends = {sim.task(i).ends_at for i in ids}
    assert sorted(ends) == receiver.times


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        pytest.param(Faults(callback_drop=1.0), 0, id="drop"),
        pytest.param(Faults(callback_duplicate=1.0), 2, id="duplicate"),
    ],
)
async def test_drop_and_duplicate(clock: VirtualClock, faults: Faults, expected: int) -> None:
    """Dropped callbacks never come; duplicated ones come twice."""
    receiver = Receiver(clock)
    sim = Simulator(
        clock=clock, durations=Fixed(10), faults=faults, callback_transport=receiver.transport()
    )
    (task_id,) = await run_tasks(sim, clock, 1, 30)
    assert expected == len(receiver.bodies)
    assert ([task_id] if expected == 0 else []) == list(sim.dropped_callbacks)
    # Both copies are sent at once: trio may run either first.
    assert [False, True][:expected] == sorted(a.duplicate for a in sim.callbacks)


async def test_late_callback(clock: VirtualClock) -> None:
    """A late callback comes `callback_late_by` seconds after the task's end."""
    receiver = Receiver(clock)
    faults = Faults(callback_late=1.0, callback_late_by=12)
    sim = Simulator(
        clock=clock, durations=Fixed(10), faults=faults, callback_transport=receiver.transport()
    )
    (task_id,) = await run_tasks(sim, clock, 1, 60)
    assert [sim.task(task_id).ends_at + 12] == receiver.times


async def test_out_of_order_callbacks(clock: VirtualClock) -> None:
    """Held-back callbacks arrive in another order than their tasks ended."""
    receiver = Receiver(clock)
    faults = Faults(callback_out_of_order=0.5, callback_late_by=20)
    sim = Simulator(
        clock=clock,
        durations=Uniform(5, 15),
        seed=3,
        faults=faults,
        callback_transport=receiver.transport(),
    )
    ids = await run_tasks(sim, clock, 20, 80)
    by_end = sorted(ids, key=lambda i: sim.task(i).ends_at)
    arrived = [body["id"] for body in receiver.bodies]
    assert sorted(arrived) == sorted(ids)
    assert by_end != arrived


async def test_no_dispatcher_no_callbacks(clock: VirtualClock) -> None:
    """Outside `async with simulator:` callbacks wait; nothing is sent."""
    receiver = Receiver(clock)
    sim = Simulator(clock=clock, durations=Fixed(1), callback_transport=receiver.transport())
    async with api(sim) as client:
        await create_id(client, callback_url=HOOK)
    clock.advance(10)
    assert [] == receiver.bodies


async def test_simulator_runs_once_at_a_time(clock: VirtualClock) -> None:
    """Entering a running simulator again is an error; it can run again after."""
    sim = Simulator(clock=clock)
    async with sim:
        with pytest.raises(RuntimeError, match="already running"):
            await sim.__aenter__()
    async with sim:
        pass


async def test_callbacks_to_a_real_local_receiver() -> None:
    """Over a real socket: a local receiver gets the callback, after one retry."""
    received: list[dict[str, Any]] = []
    statuses = [503]

    async def receiver(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        message = await receive()
        received.append(json.loads(message["body"]))
        status = statuses.pop(0) if statuses else 204
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sim = Simulator(clock=SYSTEM_CLOCK, durations=Fixed(0.05), allow_local_callbacks=True)
    with serve_app_in_thread(receiver) as receiver_url:
        async with sim, api(sim) as client:
            task_id = await create_id(client, callback_url=f"{receiver_url}/hook")
            with anyio.fail_after(10):
                while len(sim.callbacks) < 2:
                    await anyio.sleep(0.02)
    assert [task_id, task_id] == [body["id"] for body in received]
    assert [503, 204] == [a.status for a in sim.callbacks]
