"""Videos and audio share the create path: one call, batches, refusals, the right endpoint."""

from __future__ import annotations

import warnings
from decimal import Decimal

import pytest

from evolink import (
    AsyncEvolink,
    GenerationRequest,
    OutcomeKind,
    SkipReason,
    TaskType,
    UnknownModelWarning,
    ValidationError,
)
from evolink.testing import TEST_API_KEY, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

VIDEO = "kling-v3-text-to-video"
AUDIO = "doubao-seed-audio-1-0"


def client_for(sim: Simulator, clock: VirtualClock) -> AsyncEvolink:
    return AsyncEvolink(
        api_key=TEST_API_KEY, base_url="https://sim.test", transport=sim.transport(), clock=clock
    )


async def test_a_video_is_created_on_its_endpoint_and_completes():
    """`client.videos.run` sends to /v1/videos/generations with the model's own parameters."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1)
    async with clock.running(), client_for(sim, clock) as client:
        done = await client.videos.run(
            "a fox running through snow", model=VIDEO, duration=5, aspect_ratio="16:9"
        )
    assert done.is_success
    assert TaskType.VIDEO == done.type
    assert 1 == sim.count("POST", "/v1/videos/generations")
    assert 0 == sim.count("POST", "/v1/images/generations")
    assert done.results[0].endswith(".mp4")


async def test_audio_is_created_on_its_endpoint():
    """`client.audios.generate` then `tasks.wait`."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=2)
    async with clock.running(), client_for(sim, clock) as client:
        task = await client.audios.generate("a calm voice reads a poem", model=AUDIO, format="mp3")
        done = await client.tasks.wait(task)
    assert done.is_success
    assert TaskType.AUDIO == done.type
    assert 1 == sim.count("POST", "/v1/audios/generations")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"duration": 20}, "duration", id="duration-past-maximum"),
        pytest.param({"quality": "8k"}, "quality", id="quality-not-in-enum"),
        pytest.param({"sound": True}, "sound", id="sound-wrong-type"),
    ],
)
async def test_a_video_breaking_its_schema_sends_nothing(params, field):
    """A parameter out of the model's documented range is refused before any request."""
    clock = VirtualClock()
    sim = Simulator(clock=clock)
    async with clock.running(), client_for(sim, clock) as client:
        with pytest.raises(ValidationError) as info:
            await client.videos.generate("a fox", model=VIDEO, **params)
    assert field == info.value.field
    assert [] == sim.requests


async def test_an_image_model_on_the_video_door_is_refused():
    """The catalog knows what each model makes: the wrong door names the right one."""
    clock = VirtualClock()
    sim = Simulator(clock=clock)
    async with client_for(sim, clock) as client:
        with pytest.raises(ValidationError, match=r"client\.images"):
            await client.videos.generate("a fox", model="gpt-image-2")
    assert [] == sim.requests


async def test_a_video_batch_of_prompts_uses_its_model_and_params():
    """`videos.generate_many` makes every prompt with the batch's model and params."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=3)
    prompts = [f"a lighthouse at dusk, take {i}" for i in range(6)]
    async with clock.running(), client_for(sim, clock) as client:
        report = await client.videos.generate_many(
            prompts, model=VIDEO, params={"duration": 5}, max_in_flight=3
        )
    assert report.ok
    assert 6 == sim.count("POST", "/v1/videos/generations")
    assert all(o.request is not None and o.request.kind == "video" for o in report.outcomes)


async def test_a_video_batch_needs_a_model_for_plain_prompts():
    """No default video model: a plain prompt without `model=` is rejected, nothing sent."""
    clock = VirtualClock()
    sim = Simulator(clock=clock)
    async with clock.running(), client_for(sim, clock) as client:
        report = await client.videos.generate_many(["a fox"])
    assert [OutcomeKind.REJECTED] == [o.kind for o in report.outcomes]
    assert [] == sim.requests


async def test_a_refused_model_costs_one_create_not_one_per_input():
    """A model the server refuses is tried once; every other input is skipped with why."""
    clock = VirtualClock()
    sim = Simulator(clock=clock)
    async with clock.running(), client_for(sim, clock) as client:
        with pytest.warns(UnknownModelWarning):
            report = await client.images.generate_many(
                [f"p{i}" for i in range(10)], model="some-retired-model", max_in_flight=8
            )
    assert 1 == sim.count("POST", "/v1/images/generations")
    kinds = [o.kind for o in report.outcomes]
    assert 1 == kinds.count(OutcomeKind.FAILED)
    skipped = [o for o in report.outcomes if o.kind is OutcomeKind.SKIPPED]
    assert 9 == len(skipped)
    assert {SkipReason.MODEL_REFUSED} == {o.reason for o in skipped}
    assert all("model_access_denied" in (o.error_message or "") for o in skipped)


async def test_a_refused_model_does_not_stop_other_models():
    """In a mixed batch, only the refused model's inputs are skipped: the catalog says it is
    retired, so none of them is even sent."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=4, accept_retired=False)
    requests = [
        GenerationRequest(prompt=f"p{i}", model="gpt-4o-image" if i % 2 else "gpt-image-2")
        for i in range(8)
    ]
    async with clock.running(), client_for(sim, clock) as client:
        with pytest.warns(DeprecationWarning, match="gpt-image-2"):
            report = await client.images.generate_many(requests, max_in_flight=4)
    by_model: dict[str, list[OutcomeKind]] = {}
    for outcome in report.outcomes:
        assert outcome.request is not None
        by_model.setdefault(outcome.request.model, []).append(outcome.kind)
    assert [OutcomeKind.COMPLETED] * 4 == by_model["gpt-image-2"]
    assert [OutcomeKind.SKIPPED] * 4 == by_model["gpt-4o-image"]
    assert 4 == sim.count("POST", "/v1/images/generations")
    assert Decimal(10) == report.charged


async def test_the_default_image_model_is_current():
    """`generate` without a model sends gpt-image-2, with no warning."""
    clock = VirtualClock()
    sim = Simulator(clock=clock)
    async with clock.running(), client_for(sim, clock) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            task = await client.images.generate("a fox")
    assert "gpt-image-2" == task.model
