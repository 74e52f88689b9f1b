"""examples/fastapi/app.py: 404/422 for bad task ids, rejected prompts in the stream."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

with warnings.catch_warnings():
    # Starlette's TestClient warns at import that it prefers another httpx package.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from evolink.testing import TEST_API_KEY, Simulator

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

APP = Path(__file__).resolve().parents[2] / "examples" / "fastapi" / "app.py"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app_client(monkeypatch) -> Iterator[TestClient]:
    sim = Simulator(durations=(0.05, 0.1), pending_time=0.01, allow_local_callbacks=True)
    with sim.serve_in_thread() as url:
        monkeypatch.setenv("EVOLINK_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("EVOLINK_BASE_URL", url)
        module = _load("attack16_example_app")
        try:
            with TestClient(module.app, raise_server_exceptions=False) as client:
                yield client
        finally:
            sys.modules.pop("attack16_example_app", None)


@pytest.mark.parametrize(
    "path",
    [
        "/images/task-unified-1757156493-zzzzzzzz",
        "/images/task-unified-1757156493-zzzzzzzz/wait",
    ],
)
def test_unknown_task_ids_answer_404(app_client, path):
    answer = app_client.get(path)
    assert answer.status_code == 404, answer.text


@pytest.mark.parametrize(
    "task_id",
    ["not-a-task", "task-unified-..", "%20", "task-unified-a%00b", "x" * 5000, "task-unified-ü"],
)
@pytest.mark.parametrize("suffix", ["", "/wait"])
def test_malformed_task_ids_answer_422_or_404_never_500(app_client, task_id, suffix):
    answer = app_client.get(f"/images/{task_id}{suffix}")
    assert answer.status_code in (404, 422), (answer.status_code, answer.text)
    assert TEST_API_KEY not in answer.text


def test_bad_prompt_on_create_is_422(app_client):
    answer = app_client.post("/images", params={"prompt": ""})
    assert answer.status_code == 422, answer.text
    answer = app_client.post("/images", params={"prompt": "x" * 32001})
    assert answer.status_code == 422, answer.text


def test_create_then_wait(app_client):
    made = app_client.post("/images", params={"prompt": "a red fox"})
    assert made.status_code == 200, made.text
    task_id = made.json()["task_id"]
    done = app_client.get(f"/images/{task_id}/wait")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"


def test_progress_stream_shows_rejected_prompts(app_client):
    started = app_client.post("/batches", json=["a fox", "", "an owl", "x" * 32001])
    assert started.status_code == 200, started.text
    batch_id = started.json()["batch_id"]
    events: list[tuple[str, dict]] = []
    with app_client.stream("GET", f"/batches/{batch_id}/events") as stream:
        kind = "message"
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
                kind = "message"
    outcomes = [data for kind, data in events if kind == "outcome"]
    snapshots = [data for kind, data in events if kind == "message"]
    rejected = [o for o in outcomes if o["status"] == "rejected"]
    assert sorted(o["index"] for o in rejected) == [1, 3]
    assert all(o["task_id"] is None for o in rejected)
    assert snapshots[-1]["rejected"] == 2
    assert snapshots[-1]["finished"] == 4
    assert sorted(o["index"] for o in outcomes) == [0, 1, 2, 3]


def test_unknown_batch_is_404(app_client):
    assert app_client.get("/batches/nope/events").status_code == 404
