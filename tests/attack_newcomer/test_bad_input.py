"""Bad input: a typed error naming the field, before any HTTP request (docs/how-to/models.md)."""

from __future__ import annotations

import warnings
from typing import Any

import httpx
import pytest

import evolink
from evolink import AsyncEvolink, GenerationRequest, ModelRetiredError, ValidationError
from evolink.testing import TEST_API_KEY, Simulator, VirtualClock

CASES = [
    ("images", {"qualty": "high"}, "qualty"),  # a typo of a parameter
    ("images", {"model": "gpt-image-1.5", "size": "16:9"}, "size"),  # not one of its sizes
    ("images", {"n": 11}, "n"),  # over the maximum
    ("images", {"n": 0}, "n"),
    ("images", {"model": "gpt-imgae-2"}, "model"),  # a slip of a known model's name
    ("images", {"model": "kling-v3-text-to-video"}, "model"),  # a video model on images
    ("images", {"callback_url": "http://127.0.0.1/cb"}, "callback_url"),
    ("images", {"model": "doubao-seedream-4.5", "quality": "8K"}, "quality"),
    ("videos", {"model": "kling-v3-text-to-video", "duration": 99}, "duration"),
    ("videos", {"model": "kling-v3-text-to-video", "duration": "5"}, "duration"),
    ("videos", {"model": "kling-v3-text-to-video", "aspect_ratio": "7:3"}, "aspect_ratio"),
    ("videos", {"model": "gpt-image-2"}, "model"),
    ("audios", {"model": "doubao-seed-audio-1-0", "format": "flac"}, "format"),
]


def _refusing_transport(sent: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    return httpx.MockTransport(handler)


@pytest.mark.anyio
@pytest.mark.parametrize(("resource", "kwargs", "field"), CASES)
async def test_validation_error_before_any_request(
    resource: str, kwargs: dict[str, Any], field: str
) -> None:
    sent: list[httpx.Request] = []
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=_refusing_transport(sent)) as client:
        with pytest.raises(ValidationError) as caught:
            await getattr(client, resource).generate("a red fox", **kwargs)
    assert sent == []
    exc = caught.value
    assert exc.field == field
    assert exc.rule
    assert field in str(exc)
    assert isinstance(exc, ValueError)  # documented in reference/errors.md


@pytest.mark.anyio
async def test_schema_errors_name_the_model_and_its_page() -> None:
    sent: list[httpx.Request] = []
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=_refusing_transport(sent)) as client:
        with pytest.raises(ValidationError) as caught:
            await client.videos.generate("x", model="kling-v3-text-to-video", duration=99)
    assert "kling-v3-text-to-video" in str(caught.value)
    assert ".mdx" in str(caught.value) or "http" in str(caught.value)
    assert sent == []


@pytest.mark.anyio
async def test_slip_of_model_name_suggests_the_model_meant() -> None:
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=_refusing_transport([])) as client:
        with pytest.raises(ValidationError, match="gpt-image-2"):
            await client.images.generate("a fox", model="GPT-Image-2")


@pytest.mark.anyio
async def test_videos_need_a_model() -> None:
    # "There is no default model" (docs/how-to/videos.md).
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=_refusing_transport([])) as client:
        with pytest.raises((TypeError, ValidationError)):
            await client.videos.generate("a fox running")  # type: ignore[call-arg]


@pytest.mark.anyio
async def test_tasks_get_rejects_a_malformed_id_before_sending() -> None:
    sent: list[httpx.Request] = []
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=_refusing_transport(sent)) as client:
        with pytest.raises(ValidationError):
            await client.tasks.get("../../v1/credits")
    assert sent == []


@pytest.mark.anyio
async def test_batch_rejects_bad_inputs_as_outcomes_and_sends_nothing_for_them() -> None:
    clock = VirtualClock()
    sim = Simulator(clock=clock)
    requests = [
        GenerationRequest(prompt="ok"),
        GenerationRequest(prompt="bad", n=99),
        GenerationRequest(prompt="bad", params={"qualty": "high"}),
    ]
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport(), clock=clock) as c:
        async with clock.running():
            report = await c.images.generate_many(requests)
    kinds = [o.kind.value for o in sorted(report.outcomes, key=lambda o: o.index)]
    assert kinds == ["completed", "rejected", "rejected"]
    assert sim.count("POST", "/v1/images/generations") == 1
    assert report.outcomes[1].error_message


@pytest.mark.anyio
async def test_retired_model_known_to_the_catalog_is_refused_before_sending() -> None:
    clock = VirtualClock()
    sim = Simulator(clock=clock, accept_retired=False)
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport(), clock=clock) as c:
        with pytest.raises(ModelRetiredError) as caught:
            await c.models.check("gpt-image-1")
        creates = sim.count("POST", "/v1/images/generations")
        with pytest.raises(ModelRetiredError), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            await c.images.generate("a fox", model="gpt-image-1")
        assert sim.count("POST", "/v1/images/generations") == creates == 0
    assert caught.value.model == "gpt-image-1"


@pytest.mark.anyio
async def test_retired_model_error_names_its_replacement_where_the_catalog_does() -> None:
    # docs/how-to/estimate.md: "a retired model raises ModelRetiredError (naming its
    # replacement where the catalog names one: Evolink retired gpt-image-1 without naming one)"
    clock = VirtualClock()
    sim = Simulator(clock=clock, accept_retired=False)
    sim.set_lifecycle("gpt-image-1.5", "retired", replacement="gpt-image-2")
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport(), clock=clock) as c:
        with pytest.raises(ModelRetiredError) as caught, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            await c.estimate(GenerationRequest(prompt="a fox", model="gpt-image-1.5"))
        assert caught.value.replacement == "gpt-image-2"
        assert "gpt-image-2" in str(caught.value)
        with pytest.raises(ModelRetiredError) as unnamed, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            await c.estimate(GenerationRequest(prompt="a fox", model="gpt-image-1"))
    assert unnamed.value.replacement is None
    assert "retired" in str(unnamed.value)


@pytest.mark.anyio
async def test_deprecated_alias_warns() -> None:
    clock = VirtualClock()
    sim = Simulator(clock=clock)
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport(), clock=clock) as c:
        with pytest.warns(DeprecationWarning, match="gpt-4o-image"):
            task = await c.images.generate("a fox", model="gpt-4o-image")
    assert task.model == "gpt-4o-image-beta"


@pytest.mark.anyio
async def test_unknown_model_warns_and_is_sent() -> None:
    sent: list[httpx.Request] = []
    async with AsyncEvolink(
        api_key=TEST_API_KEY, transport=_refusing_transport(sent), max_retries=0
    ) as client:
        with pytest.warns(evolink.UnknownModelWarning), pytest.raises(evolink.EvolinkError):
            await client.images.generate("a fox", model="brand-new-model-2027")
    assert len(sent) == 1
