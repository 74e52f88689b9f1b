"""Validation before sending: misspelt models, parameters a model does not take, URLs,
numbers, the retired gpt-4o-image's documented rules, kinds, aliases, extra_body."""

from __future__ import annotations

import contextlib
import json
import warnings
from typing import Any

import pytest

import evolink
from conftest import BASE, KEY, FakeServer
from evolink.testing import TEST_API_KEY, Simulator, VirtualClock


def _client(server: FakeServer) -> evolink.AsyncEvolink:
    return evolink.AsyncEvolink(api_key=KEY, base_url=BASE, transport=server.transport())


def _resource(client: evolink.AsyncEvolink, kind: str) -> Any:
    return {"image": client.images, "video": client.videos, "audio": client.audios}[kind]


# ---------------------------------------------------------------- misspelt models


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "asked", "meant"),
    [
        ("video", "Kling-V3-Text-To-Video", "kling-v3-text-to-video"),
        ("image", "gpt-image-2 ", "gpt-image-2"),
        ("image", "gpt-imgae-2", "gpt-image-2"),
        ("video", "kling-v3-text-to-vidoe", "kling-v3-text-to-video"),
    ],
)
async def test_a_misspelt_model_is_a_validation_error_before_any_request(
    server: FakeServer, kind: str, asked: str, meant: str
) -> None:
    """Issue: "A misspelt model ... is a ValidationError naming the field, the allowed
    values ..., BEFORE any request"."""
    async with _client(server) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", evolink.UnknownModelWarning)
            with pytest.raises(evolink.ValidationError) as caught:
                await _resource(client, kind).generate("a fox", model=asked)
    assert server.requests == []
    assert caught.value.field == "model"
    assert meant in str(caught.value)


@pytest.mark.anyio
async def test_a_model_the_catalog_does_not_know_is_sent_as_asked_with_a_warning(
    server: FakeServer,
) -> None:
    async with _client(server) as client:
        with pytest.warns(evolink.UnknownModelWarning):
            await client.videos.generate("a fox", model="zz-future-model-2031", duration=7)
    assert server.creates == [{"model": "zz-future-model-2031", "prompt": "a fox", "duration": 7}]
    assert server.create_paths == ["/v1/videos/generations"]


# ----------------------------------------------------- parameters a model does not take


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "model", "params"),
    [
        ("video", "kling-v3-text-to-video", {"size": "16:9"}),
        ("video", "kling-v3-text-to-video", {"n": 2}),
        ("video", "kling-v3-text-to-video", {"aspect_ration": "16:9"}),
        ("image", "gpt-image-2", {"qualty": "high"}),
        ("audio", "doubao-seed-audio-1-0", {"size": "1:1"}),
    ],
)
async def test_a_parameter_the_model_does_not_take_is_refused(
    server: FakeServer, kind: str, model: str, params: dict[str, Any]
) -> None:
    """Issue: "a size the model does not take ... is a ValidationError"; docs: a model's own
    parameters are checked against its schema, and only `extra_body` is unchecked."""
    async with _client(server) as client:
        with pytest.raises(evolink.ValidationError) as caught:
            await _resource(client, kind).generate("a fox", model=model, **params)
    assert server.requests == [], json.dumps(server.creates)
    assert caught.value.field == next(iter(params))


@pytest.mark.anyio
async def test_extra_body_is_the_unchecked_escape_hatch(server: FakeServer) -> None:
    async with _client(server) as client:
        await client.videos.generate(
            "a fox", model="kling-v3-text-to-video", extra_body={"duration": 99, "new_knob": 1}
        )
    assert server.creates == [
        {"model": "kling-v3-text-to-video", "prompt": "a fox", "duration": 99, "new_knob": 1}
    ]


# ------------------------------------------------------------------------ numbers


@pytest.mark.anyio
async def test_an_integer_given_as_a_float_is_sent_as_an_integer_or_refused(
    server: FakeServer,
) -> None:
    """duration=5.0 is a JSON-schema integer; if the SDK accepts it, it must not put `5.0`
    on the wire (a strictly typed server refuses a float for an integer field)."""
    async with _client(server) as client:
        try:
            await client.videos.generate("a fox", model="kling-v3-text-to-video", duration=5.0)
        except evolink.ValidationError:
            assert server.requests == []
            return
    raw = server.requests[0].content
    assert b'"duration":5,' in raw.replace(b" ", b"") + b"," or b'"duration":5}' in raw.replace(
        b" ", b""
    ), raw


