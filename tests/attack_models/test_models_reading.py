"""Hostile servers answering video and audio tasks in odd shapes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import evolink
from conftest import BASE, KEY, FakeServer
from evolink.testing import VirtualClock

VIDEO = f"{BASE}/files/clip.mp4"
AUDIO = f"{BASE}/files/song.mp3"


def _done(task: dict[str, Any], **over: Any) -> dict[str, Any]:
    body = dict(task, status="completed", progress=100)
    body.update(over)
    return body


def _client(server: FakeServer, clock: VirtualClock | None = None) -> evolink.AsyncEvolink:
    return evolink.AsyncEvolink(
        api_key=KEY, base_url=BASE, transport=server.transport(), clock=clock, max_retries=0
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "model", "result_data", "url"),
    [
        ("video", "kling-v3-text-to-video", {"video_url": VIDEO}, VIDEO),
        ("audio", "suno-v5-beta", {"audio_url": AUDIO}, AUDIO),
        ("image", "gpt-image-2", {"image_url": f"{BASE}/files/a.png"}, f"{BASE}/files/a.png"),
    ],
)
async def test_a_result_only_in_result_data_is_a_result(
    server: FakeServer, kind: str, model: str, result_data: dict[str, str], url: str
) -> None:
    """Issue: lenient reading of `result_data` with image_url/video_url/audio_url."""
    server.on_read = lambda task: _done(task, results=[], result_data=result_data)
    async with _client(server) as client:
        resource = {"image": client.images, "video": client.videos, "audio": client.audios}[kind]
        task = await resource.generate("a fox", model=model)
        done = await client.tasks.get(task.id)
    assert done.is_success
    assert url in done.results, (done.results, done.extra)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "cost",
    [
        {"credits": 4.5, "usd": 0.06, "cny": 0.43},
        {"credits": "4.5", "usd": "0.06"},
        4.5,
        "4.5",
        {},
        None,
    ],
)
async def test_a_completed_video_with_any_cost_shape_is_completed_in_a_batch(
    server: FakeServer, cost: object
) -> None:
    server.on_read = lambda task: _done(
        task,
        results=[VIDEO],
        usage={"billing_rule": "per_second", "credits_reserved": 5, "cost": cost},
    )
    clock = VirtualClock()
    async with _client(server, clock) as client, clock.running():
        report = await client.videos.generate_many(
            ["a fox", "a hare"], model="kling-v3-text-to-video", params={"duration": 5}
        )
    assert [o.kind.value for o in report.outcomes] == ["completed", "completed"]
    assert all(o.task is not None and o.task.results == (VIDEO,) for o in report.outcomes)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "error", [{"code": 500, "message": "boom"}, {"message": "boom"}, {"code": None}]
)
async def test_a_failed_video_with_an_odd_error_code_is_a_failed_outcome(
    server: FakeServer, error: dict[str, Any]
) -> None:
    server.on_read = lambda task: dict(task, status="failed", error=error)
    clock = VirtualClock()
    async with _client(server, clock) as client, clock.running():
        report = await client.videos.generate_many(["a fox"], model="kling-v3-text-to-video")
    assert [o.kind.value for o in report.outcomes] == ["failed"]


@pytest.mark.anyio
async def test_success_false_on_a_create_is_an_api_error_not_an_uncertain_create(
    server: FakeServer,
) -> None:
    """PLATFORM.md / issue: a body with `success: false` is an error even with HTTP 200: the
    create did not make a task, so it must not be reported as possibly made."""
    server.on_create = lambda body, path: httpx.Response(
        200, json={"success": False, "code": 403, "msg": "model not available for this key"}
    )
    async with _client(server) as client:
        with pytest.raises(evolink.APIError) as caught:
            await client.videos.generate("a fox", model="kling-v3-text-to-video")
    assert not isinstance(caught.value, evolink.SubmissionUncertainError), caught.value
    assert "model not available" in str(caught.value)


@pytest.mark.anyio
async def test_success_false_creates_in_a_batch_are_rejected_not_uncertain(
    server: FakeServer,
) -> None:
    server.on_create = lambda body, path: httpx.Response(
        200, json={"success": False, "code": 400, "msg": "bad request"}
    )
    clock = VirtualClock()
    async with _client(server, clock) as client, clock.running():
        report = await client.audios.generate_many(["a song"], model="suno-v5-beta")
    assert [o.kind.value for o in report.outcomes] != ["uncertain"], report.outcomes[0]


@pytest.mark.anyio
async def test_success_false_on_a_read_is_an_api_error_with_the_servers_words(
    server: FakeServer,
) -> None:
    server.on_read = lambda task: {"success": False, "code": 500, "msg": "upstream exploded"}
    async with _client(server) as client:
        task = await client.videos.generate("a fox", model="kling-v3-text-to-video")
        with pytest.raises(evolink.APIError) as caught:
            await client.tasks.get(task.id)
    assert "upstream exploded" in str(caught.value), str(caught.value)


@pytest.mark.anyio
async def test_saving_a_video_and_an_audio_task_gives_their_extensions(
    server: FakeServer, tmp_path: Any
) -> None:
    clock = VirtualClock()
    async with _client(server, clock) as client, clock.running():
        video = await client.videos.run("a fox", model="kling-v3-text-to-video", timeout=60)
        audio = await client.audios.run("a song", model="suno-v5-beta", timeout=60)
        async with httpx.AsyncClient(transport=server.transport()) as files:
            saved_v = await client.tasks.save(video, tmp_path, http_client=files)
            saved_a = await client.tasks.save(audio, tmp_path, http_client=files)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert any(n.endswith(".mp4") for n in names), (names, saved_v)
    assert any(n.endswith(".mp3") for n in names), (names, saved_a)
