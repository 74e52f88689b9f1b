"""Every documented rule is checked before any request, so no credit is spent on bad input."""

from __future__ import annotations

import json
import warnings
from typing import Any

import attrs
import pytest
import respx
from _core_support import CREATE_PATH, task_payload

from evolink import GenerationRequest, UnknownModelWarning, ValidationError, model_spec
from evolink._validation import validate

IMG = "https://img.example/ref.png"


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"),
    [
        pytest.param({"prompt": ""}, "prompt", "not_empty", id="empty-prompt"),
        pytest.param({"prompt": " \n\t "}, "prompt", "not_empty", id="whitespace-prompt"),
        pytest.param({"prompt": None}, "prompt", "required", id="prompt-missing"),
        pytest.param({"prompt": 7}, "prompt", "type", id="prompt-not-str"),
        pytest.param({"prompt": "x" * 32001}, "prompt", "max_length", id="over-long-prompt"),
        pytest.param({"model": ""}, "model", "not_empty", id="empty-model"),
        pytest.param({"model": "  "}, "model", "not_empty", id="whitespace-model"),
        pytest.param({"model": 4}, "model", "type", id="model-not-str"),
        pytest.param(
            {"model": "gpt-image-1.5", "size": "800x600"}, "size", "one_of", id="bad-size"
        ),
        pytest.param(
            {"model": "gpt-image-1.5", "size": "1:1 "}, "size", "one_of", id="size-with-space"
        ),
        pytest.param({"size": 1024}, "size", "type", id="size-not-str"),
        pytest.param({"model": "gpt-image-1.5", "n": 2}, "n", "one_of", id="bad-n"),
        pytest.param({"n": 11}, "n", "maximum", id="n-too-big"),
        pytest.param({"quality": "ultra"}, "quality", "one_of", id="bad-quality"),
        pytest.param({"resolution": 4}, "resolution", "type", id="resolution-not-str"),
        pytest.param({"n": True}, "n", "type", id="bool-n"),
        pytest.param({"n": 2.0}, "n", "type", id="float-n"),
        pytest.param({"n": 0}, "n", "minimum", id="n-zero"),
        pytest.param({"n": -1}, "n", "minimum", id="n-negative"),
        pytest.param(
            {"image_urls": ["ftp://x/y.png"]}, "image_urls[0]", "http_url", id="ftp-image"
        ),
        pytest.param(
            {"image_urls": [IMG, "file:///etc/passwd"]},
            "image_urls[1]",
            "http_url",
            id="file-image",
        ),
        pytest.param({"image_urls": ["https://"]}, "image_urls[0]", "http_url", id="no-host-image"),
        pytest.param({"image_urls": ["ref.png"]}, "image_urls[0]", "http_url", id="relative-image"),
        pytest.param({"image_urls": [7]}, "image_urls[0]", "type", id="image-not-str"),
        pytest.param({"image_urls": IMG}, "image_urls", "type", id="image-urls-a-string"),
        pytest.param(
            {"mask_url": "data:image/png;base64,AA"}, "mask_url", "http_url", id="data-mask"
        ),
        pytest.param(
            {"callback_url": "ftp://hooks.example/cb"},
            "callback_url",
            "http_url",
            id="ftp-callback",
        ),
        pytest.param(
            {"callback_url": "http://hooks.example/cb"}, "callback_url", "https", id="http-callback"
        ),
        pytest.param(
            {"callback_url": "https://hooks.example/" + "a" * 2030},
            "callback_url",
            "max_length",
            id="callback-too-long",
        ),
        pytest.param(
            {"callback_url": "https://127.0.0.1/cb"},
            "callback_url",
            "public_address",
            id="callback-127",
        ),
        pytest.param(
            {"callback_url": "https://10.1.2.3/cb"},
            "callback_url",
            "public_address",
            id="callback-10",
        ),
        pytest.param(
            {"callback_url": "https://172.16.5.4/cb"},
            "callback_url",
            "public_address",
            id="callback-172-16",
        ),
        pytest.param(
            {"callback_url": "https://192.168.1.1:8443/cb"},
            "callback_url",
            "public_address",
            id="callback-192-168",
        ),
        pytest.param(
            {"callback_url": "https://169.254.169.254/latest"},
            "callback_url",
            "public_address",
            id="callback-link-local",
        ),
        pytest.param(
            {"callback_url": "https://0.0.0.0/cb"},
            "callback_url",
            "public_address",
            id="callback-unspecified",
        ),
        pytest.param(
            {"callback_url": "https://localhost/cb"},
            "callback_url",
            "public_address",
            id="callback-localhost",
        ),
        pytest.param(
            {"callback_url": "https://LOCALHOST:9000/cb"},
            "callback_url",
            "public_address",
            id="callback-localhost-upper",
        ),
        pytest.param(
            {"callback_url": "https://localhost./cb"},
            "callback_url",
            "public_address",
            id="callback-localhost-dot",
        ),
        pytest.param(
            {"callback_url": "https://127.0.0.1./cb"},
            "callback_url",
            "public_address",
            id="callback-127-dot",
        ),
        pytest.param(
            {"callback_url": "https://api.localhost/cb"},
            "callback_url",
            "public_address",
            id="callback-sub-localhost",
        ),
        pytest.param(
            {"callback_url": "https://[::1]/cb"},
            "callback_url",
            "public_address",
            id="callback-ipv6-loopback",
        ),
        pytest.param(
            {"callback_url": "https://[fd00::1]/cb"},
            "callback_url",
            "public_address",
            id="callback-ipv6-ula",
        ),
        pytest.param(
            {"extra_body": {"prompt": "sneaky"}},
            "extra_body",
            "no_common_fields",
            id="extra-body-prompt",
        ),
        pytest.param(
            {"extra_body": {"n": 3, "seed": 1}}, "extra_body", "no_common_fields", id="extra-body-n"
        ),
        pytest.param(
            {"extra_body": {"model": "other"}},
            "extra_body",
            "no_common_fields",
            id="extra-body-model",
        ),
    ],
)
@pytest.mark.anyio
async def test_invalid_request_sends_nothing(
    router: respx.MockRouter, make_client, kwargs: dict[str, Any], field, rule
):
    """A request breaking a rule raises ValidationError naming field and rule; nothing is sent."""
    route = router.post(CREATE_PATH).respond(200, json=task_payload())
    args = {"prompt": "a red fox in snow", **kwargs}
    prompt = args.pop("prompt")

    async with make_client() as client:
        with pytest.raises(ValidationError) as info:
            await client.images.generate(prompt, **args)

    assert (field, rule) == (info.value.field, info.value.rule)
    assert str(info.value).startswith(f"{field}: ")
    assert str(info.value).endswith(f"[{rule}]")
    assert 0 == route.call_count
    assert 0 == len(router.calls)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="prompt-only"),
        pytest.param({"prompt": "x" * 32000}, id="prompt-at-limit"),
        pytest.param({"size": "1:1", "n": 1}, id="1-1-n1"),
        pytest.param({"size": "1536x1024", "n": 10}, id="1536x1024-n10"),
        pytest.param({"size": "2:3", "n": 2, "quality": "high"}, id="2-3-n2-high"),
        pytest.param({"model": "gpt-image-1.5", "size": "3:2", "n": 1}, id="gpt-image-1.5"),
        pytest.param({"image_urls": [IMG] * 5}, id="five-images"),
        pytest.param(
            {"image_urls": [IMG], "mask_url": "http://img.example/m.png"}, id="mask-one-image"
        ),
        pytest.param({"callback_url": "https://hooks.example/cb?x=1"}, id="public-callback"),
        pytest.param({"callback_url": "https://8.8.8.8/cb"}, id="public-ip-callback"),
        pytest.param(
            {"callback_url": "https://hooks.example/" + "a" * 2026}, id="callback-at-limit"
        ),
        pytest.param({"extra_body": {"seed": 7, "quality": "x"}}, id="extra-body-unchecked"),
        pytest.param({"extra_body": {}}, id="extra-body-empty"),
    ],
)
@pytest.mark.anyio
async def test_valid_request_is_sent(router: respx.MockRouter, make_client, kwargs):
    """A request inside every rule is sent, with extra_body's fields merged in."""
    route = router.post(CREATE_PATH).respond(200, json=task_payload())
    args = {"prompt": "a red fox in snow", **kwargs}
    prompt = args.pop("prompt")

    async with make_client() as client:
        await client.images.generate(prompt, **args)

    assert 1 == route.call_count
    sent = route.calls.last.request
    fields = {"model", "size", "n", "image_urls", "mask_url", "callback_url", "extra_body"}
    params = {k: v for k, v in args.items() if k not in fields}
    common = {k: v for k, v in args.items() if k in fields}
    expected = GenerationRequest(prompt=prompt, params=params or None, **common).to_body()

    assert expected == json.loads(sent.content)
    assert "application/json" == sent.headers["Content-Type"]


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"prompt": "x" * 5000}, id="long-prompt"),
        pytest.param({"size": "16:9"}, id="other-size"),
        pytest.param({"n": 3}, id="other-n"),
        pytest.param({"image_urls": [IMG] * 9, "mask_url": IMG}, id="many-images-with-mask"),
    ],
)
@pytest.mark.anyio
async def test_unknown_model_skips_model_rules(router: respx.MockRouter, make_client, kwargs):
    """A model the catalog does not know gets only the common rules, and a warning."""
    route = router.post(CREATE_PATH).respond(200, json=task_payload())
    args = {"prompt": "a fox", **kwargs}
    prompt = args.pop("prompt")

    async with make_client() as client:
        with pytest.warns(UnknownModelWarning, match="some-future-model"):
            await client.images.generate(prompt, model="some-future-model", **args)

    assert 1 == route.call_count


