"""`evolink.Evolink`'s doors: the async signatures; `videos` and `audios` blocking too."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator

import httpx
import pytest
from _core_support import API_KEY, BASE_URL, TASK_ID, task_payload

from evolink import AsyncEvolink, BatchReport, Evolink, GenerationRequest, TaskStatus

RESOURCES = ("images", "videos", "audios", "tasks")


@pytest.fixture
def clients() -> Iterator[tuple[Evolink, AsyncEvolink]]:
    sync = Evolink(api_key=API_KEY, base_url=BASE_URL)
    yield sync, AsyncEvolink(api_key=API_KEY, base_url=BASE_URL)
    sync.close()


@pytest.mark.parametrize("resource", RESOURCES)
def test_blocking_methods_show_the_async_signature(
    clients: tuple[Evolink, AsyncEvolink], resource: str
) -> None:
    """`inspect.signature` (so `help()` and notebooks) shows the async method's parameters."""
    sync, asyn = clients
    door, async_resource = getattr(sync, resource), getattr(asyn, resource)
    names = ("generate", "run", "create", "generate_many", "get", "wait", "save")
    for name in (n for n in names if hasattr(async_resource, n)):
        expected = inspect.signature(getattr(async_resource, name)).parameters
        actual = inspect.signature(getattr(door, name)).parameters

        assert list(expected.values()) == list(actual.values()), name
        assert getattr(async_resource, name).__doc__ == getattr(door, name).__doc__
        assert name == getattr(door, name).__name__


def test_blocking_results_are_the_awaited_ones(clients: tuple[Evolink, AsyncEvolink]) -> None:
    """Return annotations are the results a blocking call gives: a report, not a `BatchRun`."""
    sync, _ = clients

    assert BatchReport is inspect.signature(sync.videos.generate_many).return_annotation
    assert "Task" == inspect.signature(sync.images.run).return_annotation
    assert "Credits" == inspect.signature(sync.credits).return_annotation
    assert "SyncVideos.run" == sync.videos.run.__qualname__


@pytest.mark.parametrize(
    ("resource", "model", "path"),
    [
        pytest.param(
            "videos", "doubao-seedance-1.0-pro-fast", "/v1/videos/generations", id="video"
        ),
        pytest.param("audios", "doubao-seed-audio-1-0", "/v1/audios/generations", id="audio"),
    ],
)
def test_videos_and_audios_create_and_run_blocking(resource: str, model: str, path: str) -> None:
    """`Evolink().videos` / `.audios` send to their own endpoint and wait, like `images`."""
    sent: list[tuple[str, str, dict[str, object]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            sent.append((request.method, request.url.path, json.loads(request.content)))
            # A second's estimate: the first read comes part-way through it (with the
            # default 100 s it would come 30 s on, the longest first wait).
            info = {"can_cancel": True, "estimated_time": 1}
            created = task_payload(model=model, type=resource[:-1], task_info=info)
            return httpx.Response(200, json=created)
        done = task_payload(status="completed", progress=100, results=["https://cdn.test/a"])
        return httpx.Response(200, json=done)

    with Evolink(
        api_key=API_KEY, base_url=BASE_URL, transport=httpx.MockTransport(handler)
    ) as client:
        door = getattr(client, resource)
        created = door.create(GenerationRequest(prompt="waves on a shore", model=model))
        done = door.run("waves on a shore", model=model, timeout=30)

    assert TASK_ID == created.id
    assert TaskStatus.COMPLETED == done.status
    assert [path, path] == [url_path for _, url_path, _ in sent]
    assert resource[:-1] == door.kind