@pytest.mark.anyio
@pytest.mark.parametrize("value", [True, "5", 5.5, float("nan"), float("inf")])
async def test_non_integers_for_an_integer_field_are_refused(
    server: FakeServer, value: object
) -> None:
    async with _client(server) as client:
        with pytest.raises(evolink.ValidationError) as caught:
            await client.videos.generate("a fox", model="kling-v3-text-to-video", duration=value)
    assert caught.value.field == "duration"
    assert server.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize("n", [0, 11])
async def test_n_out_of_range_names_the_model_and_its_docs_page(server: FakeServer, n: int) -> None:
    """Issue: an out-of-range number is a ValidationError naming the field, the allowed values
    and the model's doc page (gpt-image-2 takes n 1..10)."""
    async with _client(server) as client:
        with pytest.raises(evolink.ValidationError) as caught:
            await client.images.generate("a fox", model="gpt-image-2", n=n)
    message = str(caught.value)
    assert caught.value.field == "n"
    assert "gpt-image-2" in message, message
    assert "gpt-image-2-image-generation.mdx" in message, message


CASE_VARIANTS = [
    ("kling-v3-text-to-video", "video", "quality", "4K"),
    ("doubao-seedream-4.5", "image", "quality", "4k"),
    ("doubao-seed-audio-1-0", "audio", "format", "MP3"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("model", "kind", "field", "value"), CASE_VARIANTS)
async def test_enum_values_in_another_case_are_never_sent_unchanged(
    server: FakeServer, model: str, kind: str, field: str, value: str
) -> None:
    """kling takes `4k`, seedream `4K`: a value in the other case is refused or normalised."""
    async with _client(server) as client:
        with contextlib.suppress(evolink.ValidationError):
            await _resource(client, kind).generate("a fox", model=model, **{field: value})
    assert all(body.get(field) != value for body in server.creates)


# --------------------------------------------------------------------------- URLs


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("model", "params"),
    [
        (
            "videoretalk",
            {"video_url": "ftp://a.example/v.mp4", "audio_url": "https://a.example/a.mp3"},
        ),
        ("kling-v3-image-to-video", {"image_start": "file:///etc/passwd"}),
        ("seedance-2.5-video-edit", {"video_urls": ["ftp://a.example/v.mp4"]}),
        ("wan2.6-text-to-video", {"audio_url": "ftp://a.example/a.mp3"}),
    ],
)
async def test_non_http_urls_in_model_url_fields_are_refused_before_sending(
    model: str, params: dict[str, Any]
) -> None:
    """models.md: even an unknown model gets the common check "http(s) URLs"; the simulator
    (modelled on the docs) answers 400 for these, so sending them wastes a request."""
    server = FakeServer()
    prompt = None if model in {"videoretalk", "kling-v3-image-to-video"} else "a fox"
    async with _client(server) as client:
        with pytest.raises(evolink.ValidationError) as caught:
            await client.videos.generate(prompt, model=model, **params)
    assert server.requests == [], json.dumps(server.creates)
    assert caught.value.field.split("[")[0] == next(iter(params))


@pytest.mark.anyio
async def test_image_urls_given_as_one_string_is_refused_with_a_clear_message(
    server: FakeServer,
) -> None:
    async with _client(server) as client:
        with pytest.raises(evolink.ValidationError) as caught:
            await client.images.generate("a fox", image_urls="https://a.example/b.png")  # type: ignore[arg-type]
    assert server.requests == []
    assert "'h'" not in str(caught.value), str(caught.value)


# ------------------------------------------------------- gpt-4o-image keeps working