@pytest.mark.anyio
async def test_unknown_model_still_gets_common_rules(router: respx.MockRouter, make_client):
    """Common rules (here: n >= 1) hold for an unknown model too."""
    async with make_client() as client:
        with pytest.raises(ValidationError) as info:
            await client.images.generate("a fox", model="some-future-model", n=0)

    assert ("n", "positive") == (info.value.field, info.value.rule)
    assert 0 == len(router.calls)


@pytest.mark.parametrize(
    "callback_url",
    [
        pytest.param("http://127.0.0.1:8000/cb", id="http-loopback"),
        pytest.param("http://localhost:8000/cb", id="http-localhost"),
        pytest.param("https://10.0.0.2/cb", id="private"),
        pytest.param("http://[::1]:9000/cb", id="ipv6-loopback"),
    ],
)
@pytest.mark.anyio
async def test_allow_local_callbacks(router: respx.MockRouter, make_client, callback_url):
    """allow_local_callbacks accepts http and internal callbacks (for a local simulator)."""
    route = router.post(CREATE_PATH).respond(200, json=task_payload())

    async with make_client(allow_local_callbacks=True) as client:
        await client.images.generate("a fox", callback_url=callback_url)

    assert 1 == route.call_count


@pytest.mark.parametrize(
    ("callback_url", "rule"),
    [
        pytest.param("ftp://localhost/cb", "http_url", id="still-http-only"),
        pytest.param("http://localhost/" + "a" * 2048, "max_length", id="still-length-capped"),
    ],
)
def test_allow_local_callbacks_keeps_other_rules(callback_url, rule):
    """allow_local_callbacks relaxes only https and public address, not scheme or length."""
    request = GenerationRequest(prompt="a fox", callback_url=callback_url)

    with pytest.raises(ValidationError) as info:
        validate(request, allow_local_callbacks=True)

    assert ("callback_url", rule) == (info.value.field, info.value.rule)


