"""The docs' FastAPI integration: callbacks received, tasks waited for (docs/how-to/fastapi.md)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI

from evolink import AsyncEvolink
from evolink.fastapi import EvolinkIntegration
from evolink.testing import TEST_API_KEY, Simulator


def _make_app(sim: Simulator, **kwargs: Any) -> tuple[FastAPI, EvolinkIntegration]:
    evolink = EvolinkIntegration(
        public_url="https://my.app",
        client_factory=lambda: AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport()),
        **kwargs,
    )
    app = FastAPI(lifespan=evolink.lifespan)
    app.include_router(evolink.callback_router)

    @app.post("/images")
    async def create(
        prompt: str,
        client: AsyncEvolink = Depends(evolink.client),  # noqa: B008, FAST002 - as the docs
    ) -> dict[str, str]:
        task = await client.images.generate(prompt, callback_url=evolink.callback_url())
        return {"task_id": task.id}

    @app.get("/images/{task_id}")
    async def result(task_id: str) -> dict[str, Any]:
        task = await evolink.wait(task_id, timeout=120)
        return {"status": task.status, "results": task.results}

    return app, evolink


@pytest.mark.anyio
async def test_callbacks_are_received_and_wait_returns_the_task() -> None:
    sim_holder: dict[str, Any] = {}

    async def deliver(scope: Any, receive: Any, send: Any) -> None:  # the app, made below
        await sim_holder["app"](scope, receive, send)

    sim = Simulator(
        durations=(0.05, 0.15), seed=4, callback_transport=httpx.ASGITransport(app=deliver)
    )
    app, evolink = _make_app(sim, callback_grace=30)
    sim_holder["app"] = app
    async with sim, app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://my.app") as http:
            created = await http.post("/images", params={"prompt": "a red fox"})
            assert created.status_code == 200
            task_id = created.json()["task_id"]
            with anyio.fail_after(20):
                done = await http.get(f"/images/{task_id}")
    assert done.status_code == 200
    assert done.json()["status"] == "completed"
    assert len(done.json()["results"]) == 1
    # The callback really came, with the secret URL, and was accepted.
    attempts = [a for a in sim.callbacks if a.task_id == task_id]
    assert attempts
    assert attempts[0].status == 202
    assert attempts[0].url == evolink.callback_url()
    assert evolink.deliveries >= 1


@pytest.mark.anyio
async def test_wait_without_callbacks_reads_the_task_itself() -> None:
    sim = Simulator(durations=(0.05, 0.1), seed=5)  # no `async with sim`: no callback is sent
    app, evolink = _make_app(sim, callback_grace=0.2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://my.app") as http:
            task_id = (await http.post("/images", params={"prompt": "a fox"})).json()["task_id"]
            with anyio.fail_after(20):
                done = await http.get(f"/images/{task_id}")
    assert done.json()["status"] == "completed"
    assert evolink.deliveries == 0


@pytest.mark.anyio
async def test_wrong_token_is_refused_and_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sim = Simulator(durations=(0.05, 0.1))
    app, evolink = _make_app(sim)
    good = evolink.callback_url().rsplit("/", 1)[1]
    body = {"id": "task-unified-1757156493-imcg5zqt", "status": "completed"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://my.app") as http:
            wrong = await http.post("/evolink/callbacks/guessed-token", json=body)
            junk = await http.post(f"/evolink/callbacks/{good}", content=b"not json")
            huge = await http.post(f"/evolink/callbacks/{good}", content=b"x" * (300 * 1024))
    assert wrong.status_code == 404
    assert junk.status_code == 400
    assert huge.status_code == 413
    assert evolink.deliveries == 0
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("evolink"))
    assert "callback with a wrong token refused" in ours  # the refusal is logged...
    assert good not in ours  # ...without any token (httpx's own request log is not ours)
    assert "guessed-token" not in ours
    assert good not in repr(evolink)


@pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient")
def test_fastapi_testclient_runs_the_docs_app() -> None:
    from fastapi.testclient import TestClient  # noqa: PLC0415 - warns on import here

    sim = Simulator(durations=(0.05, 0.1), seed=8)
    app, _ = _make_app(sim, callback_grace=0.2)
    with TestClient(app, base_url="https://my.app") as http:
        task_id = http.post("/images", params={"prompt": "a heron"}).json()["task_id"]
        done = http.get(f"/images/{task_id}")
    assert done.status_code == 200
    assert done.json()["status"] == "completed"
