"""Batches against servers that refuse a model, mixed batches, budgets priced per second."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

import evolink
from conftest import BASE, KEY, FakeServer
from evolink.testing import VirtualClock

REFUSALS = {
    "model_access_denied": (403, "Token does not have access to model"),
    "model_not_found": (404, "The model does not exist"),
}


def _refuse(code: str) -> httpx.Response:
    status, message = REFUSALS[code]
    return httpx.Response(
        status, json={"error": {"code": code, "message": message, "type": "invalid_request_error"}}
    )


def _client(server: FakeServer, clock: VirtualClock) -> evolink.AsyncEvolink:
    return evolink.AsyncEvolink(
        api_key=KEY, base_url=BASE, transport=server.transport(), clock=clock, max_retries=0
    )


@pytest.mark.anyio
@pytest.mark.parametrize("code", sorted(REFUSALS))
async def test_a_refused_video_model_costs_one_create(server: FakeServer, code: str) -> None:
    server.on_create = lambda body, path: _refuse(code)
    clock = VirtualClock()
    async with _client(server, clock) as client, clock.running():
        report = await client.videos.generate_many(
            [f"a fox {i}" for i in range(6)], model="kling-v3-text-to-video", max_in_flight=6
        )
    assert len(server.creates) == 1
    kinds = [o.kind.value for o in report.outcomes]
    assert kinds.count("skipped") == 5, kinds
    for outcome in report.outcomes:
        if outcome.kind.value == "skipped":
            assert outcome.reason == evolink.SkipReason.MODEL_REFUSED
            assert REFUSALS[code][1] in (outcome.error_message or ""), outcome


@pytest.mark.anyio
async def test_a_model_refused_after_some_creates_succeeded_stops_submitting(
    server: FakeServer,
) -> None:
    """The platform retires the model mid-batch: the third create is refused."""

    def on_create(body: dict[str, Any], path: str) -> httpx.Response | None:
        return _refuse("model_access_denied") if len(server.creates) >= 3 else None

    server.on_create = on_create
    clock = VirtualClock()
    async with _client(server, clock) as client, clock.running():
        report = await client.audios.generate_many(
            [f"a song {i}" for i in range(8)], model="suno-v5-beta", max_in_flight=1
        )
    kinds = [o.kind.value for o in report.outcomes]
    assert len(server.creates) == 3, kinds
    assert kinds[:2] == ["completed", "completed"], kinds
    # The refused create itself was sent and refused: failed, with the server's code.
    assert kinds[2] in {"failed", "rejected", "skipped"}, kinds
    assert kinds[3:] == ["skipped"] * 5, kinds
    assert all(o.reason == evolink.SkipReason.MODEL_REFUSED for o in report.outcomes[3:])


@pytest.mark.anyio
async def test_a_model_refused_with_many_creates_in_flight_sends_no_more_after_the_refusal(
    server: FakeServer,
) -> None:
    def on_create(body: dict[str, Any], path: str) -> httpx.Response | None:
        return _refuse("model_access_denied") if len(server.creates) >= 2 else None

    server.on_create = on_create
    clock = VirtualClock()
    async with _client(server, clock) as client, clock.running():
        report = await client.videos.generate_many(
            [f"a fox {i}" for i in range(20)], model="kling-v3-text-to-video", max_in_flight=8
        )
    refused_at = next(i for i, _ in enumerate(server.creates) if i >= 1)
    assert len(server.creates) <= refused_at + 8, len(server.creates)
    assert sum(o.reason == evolink.SkipReason.MODEL_REFUSED for o in report.outcomes) >= 10
    assert len(report) == 20


@pytest.mark.anyio
async def test_other_models_of_a_mixed_batch_continue(server: FakeServer) -> None:
    def on_create(body: dict[str, Any], path: str) -> httpx.Response | None:
        return _refuse("model_access_denied") if body["model"] == "gpt-image-1.5" else None

    server.on_create = on_create
    requests = []
    for i in range(4):
        requests.append(evolink.GenerationRequest(prompt=f"p{i}", model="gpt-image-1.5"))
        requests.append(
            evolink.GenerationRequest(
                prompt=f"v{i}",
                model="kling-v3-text-to-video",
                params={"duration": 5},
                kind="video",
            )
        )
        requests.append(
            evolink.GenerationRequest(prompt=f"a{i}", model="suno-v5-beta", kind="audio")
        )
    clock = VirtualClock()
    async with _client(server, clock) as client, clock.running():
        report = await client.images.generate_many(requests, max_in_flight=4)
    by_model: dict[str, list[str]] = {}
    for outcome in report.outcomes:
        assert outcome.request is not None
        by_model.setdefault(outcome.request.model, []).append(outcome.kind.value)
    assert by_model["kling-v3-text-to-video"] == ["completed"] * 4
    assert by_model["suno-v5-beta"] == ["completed"] * 4
    assert by_model["gpt-image-1.5"].count("skipped") == 3
    assert sum(1 for b in server.creates if b["model"] == "gpt-image-1.5") == 1
    paths = {b["model"]: p for b, p in zip(server.creates, server.create_paths, strict=True)}
    assert paths["kling-v3-text-to-video"] == "/v1/videos/generations"
    assert paths["suno-v5-beta"] == "/v1/audios/generations"


@pytest.mark.anyio
async def test_a_deprecated_alias_refused_by_the_server_costs_one_create(
    server: FakeServer,
) -> None:
    server.on_create = lambda body, path: _refuse("model_access_denied")
    clock = VirtualClock()
    async with _client(server, clock) as client, clock.running():
        with pytest.warns(DeprecationWarning, match="gpt-4o-image"):
            report = await client.images.generate_many(
                [f"p{i}" for i in range(5)], model="gpt-4o-image", max_in_flight=5
            )
    assert len(server.creates) == 1
    assert [o.kind.value for o in report.outcomes].count("skipped") == 4


@pytest.mark.anyio
async def test_a_per_second_video_budget_is_held(server: FakeServer) -> None:
    """Videos reserve price x seconds; durations vary by input. The batch's committed credits
    may pass max_credits by at most one first-of-its-price reservation."""

    def on_create(body: dict[str, Any], path: str) -> httpx.Response | None:
        return None

    server.on_create = on_create
    seconds_reserved: list[Decimal] = []
    original = server._task

    def priced(body: dict[str, Any], path: str) -> dict[str, Any]:
        task = original(body, path)
        reserve = Decimal(body.get("duration", 5)) * 2
        task["usage"]["credits_reserved"] = float(reserve)
        seconds_reserved.append(reserve)
        return task

    server._task = priced  # type: ignore[method-assign]
    server.on_read = lambda task: dict(task, status="processing", progress=10)
    requests = [
        evolink.GenerationRequest(
            prompt=f"v{i}", model="kling-v3-text-to-video", params={"duration": d}, kind="video"
        )
        for i, d in enumerate([5, 15, 15, 5, 15, 5, 15, 15])
    ]
    clock = VirtualClock()
    async with _client(server, clock) as client, clock.running():
        run = client.videos.generate_many(
            requests, max_in_flight=8, max_credits=60, task_deadline=120
        )
        report = await run
    assert sum(seconds_reserved) <= 60 + 30, seconds_reserved
    assert report.reserved == sum(seconds_reserved)
