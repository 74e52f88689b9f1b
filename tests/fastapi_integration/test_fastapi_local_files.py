"""FastAPI integration with local reference images: a handler's `generate` and a background
batch upload each distinct file once, through the app's one client; a restarted app
resuming its batch on the journal uploads nothing again."""

# No `from __future__ import annotations`: FastAPI reads handler annotations at runtime.

from pathlib import Path
from typing import Annotated

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI

from evolink import AsyncEvolink, GenerationRequest, OutcomeKind
from evolink.fastapi import EvolinkIntegration
from evolink.testing import TEST_API_KEY, Simulator, VirtualClock
from evolink.testing._png import render_png

pytestmark = pytest.mark.anyio

UPLOADS = "/api/v1/files/upload"


def _integration(sim: Simulator, clock: VirtualClock) -> EvolinkIntegration:
    return EvolinkIntegration(
        public_url="https://my.app",
        client_factory=lambda: AsyncEvolink(
            api_key=TEST_API_KEY,
            base_url="https://sim.test",
            transport=sim.transport(),
            clock=clock,
        ),
    )


def _images(folder: Path) -> list[Path]:
    """Three paths of two contents (`a-copy.png` is `a.png`)."""
    paths = []
    for name, index in (("a", 1), ("b", 2), ("a-copy", 1)):
        path = folder / f"{name}.png"
        path.write_bytes(render_png(f"reference {index}", 8, 8, index))
        paths.append(path)
    return paths


def _app(integration: EvolinkIntegration, folder: Path) -> FastAPI:
    app = FastAPI(lifespan=integration.lifespan)

    @app.post("/edits")
    async def edit(
        prompt: str, name: str, client: Annotated[AsyncEvolink, Depends(integration.client)]
    ) -> dict:
        task = await client.images.generate(prompt, image_urls=[folder / name])
        return {"task_id": task.id}

    return app


async def test_handlers_and_a_batch_upload_each_file_once(tmp_path: Path):
    """Twelve concurrent requests and a batch of six rows, all naming three paths of two
    contents: two uploads in all, every task made with an uploaded URL."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=4)
    paths = _images(tmp_path)
    integration = _integration(sim, clock)
    app = _app(integration, tmp_path)
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://my.app")
    async with clock.running(), integration.lifespan(app), web:

        async def call(i: int) -> None:
            params = {"prompt": f"edit {i}", "name": paths[i % 3].name}
            answer = await web.post("/edits", params=params)
            assert 200 == answer.status_code, answer.text

        async with anyio.create_task_group() as tg:
            for i in range(12):
                tg.start_soon(call, i)
        rows = [GenerationRequest(prompt=f"row {i}", image_urls=[paths[i % 3]]) for i in range(6)]
        batch = integration.batch(integration.start_batch(rows))
        while not batch.finished:
            await clock.sleep(1)
    assert [OutcomeKind.COMPLETED] * 6 == [o.kind for o in batch.report().outcomes]
    assert 2 == sim.count("POST", UPLOADS)
    sent = {r.body["image_urls"][0] for r in sim.requests if r.path.endswith("/generations")}
    assert 2 == len(sent)
    assert 18 == len(sim.tasks)


async def test_a_restarted_app_resumes_its_batch_without_uploading_again(tmp_path: Path):
    """The app stops mid-batch; the next one (a new client) resumes it on the journal: the
    files went up once, in the first app's life."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=4)
    paths = _images(tmp_path)
    rows = [GenerationRequest(prompt=f"row {i}", image_urls=[paths[i % 3]]) for i in range(9)]
    journal = tmp_path / "app-batches.sqlite3"
    first_app = _integration(sim, clock)
    async with clock.running():
        async with first_app.lifespan(FastAPI()):
            first = first_app.batch(
                first_app.start_batch(rows, max_in_flight=3, journal=journal, run="edits")
            )
            while first.progress().completed < 3:
                await clock.sleep(0.5)
        uploaded = sim.count("POST", UPLOADS)
        second_app = _integration(sim, clock)
        async with second_app.lifespan(FastAPI()):
            second = second_app.batch(
                second_app.start_batch(rows, max_in_flight=3, journal=journal, run="edits")
            )
            while not second.finished:
                await clock.sleep(1)
    assert not first.report().ok
    assert [OutcomeKind.COMPLETED] * 9 == [o.kind for o in second.report().outcomes]
    assert 2 == uploaded == sim.count("POST", UPLOADS)
