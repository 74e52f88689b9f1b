"""Callbacks through the client's one engine: a confirmed callback costs one read."""

# No `from __future__ import annotations`: FastAPI reads handler annotations at runtime.

import anyio
import httpx
import pytest
from fastapi import FastAPI

from _fake_server import FakeEvolink
from evolink import AsyncEvolink, OutcomeKind
from evolink.fastapi import EvolinkIntegration
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

KEY = "sk-evo-fastapi-engine-key"
SECRET = "another-s3cret-token-for-callbacks-42"


def reads(fake: FakeEvolink) -> int:
    return fake.count("GET", "/v1/tasks/") + fake.count("POST", "/v1/tasks/batch")


async def test_a_callback_for_a_batch_task_costs_one_read():
    """A batch task's callback, with a wait on it too: one read confirms it for both."""
    clock = VirtualClock()
    fake = FakeEvolink(clock)
    integration = EvolinkIntegration(
        public_url="https://my.app",
        secret=SECRET,
        client_factory=lambda: AsyncEvolink(
            api_key=KEY, base_url="https://api.test", transport=fake.transport(), clock=clock
        ),
    )
    app = FastAPI(lifespan=integration.lifespan)
    app.include_router(integration.callback_router)
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://my.app")
    waited = []
    async with clock.running(), integration.lifespan(app), web:
        client = integration.client()
        async with client.batch() as batch, anyio.create_task_group() as tg:
            integration.attach(batch)
            await batch.submit("slow")  # 12 s: the callback comes well before any read
            while not batch.created():
                await clock.sleep(0.01)
            task_id = batch.created()[0].id

            async def wait() -> None:
                waited.append(await integration.wait(task_id))

            tg.start_soon(wait)
            await clock.sleep(12.05)
            before = reads(fake)
            answer = await web.post(
                f"/evolink/callbacks/{SECRET}", json={"id": task_id, "status": "completed"}
            )
            assert 202 == answer.status_code
            while not waited:
                await clock.sleep(0.01)
            confirming = reads(fake) - before
        integration.detach(batch)

    assert 1 == confirming
    assert waited[0].is_success
    assert OutcomeKind.COMPLETED == batch.report().outcomes[0].kind
