"""A task confirmed by a callback costs one read, not two (FastAPI integration's `wait`,
beside a batch and `tasks.wait` waiting for the same tasks).

waiting.md: the FastAPI receiver hands a callback for a watched task to the engine, whose
one read confirms it for every party waiting for that task (a batch and a `wait` alike).
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from _server14c import HostileServer

from evolink import GenerationRequest, Task
from evolink.testing import VirtualClock

fastapi = pytest.importorskip("fastapi")
from evolink.fastapi import EvolinkIntegration  # noqa: E402


@pytest.mark.parametrize("batch", ["on", "off"])
@pytest.mark.parametrize("parties", ["fastapi", "fastapi+tasks+batch"])
def test_callback_costs_one_read(batch: str, parties: str) -> None:
    clock = VirtualClock()
    server = HostileServer(clock, batch_mode=batch, read_latency=0.05)
    # An estimate far off: the engine's own reads would come long after the end.
    server.estimate_of = lambda _t, _n: 300
    server.progress_of = lambda *_: 0
    integration = EvolinkIntegration(
        public_url="https://app.attack14c.invalid", client_factory=server.client
    )
    app = fastapi.FastAPI()
    app.include_router(integration.callback_router)

    async def main() -> Any:
        async with clock.running(), integration.lifespan(app):
            client = integration.client()
            fakes = [server.add(duration=20.0 + n) for n in range(6)]
            got: dict[str, list[Task]] = {f.id: [] for f in fakes}
            returned: dict[str, list[float]] = {f.id: [] for f in fakes}
            path = httpx.URL(integration.callback_url()).path
            asgi = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="https://app.attack14c.invalid"
            )

            async def handler(task_id: str) -> None:
                got[task_id].append(await integration.wait(task_id, timeout=600))
                returned[task_id].append(clock.time())

            async def plain(task: Task) -> None:
                got[task.id].append(await client.tasks.wait(task))
                returned[task.id].append(clock.time())

            async def deliver(fake: Any) -> None:
                await clock.sleep(fake.end_at - clock.time() + 0.01)
                view = server.view(fake, 0)
                answer = await asgi.post(path, json=view)
                assert answer.status_code == 202

            outcomes: list[Any] = []

            async def batch_of(tasks: list[Task]) -> None:
                async with client.batch() as run:
                    integration.attach(run)
                    for task in tasks:
                        await run.adopt(task, GenerationRequest(prompt="x"))
                integration.detach(run)
                outcomes.extend(run.report().outcomes)

            async with asgi, anyio.create_task_group() as tg:
                for fake in fakes:
                    tg.start_soon(handler, fake.id)
                    tg.start_soon(deliver, fake)
                if parties != "fastapi":
                    await clock.sleep(1.0)
                    tasks = [await client.tasks.get(f.id) for f in fakes]
                    for task in tasks:
                        tg.start_soon(plain, task)
                    tg.start_soon(batch_of, tasks)
            return fakes, got, returned, outcomes

    fakes, got, returned, outcomes = anyio.run(main)
    assert server.overlaps == []
    for fake in fakes:
        after_end = [t for t in server.tasks[fake.id].read_times if t >= fake.end_at]
        # One read confirms the callback for every party.
        assert len(after_end) == 1, (fake.id, after_end, fake.end_at)
        assert all(t.status == "completed" for t in got[fake.id])
        assert max(returned[fake.id]) - fake.end_at <= 1.0
    if parties != "fastapi":
        assert len(outcomes) == len(fakes)
        assert all(o.task is not None and o.task.status == "completed" for o in outcomes)
