"""FastAPI integration: one client per app, the callback receiver, hybrid waiting."""

# No `from __future__ import annotations`: FastAPI reads handler annotations at runtime.

import logging
from typing import Annotated

import anyio
import anyio.lowlevel
import httpx
import pytest
from fastapi import Depends, FastAPI

from _fake_server import FakeEvolink
from evolink import AsyncEvolink, ConfigurationError, OutcomeKind, WaitTimeoutError
from evolink.fastapi import MAX_CALLBACK_BYTES, EvolinkIntegration
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

KEY = "sk-evo-fastapi-test-key"
SECRET = "s3cret-token-for-callbacks-0123456789"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> FakeEvolink:
    return FakeEvolink(clock)


@pytest.fixture
def integration(fake: FakeEvolink, clock: VirtualClock) -> EvolinkIntegration:
    return EvolinkIntegration(
        public_url="https://my.app",
        secret=SECRET,
        client_factory=lambda: AsyncEvolink(
            api_key=KEY, base_url="https://api.test", transport=fake.transport(), clock=clock
        ),
    )


def make_app(integration: EvolinkIntegration) -> FastAPI:
    app = FastAPI(lifespan=integration.lifespan)
    app.include_router(integration.callback_router)

    @app.post("/images")
    async def create(
        prompt: str, client: Annotated[AsyncEvolink, Depends(integration.client)]
    ) -> dict:
        task = await client.images.generate(prompt, callback_url=integration.callback_url())
        return {"task_id": task.id, "client": id(client)}

    return app


def http(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://my.app")


def callback_path(token: str = SECRET) -> str:
    return f"/evolink/callbacks/{token}"


async def test_one_client_serves_every_request(integration, clock):
    """Concurrent handlers share the app's one client; it is closed with the app."""
    app = make_app(integration)
    ids: list[int] = []
    async with clock.running(), integration.lifespan(app), http(app) as web:

        async def call(i: int) -> None:
            answer = await web.post("/images", params={"prompt": f"p{i}"})
            assert 200 == answer.status_code
            ids.append(answer.json()["client"])

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(call, i)
        client = integration.client()
    assert {id(client)} == set(ids)
    assert client.is_closed
    with pytest.raises(ConfigurationError, match="lifespan"):
        integration.client()


async def test_access_logs_never_show_the_token(integration, clock):
    """While the app runs, uvicorn's access log lines have the callback token masked."""
    app = make_app(integration)
    access = logging.getLogger("uvicorn.access")
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', None, None
    )
    record.args = ("127.0.0.1", "POST", callback_path(), "1.1", 202)
    async with clock.running(), integration.lifespan(app):
        assert all(f.filter(record) for f in access.filters)
    assert SECRET not in record.getMessage()
    assert "/evolink/callbacks/***" in record.getMessage()
    assert not access.filters  # removed with the app


async def test_callback_url_carries_the_secret(integration):
    """The callback URL is the public URL, the route and the token."""
    assert f"https://my.app/evolink/callbacks/{SECRET}" == integration.callback_url()
    assert SECRET not in repr(integration)


async def test_a_wrong_token_is_404_and_logged_without_it(integration, fake, clock, caplog):
    """Wrong or missing tokens are refused as not found; the log never shows the token."""
    app = make_app(integration)
    caplog.set_level(logging.DEBUG)
    async with clock.running(), integration.lifespan(app), http(app) as web:
        wrong = await web.post(callback_path("guess-" + SECRET[6:]), json={"id": "x"})
        missing = await web.post("/evolink/callbacks/", json={"id": "x"})
    assert (404, 404) == (wrong.status_code, missing.status_code)
    assert 1 == integration.rejected
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("evolink"))
    assert "wrong token" in ours
    assert "guess-" not in ours
    assert SECRET not in ours
    assert 0 == fake.count("GET", "/v1/tasks/")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"{not json", 400, id="malformed-json"),
        pytest.param(b"[1, 2]", 400, id="not-an-object"),
        pytest.param(b'{"id": "task-unified-1"}', 400, id="no-status"),
        pytest.param(b'{"id": "other-1", "status": "completed"}', 400, id="not-a-task-id"),
        pytest.param(b'{"id": "task-unified-../x", "status": "completed"}', 400, id="path-in-id"),
        pytest.param(b"x" * (MAX_CALLBACK_BYTES + 1), 413, id="oversized"),
    ],
)
async def test_bad_bodies_are_refused(integration, fake, clock, body, status):
    """Malformed, foreign and oversized bodies are refused and never read upstream."""
    app = make_app(integration)
    async with clock.running(), integration.lifespan(app), http(app) as web:
        answer = await web.post(callback_path(), content=body)
    assert status == answer.status_code
    assert 0 == fake.count("GET", "/v1/tasks/")


