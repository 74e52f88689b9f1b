"""Callbacks through the client's one engine: a confirmed callback costs one read."""

# No `from __future__ import annotations`: FastAPI reads handler annotations at runtime.

import anyio
import httpx
import pytest
from fastapi import FastAPI

from _fake_server import FakeEvolink
from _held_read import HeldFirstRead
from evolink import AsyncEvolink, GenerationRequest, OutcomeKind
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


@pytest.mark.parametrize("by", ["id", "task"])
async def test_a_callback_that_overtakes_the_first_read_wakes_the_wait_at_once(by):
    """The wait's first read, half way, says "processing"; the callback that the task
    ended reaches the app while that answer is on its way back. The wait still ends at the
    callback (one confirming read), not at its next planned read: the predicted end and
    the callback grace, 5 s later."""
    clock = VirtualClock()
    fake = FakeEvolink(clock)
    held = HeldFirstRead(fake.transport())
    integration = EvolinkIntegration(
        public_url="https://my.app",
        secret=SECRET,
        client_factory=lambda: AsyncEvolink(
            api_key=KEY, base_url="https://api.test", transport=held, clock=clock
        ),
    )
    app = FastAPI(lifespan=integration.lifespan)
    app.include_router(integration.callback_router)
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://my.app")
    waited = []
    async with clock.running(), integration.lifespan(app), web:
        client = integration.client()
        created = await client.images.create(GenerationRequest(prompt="slow"))  # 12 s
        await clock.sleep(6)
        async with anyio.create_task_group() as tg:

            async def wait() -> None:
                if by == "id":
                    waited.append(await integration.wait(created.id))
                else:
                    first = await client.tasks.get(created.id)  # the held read
                    waited.append(await integration.wait(first))

            tg.start_soon(wait)
            await held.held.wait()
            await clock.sleep(6.05)  # the task ends; its answer "processing" is still out
            answer = await web.post(
                f"/evolink/callbacks/{SECRET}", json={"id": created.id, "status": "completed"}
            )
            assert 202 == answer.status_code
            called_back = clock.monotonic()
            before = reads(fake)
            held.release.set()
            with anyio.fail_after(60):
                while not waited:
                    await clock.sleep(0.01)
            woke = clock.monotonic()

    assert waited[0].is_success
    assert woke - called_back < 1.0
    assert 1 == reads(fake) - before, fake.requests  # the one confirming read