def test_rules_come_from_the_catalog():
    """Each model's rules are its OpenAPI file's, through the generated catalog."""
    spec = model_spec("gpt-image-1.5")
    assert spec is not None
    assert "image" == spec.kind
    assert "/v1/images/generations" == spec.endpoint
    assert ("prompt",) == spec.required
    assert spec.takes_prompt


@pytest.mark.parametrize("model", ["gpt-4o-image", "gpt-4o-image-beta"])
def test_a_retired_model_warns_and_names_current_ones(model):
    """gpt-4o-image (an alias of the -beta) is off the docs: it still works, with a warning."""
    request = GenerationRequest(prompt="a fox", model=model, size="1:1", n=2)
    with pytest.warns(DeprecationWarning, match="gpt-image-2"):
        validate(request)


def test_a_model_of_another_kind_names_its_resource():
    """A video model sent through client.images is refused before sending."""
    request = GenerationRequest(prompt="a fox running", model="veo3.1-fast")
    with pytest.raises(ValidationError, match=r"client\.videos") as info:
        validate(request)
    assert ("model", "kind") == (info.value.field, info.value.rule)


def test_the_error_names_allowed_values_and_the_docs_page():
    """An enum violation says what is allowed, for which model, and where its page is."""
    request = GenerationRequest(prompt="p", model="gpt-image-1.5", size="7:3")
    with pytest.raises(ValidationError) as info:
        validate(request)
    message = str(info.value)
    assert "1024x1024" in message
    assert "gpt-image-1.5" in message
    assert ".mdx" in message


