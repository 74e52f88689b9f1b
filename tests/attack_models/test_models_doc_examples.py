"""Every documented example body goes through the SDK; a body mutated past a documented
constraint is refused before anything is sent."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import pytest

import evolink
from conftest import BASE, KEY, FakeServer, doc_examples, request_schema
from evolink.testing import VirtualClock

EXAMPLES = doc_examples()

# Examples whose body lacks a field their own schema's `required` lists (the docs contradict
# themselves): refusing those is defensible, so they are left out of the "passes" test.
SCHEMA_INCONSISTENT = {
    (ex[1], ex[2])
    for ex in EXAMPLES
    if any(f not in ex[3] and f != "prompt" for f in request_schema(ex[1]).get("required", []))
}


def _call_args(body: dict[str, Any]) -> tuple[str | None, str, dict[str, Any]]:
    rest = copy.deepcopy(body)
    model = rest.pop("model")
    prompt = rest.pop("prompt", None)
    return prompt, model, rest


def _resource(client: evolink.AsyncEvolink, kind: str) -> Any:
    return {"image": client.images, "video": client.videos, "audio": client.audios}[kind]


def _ids(ex: tuple[str, str, str, dict[str, Any]]) -> str:
    return f"{ex[3].get('model')}:{ex[2]}"


PASSING = [
    ex
    for ex in EXAMPLES
    if (ex[1], ex[2]) not in SCHEMA_INCONSISTENT
    and not ("prompt" not in ex[3] and "prompt" in request_schema(ex[1]).get("required", []))
]

# Examples with no `prompt` whose schema lists `prompt` as required, but whose prompt's own
# description says it may be empty (Kling multi-shot with shot_type=customize).
PROMPTLESS_BY_PROSE = [
    ex
    for ex in EXAMPLES
    if (ex[1], ex[2]) not in SCHEMA_INCONSISTENT
    and "prompt" not in ex[3]
    and "prompt" in request_schema(ex[1]).get("required", [])
]


def test_the_examples_were_found() -> None:
    assert len(EXAMPLES) > 200
    assert len({ex[3]["model"] for ex in EXAMPLES}) > 120


@pytest.mark.anyio
@pytest.mark.parametrize("example", PASSING, ids=_ids)
async def test_every_documented_example_is_sent_as_documented(
    example: tuple[str, str, str, dict[str, Any]],
) -> None:
    kind, _spec, _name, body = example
    server = FakeServer()
    prompt, model, rest = _call_args(body)
    async with evolink.AsyncEvolink(api_key=KEY, base_url=BASE, transport=server.transport()) as c:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            await _resource(c, kind).generate(prompt, model=model, **rest)
    assert server.creates == [body]
    assert server.create_paths == [f"/v1/{kind}s/generations"]


@pytest.mark.anyio
@pytest.mark.parametrize("example", PASSING[::7], ids=_ids)
async def test_documented_examples_pass_as_generation_requests_in_a_batch(
    example: tuple[str, str, str, dict[str, Any]],
) -> None:
    kind, _spec, _name, body = example
    server = FakeServer()
    prompt, model, rest = _call_args(body)
    common = {k: rest.pop(k) for k in ("size", "n", "image_urls", "mask_url") if k in rest}
    callback = rest.pop("callback_url", None)
    request = evolink.GenerationRequest(
        prompt=prompt, model=model, params=rest, callback_url=callback, kind=kind, **common
    )
    clock = VirtualClock()
    async with evolink.AsyncEvolink(
        api_key=KEY, base_url=BASE, transport=server.transport(), clock=clock
    ) as c:
        async with clock.running():
            report = await _resource(c, kind).generate_many([request], max_in_flight=1)
    assert [o.kind.value for o in report.outcomes] == ["completed"], report.outcomes[0]
    assert server.creates == [body]


@pytest.mark.anyio
@pytest.mark.parametrize("example", PROMPTLESS_BY_PROSE, ids=_ids)
async def test_documented_multi_shot_example_without_prompt_is_not_refused(
    example: tuple[str, str, str, dict[str, Any]],
) -> None:
    """The schema's prompt description: "Can be empty when multi_shot=true and
    shot_type=customize (content provided by multi_prompt)"; the docs' own example omits it."""
    kind, _spec, _name, body = example
    server = FakeServer()
    prompt, model, rest = _call_args(body)
    async with evolink.AsyncEvolink(api_key=KEY, base_url=BASE, transport=server.transport()) as c:
        await _resource(c, kind).generate(prompt, model=model, **rest)
    assert server.creates == [body]


def _mutations() -> list[tuple[str, str, dict[str, Any], str]]:  # noqa: PLR0912
    """(kind, doc page, mutated body, field at fault), one per documented constraint."""
    out: list[tuple[str, str, dict[str, Any], str]] = []
    seen: set[tuple[str, str, str]] = set()
    for kind, spec, _name, body in PASSING:
        props = request_schema(spec).get("properties", {})
        for field, value in body.items():
            if field in {"model", "prompt", "callback_url", "n"}:
                continue  # `n` has its own test (test_models_validation.py)
            schema = props.get(field, {})
            variants: list[tuple[str, Any]] = []
            if "enum" in schema:
                bad = "NOT-A-DOCUMENTED-VALUE" if isinstance(value, str) else 987654321
                variants.append(("enum", bad))
            if "maximum" in schema and isinstance(value, (int, float)):
                variants.append(("maximum", schema["maximum"] + 1))
            if "minimum" in schema and isinstance(value, (int, float)):
                variants.append(("minimum", schema["minimum"] - 1))
            if "maxItems" in schema and isinstance(value, list) and value:
                variants.append(("maxItems", [value[0]] * (schema["maxItems"] + 1)))
            if schema.get("type") == "integer":
                variants.append(("type", "five"))
            if schema.get("type") == "boolean":
                variants.append(("type", "yes"))
            for what, bad in variants:
                key = (body["model"], field, what)
                if key in seen:
                    continue
                seen.add(key)
                mutated = dict(body)
                mutated[field] = bad
                out.append((kind, spec, mutated, field))
        for field in request_schema(spec).get("required", []):
            if field in {"model", "prompt"} or field not in body:
                continue
            key = (body["model"], field, "required")
            if key in seen:
                continue
            seen.add(key)
            mutated = {k: v for k, v in body.items() if k != field}
            out.append((kind, spec, mutated, field))
    return out


MUTATIONS = _mutations()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "mutation", MUTATIONS, ids=[f"{m[2]['model']}:{m[3]}:{i}" for i, m in enumerate(MUTATIONS)]
)
async def test_a_body_breaking_a_documented_constraint_is_refused_before_sending(
    mutation: tuple[str, str, dict[str, Any], str],
) -> None:
    kind, spec, body, field = mutation
    server = FakeServer()
    prompt, model, rest = _call_args(body)
    async with evolink.AsyncEvolink(api_key=KEY, base_url=BASE, transport=server.transport()) as c:
        with pytest.raises(evolink.ValidationError) as caught:
            await _resource(c, kind).generate(prompt, model=model, **rest)
    assert server.requests == [], json.dumps(server.creates)
    assert caught.value.field.split("[")[0].split(".")[0] == field
    # the model's docs page is named (an overview file's models each have their own page)
    message = str(caught.value)
    assert model in message, message
    assert ".mdx" in message, message
    assert spec.split("/")[2] in message, message
