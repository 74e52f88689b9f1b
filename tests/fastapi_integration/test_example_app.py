"""The example app on a real uvicorn server, hearing real callbacks from the served simulator."""

from __future__ import annotations

import gc
import importlib.util
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import anyio
import httpx
import pytest
import uvicorn

from evolink.testing import TEST_API_KEY, Faults, Simulator

APP = Path(__file__).parents[2] / "examples" / "fastapi" / "app.py"

pytestmark = [
    pytest.mark.anyio,
    # Two uvicorn servers stop with their loops in other threads; a keep-alive socket of
    # theirs may be collected after its loop closed. Collected here, not at session end.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_example(monkeypatch: pytest.MonkeyPatch, base_url: str, port: int) -> ModuleType:
    monkeypatch.setenv("EVOLINK_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("EVOLINK_BASE_URL", base_url)
    monkeypatch.setenv("PORT", str(port))
    monkeypatch.setenv("EVOLINK_CALLBACK_SECRET", "example-secret-0123456789abcdef")
    spec = importlib.util.spec_from_file_location("example_fastapi_app", APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "example_fastapi_app", module)
    spec.loader.exec_module(module)
    return module


def serve(app: object, port: int) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def served_app(monkeypatch, request):
    faults = getattr(request, "param", Faults())
    sim = Simulator(durations=(0.5, 1.5), allow_local_callbacks=True, faults=faults, seed=3)
    port = free_port()
    with sim.serve_in_thread() as base_url:
        module = load_example(monkeypatch, base_url, port)
        module.evolink.callback_grace = 0.5
        gen = serve(module.app, port)
        app_url = next(gen)
        try:
            yield sim, module, app_url
        finally:
            next(gen, None)
    gc.collect()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn serves in its own thread; the test side needs no trio run


@pytest.mark.parametrize(
    "served_app",
    [
        pytest.param(Faults(), id="callbacks-on-time"),
        pytest.param(
            Faults(callback_duplicate=0.5, callback_out_of_order=0.5, callback_late_by=1.0),
            id="duplicated-and-out-of-order",
        ),
        pytest.param(Faults(callback_drop=1.0), id="callbacks-lost"),
    ],
    indirect=True,
)
async def test_many_handlers_share_one_client_and_hear_callbacks(served_app):
    """20 concurrent requests create tasks with one client; every wait ends completed."""
    sim, module, app_url = served_app
    client_before = module.evolink.client()
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as web:
        ids: list[str] = []

        async def create(i: int) -> None:
            answer = await web.post("/images", params={"prompt": f"a fox {i}"})
            assert 200 == answer.status_code, answer.text
            ids.append(answer.json()["task_id"])

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(create, i)
        results = {}

        async def wait(task_id: str) -> None:
            answer = await web.get(f"/images/{task_id}/wait")
            results[task_id] = answer.json()["status"]

        async with anyio.create_task_group() as tg:
            for task_id in ids:
                tg.start_soon(wait, task_id)
    assert module.evolink.client() is client_before
    assert {"completed"} == set(results.values()) or all(
        sim.task(t).final_status.value == s for t, s in results.items()
    )
    assert 20 == len(results)
    delivered = [a for a in sim.callbacks if a.delivered]
    if sim.faults.callback_drop == 1.0:
        assert [] == delivered  # every answer came from reads
    else:
        assert delivered
        assert module.evolink.deliveries >= len(ids) - 2


async def test_a_batch_streams_progress_over_sse(served_app):
    """POST /batches starts a batch; its SSE stream ends with every prompt finished."""
    sim, module, app_url = served_app
    prompts = [f"a heron {i}" for i in range(8)]
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as web:
        batch_id = (await web.post("/batches", json=prompts)).json()["batch_id"]
        events = []
        async with web.stream("GET", f"/batches/{batch_id}/events") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
        missing = await web.get("/batches/nope/events")
    assert 404 == missing.status_code
    last = events[-1]
    assert 8 == last["total"]
    assert 8 == last["completed"] + last["failed"]
    assert 0 == last["in_flight"]
    assert len(events) > 2
    report = module.evolink.batch(batch_id).report()
    assert sim.ledger.charged == report.charged
    assert all(
        o.request is not None and o.request.callback_url == module.evolink.callback_url()
        for o in report.outcomes
    )
    assert (
        404 == (await httpx.AsyncClient(base_url=app_url).get("/batches/nope/events")).status_code
    )