def test_a_known_model_sends_without_warning():
    """The default model is current: no warning at all."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate(GenerationRequest(prompt="a fox"))


def test_generation_request_body():
    """to_body sends only set fields, image_urls as a list, extra_body on top."""
    request = GenerationRequest(
        prompt="p", n=2, image_urls=[IMG], extra_body={"seed": 3}, callback_url="https://h.example/"
    )

    assert {
        "model": "gpt-image-2",
        "prompt": "p",
        "n": 2,
        "image_urls": [IMG],
        "callback_url": "https://h.example/",
        "seed": 3,
    } == request.to_body()
    assert (IMG,) == request.image_urls
    assert 2 == request.images
    assert 1 == GenerationRequest(prompt="p").images


@pytest.mark.parametrize(
    "field",
    [pytest.param("image_urls", id="image-url"), pytest.param("callback_url", id="callback")],
)
def test_a_url_that_does_not_parse_is_a_validation_error(field):
    """`http://[oops` is refused as a ValidationError, not a ValueError from urllib."""

    bad = "https://[oops/x.png"
    request = (
        GenerationRequest(prompt="x", image_urls=[bad])
        if field == "image_urls"
        else GenerationRequest(prompt="x", callback_url=bad)
    )
    with pytest.raises(ValidationError, match="http_url"):
        validate(request)


@pytest.mark.parametrize(
    ("size", "ok"),
    [
        ("auto", True),
        ("16:9", True),
        ("1024x1536", True),
        ("3840\u00d72160", True),
        ("7:3", False),
        ("1000x1000", False),
        ("16x16", False),
        ("3840x1024", False),
        ("wide", False),
    ],
)
def test_gpt_image_2_sizes_follow_its_documented_rules(size, ok):
    """gpt-image-2's size rules live in its field's description; they are checked too."""
    request = GenerationRequest(prompt="p", model="gpt-image-2", size=size)
    if ok:
        validate(request)
    else:
        with pytest.raises(ValidationError) as info:
            validate(request)
        assert ("size", "documented") == (info.value.field, info.value.rule)


@pytest.mark.parametrize(
    ("model", "meant"),
    [
        ("gpt-imgae-2", "gpt-image-2"),
        ("GPT-Image-2", "gpt-image-2"),
        ("gpt-image-2 ", "gpt-image-2"),
        ("kling-v3-text-to-vidoe", "kling-v3-text-to-video"),
    ],
)
def test_a_misspelt_model_is_refused_with_the_name_meant(model, meant):
    """A slip of a known name is a ValidationError naming it, not a new model."""
    with pytest.raises(ValidationError, match=meant) as info:
        validate(GenerationRequest(prompt="p", model=model))
    assert ("model", "known_model") == (info.value.field, info.value.rule)


@pytest.mark.parametrize("model", ["gpt-image-3", "seedance-3.0-text-to-video", "flux-9"])
def test_a_new_version_or_family_is_sent_with_a_warning(model):
    """Another version of a known family, or a new name, is a model newer than the catalog."""
    with pytest.warns(UnknownModelWarning):
        validate(GenerationRequest(prompt="p", model=model))


def test_a_parameter_the_model_does_not_take_is_refused():
    """Own parameters are checked by name too; newer fields go in extra_body."""
    with pytest.raises(ValidationError, match="extra_body") as info:
        validate(GenerationRequest(prompt="p", model="gpt-image-2", params={"seed": 1}))
    assert ("seed", "known_field") == (info.value.field, info.value.rule)
    validate(GenerationRequest(prompt="p", model="gpt-image-2", extra_body={"seed": 1}))


def test_kling_multi_shot_needs_no_top_level_prompt():
    """Kling's documented multi-shot example has prompts per shot and none at the top."""
    shots = [{"index": 1, "prompt": "a summit", "duration": "5"}]
    request = GenerationRequest(
        model="kling-v3-text-to-video",
        kind="video",
        params={"duration": 5, "model_params": {"multi_shot": True, "multi_prompt": shots}},
    )
    validate(request)
    with pytest.raises(ValidationError):
        validate(attrs.evolve(request, params={"duration": 5}))


def test_extra_body_cannot_override_a_checked_parameter():
    """`quality="high", extra_body={"quality": "ultra"}` would send the unchecked value."""
    request = GenerationRequest(
        prompt="p", params={"quality": "high"}, extra_body={"quality": "ultra"}
    )
    with pytest.raises(ValidationError) as info:
        validate(request)
    assert ("extra_body", "no_common_fields") == (info.value.field, info.value.rule)