async def _on_simulator(model: str, **params: Any) -> tuple[str, Simulator]:
    clock = VirtualClock()
    sim = Simulator(clock=clock)
    async with evolink.AsyncEvolink(
        api_key=TEST_API_KEY, transport=sim.transport(), clock=clock
    ) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                await client.images.generate("a red fox", model=model, **params)
            except evolink.ValidationError as exc:
                return f"ValidationError:{exc.field}", sim
            except evolink.APIError as exc:
                return f"{type(exc).__name__}:{exc}", sim
    return "sent", sim


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"n": 3}, "n"),
        ({"image_urls": [f"https://a.example/{i}.png" for i in range(6)]}, "image_urls"),
        (
            {
                "image_urls": ["https://a.example/1.png", "https://a.example/2.png"],
                "mask_url": "https://a.example/m.png",
            },
            "mask_url",
        ),
    ],
)
@pytest.mark.parametrize("model", ["gpt-4o-image", "gpt-4o-image-beta"])
async def test_gpt_4o_image_documented_rules_still_checked_before_sending(
    model: str, params: dict[str, Any], field: str
) -> None:
    """SPEC.md's rules for gpt-4o-image (n 1, 2 or 4; at most 5 image_urls; no mask with more
    than one image): the SDK's own simulator refuses these with 400, so the SDK must too."""
    result, sim = await _on_simulator(model, **params)
    assert result == f"ValidationError:{field}", result
    assert sim.count("POST", "/v1/images/generations") == 0


@pytest.mark.anyio
async def test_gpt_4o_image_warns_naming_current_alternatives(server: FakeServer) -> None:
    async with _client(server) as client:
        with pytest.warns(DeprecationWarning, match="gpt-4o-image") as caught:
            await client.images.generate("a fox", model="gpt-4o-image", size="1:1", n=4)
    assert "gpt-image-2" in str(caught[0].message)
    assert server.creates[0]["model"] in {"gpt-4o-image", "gpt-4o-image-beta"}


@pytest.mark.anyio
async def test_the_default_image_model_is_current(server: FakeServer) -> None:
    async with _client(server) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            await client.images.generate("a fox")
    assert server.creates[0]["model"] == "gpt-image-2"
    spec = evolink.model_spec("gpt-image-2")
    assert spec is not None
    assert not spec.archived


# ------------------------------------------------------------------ kinds, aliases


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "model"),
    [
        ("image", "kling-v3-text-to-video"),
        ("video", "gpt-image-2"),
        ("audio", "kling-v3-text-to-video"),
        ("video", "suno-v5"),
        ("image", "veo3.1-fast"),
    ],
)
async def test_a_model_of_another_kind_is_refused_before_sending(
    server: FakeServer, kind: str, model: str
) -> None:
    async with _client(server) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with pytest.raises(evolink.ValidationError) as caught:
                await _resource(client, kind).generate("a fox", model=model)
    assert caught.value.field == "model"
    assert server.requests == []


@pytest.mark.anyio
async def test_a_generation_request_of_the_wrong_kind_goes_to_its_models_route_or_is_refused(
    server: FakeServer,
) -> None:
    """GenerationRequest's kind defaults to image; given a video model, it must not be POSTed
    to /v1/images/generations."""
    request = evolink.GenerationRequest(prompt="a fox", model="kling-v3-text-to-video")
    async with _client(server) as client:
        with contextlib.suppress(evolink.ValidationError):
            await client.images.create(request)
    assert "/v1/images/generations" not in server.create_paths


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("alias", "kind", "params"),
    [
        ("suno-v5", "audio", {"duration": 400}),
        ("veo3.1-fast", "video", {"quality": "1080p"}),
        ("grok-imagine-text-to-video", "video", {"duration": 31}),
    ],
)
async def test_an_alias_is_checked_against_the_model_it_maps_to(
    server: FakeServer, alias: str, kind: str, params: dict[str, Any]
) -> None:
    async with _client(server) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with pytest.raises(evolink.ValidationError):
                await _resource(client, kind).generate("a fox", model=alias, **params)
    assert server.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "model", "prompt", "params"),
    [
        (
            "image",
            "mj-v7-upscale",
            None,
            {"model_params": {"task_id": "task-unified-1", "image_number": 1, "type": "standard"}},
        ),
        (
            "image",
            "doubao-seedream-5.0-pro-layerize",
            None,
            {"image_urls": ["https://a.example/b.png"]},
        ),
        (
            "video",
            "happyhorse-1.0-image-to-video",
            None,
            {"image_urls": ["https://a.example/b.png"]},
        ),
        (
            "audio",
            "qwen-voice-design",
            None,
            {"voice_prompt": "warm", "preview_text": "hi", "preferred_name": "v1"},
        ),
    ],
)
async def test_models_without_a_prompt_are_sent_without_one(
    server: FakeServer, kind: str, model: str, prompt: str | None, params: dict[str, Any]
) -> None:
    async with _client(server) as client:
        await _resource(client, kind).generate(prompt, model=model, **params)
    assert "prompt" not in server.creates[0]