async def test_a_callback_is_confirmed_before_it_counts(integration, fake, clock):
    """A delivery is answered 202 at once; wait() returns what the confirming read says."""
    app = make_app(integration)
    async with clock.running(), integration.lifespan(app), http(app) as web:
        created = await web.post("/images", params={"prompt": "a fox"})
        task_id = created.json()["task_id"]
        async with anyio.create_task_group() as tg:
            results = []

            async def waiter() -> None:
                results.append(await integration.wait(task_id))

            tg.start_soon(waiter)
            await clock.sleep(4.5)  # the task is done at 4 s; the callback arrives now
            reads_before = fake.count("GET", "/v1/tasks/")
            answer = await web.post(
                callback_path(), json={"id": task_id, "status": "completed", "results": []}
            )
            assert 202 == answer.status_code
    assert results[0].is_success
    assert results[0].results  # from the read, not from the (empty) callback
    assert 1 == fake.count("GET", "/v1/tasks/") - reads_before


async def test_duplicate_and_out_of_order_deliveries_are_absorbed(integration, fake, clock):
    """The same callback twice, or a stale one after the end, changes nothing."""
    app = make_app(integration)
    async with clock.running(), integration.lifespan(app), http(app) as web:
        task_id = (await web.post("/images", params={"prompt": "a fox"})).json()["task_id"]
        await clock.sleep(5)
        for status in ["completed", "completed", "processing"]:
            answer = await web.post(callback_path(), json={"id": task_id, "status": status})
            assert 202 == answer.status_code
        await clock.sleep(1)
        done = await integration.wait(task_id)
    assert done.is_success
    assert 3 == integration.deliveries
    assert fake.count("GET", f"/v1/tasks/{task_id}") <= 2  # one create-time read at most


async def test_wait_reads_the_task_when_the_callback_is_lost(integration, fake, clock):
    """No callback: wait() falls back to reading the task a little after its predicted end."""
    app = make_app(integration)
    async with clock.running(), integration.lifespan(app), http(app) as web:
        task_id = (await web.post("/images", params={"prompt": "a fox"})).json()["task_id"]
        start = clock.monotonic()
        done = await integration.wait(task_id)
        waited = clock.monotonic() - start
    assert done.is_success
    assert 4.0 <= waited <= 4.0 + integration.callback_grace + 2.0
    assert fake.count("GET", f"/v1/tasks/{task_id}") <= 3


async def test_wait_times_out(integration, fake, clock):
    """A deadline shorter than the task raises WaitTimeoutError with the last read."""
    app = make_app(integration)
    async with clock.running(), integration.lifespan(app), http(app) as web:
        task_id = (await web.post("/images", params={"prompt": "slow"})).json()["task_id"]
        with pytest.raises(WaitTimeoutError) as caught:
            await integration.wait(task_id, timeout=3)
    assert task_id == caught.value.task.id


async def test_a_batch_hears_callbacks(integration, fake, clock):
    """An attached batch is fed confirmed callbacks (and reads to confirm them itself)."""
    app = make_app(integration)
    async with clock.running(), integration.lifespan(app), http(app) as web:
        client = integration.client()
        async with client.batch() as batch:
            integration.attach(batch)
            await batch.submit("slow")
            while not batch._entries:
                await anyio.lowlevel.checkpoint()
            task_id = next(iter(batch._entries))
            await clock.sleep(12.5)
            await web.post(callback_path(), json={"id": task_id, "status": "completed"})
        integration.detach(batch)
    assert OutcomeKind.COMPLETED == batch.report().outcomes[0].kind


async def test_start_batch_takes_any_model_and_its_params():
    """`start_batch(..., model=, params=)` runs a video batch in the app's background."""
    from evolink.testing import TEST_API_KEY, Simulator  # noqa: PLC0415 - this test only

    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=8)
    integration = EvolinkIntegration(
        public_url="https://my.app",
        secret=SECRET,
        client_factory=lambda: AsyncEvolink(
            api_key=TEST_API_KEY,
            base_url="https://sim.test",
            transport=sim.transport(),
            clock=clock,
        ),
    )
    app = make_app(integration)
    async with clock.running(), integration.lifespan(app):
        batch_id = integration.start_batch(
            ["a fox running", "an owl flying"],
            model="kling-v3-text-to-video",
            params={"duration": 5},
        )
        batch = integration.batch(batch_id)
        while not batch.finished:
            await clock.sleep(1)
        report = batch.report()
    assert [OutcomeKind.COMPLETED] * 2 == [o.kind for o in report.outcomes]
    assert 2 == sim.count("POST", "/v1/videos/generations")
