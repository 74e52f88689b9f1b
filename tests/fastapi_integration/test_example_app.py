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


async def _stream(web: httpx.AsyncClient, path: str) -> list[tuple[str, dict]]:
    """The server-sent events of `path`, as (event type, data) pairs."""
    events = []
    kind = "message"
    async with web.stream("GET", path) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
                kind = "message"
    return events


async def test_a_batch_streams_progress_over_sse(served_app):
    """POST /batches starts a batch; its SSE stream ends with every prompt finished."""
    sim, module, app_url = served_app
    prompts = [f"a heron {i}" for i in range(8)]
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as web:
        batch_id = (await web.post("/batches", json=prompts)).json()["batch_id"]
        events = await _stream(web, f"/batches/{batch_id}/events")
        missing = await web.get("/batches/nope/events")
    assert 404 == missing.status_code
    progress = [data for kind, data in events if kind == "message"]
    outcomes = [data for kind, data in events if kind == "outcome"]
    last = progress[-1]
    assert "message" == events[-1][0]
    assert 8 == last["total"]
    assert 8 == last["completed"] + last["failed"]
    assert 0 == last["in_flight"]
    assert len(progress) > 2
    assert list(range(8)) == sorted(o["index"] for o in outcomes)
    report = module.evolink.batch(batch_id).report()
    assert sim.ledger.charged == report.charged
    assert all(
        o.request is not None and o.request.callback_url == module.evolink.callback_url()
        for o in report.outcomes
    )
    assert (
        404 == (await httpx.AsyncClient(base_url=app_url).get("/batches/nope/events")).status_code
    )


async def test_a_rejected_prompt_has_its_event(served_app):
    """A prompt refused before sending (empty) gets an `outcome` event, and the last
    snapshot counts it: the stream accounts for every input."""
    _, _, app_url = served_app
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as web:
        batch_id = (await web.post("/batches", json=["a fox", "  ", "an owl"])).json()["batch_id"]
        events = await _stream(web, f"/batches/{batch_id}/events")
    [rejected] = [d for kind, d in events if kind == "outcome" and d["status"] == "rejected"]
    assert (1, None) == (rejected["index"], rejected["task_id"])
    assert "prompt" in rejected["error"]
    last = events[-1][1]
    assert (1, 3, 3) == (last["rejected"], last["finished"], last["total"])


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/images/task-unified-1757156493-nope", 404, id="unknown-id"),
        pytest.param("/images/task-unified-1757156493-nope/wait", 404, id="wait-unknown-id"),
        pytest.param("/images/not-a-task-id", 422, id="malformed-id"),
        pytest.param("/images/not-a-task-id/wait", 422, id="wait-malformed-id"),
    ],
)
async def test_task_ids_that_are_not_tasks(served_app, path, status):
    """An unknown task id is 404 and a malformed one 422, with a reason, never a 500."""
    _, _, app_url = served_app
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as web:
        answer = await web.get(path)
    assert status == answer.status_code, answer.text
    assert answer.json()["detail"]
