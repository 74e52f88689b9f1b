"""Every model's documented examples, and a broken copy of each, judged by the catalog.

The validator's verdict and field must agree with `jsonschema` reading the model's own
OpenAPI file; the docs' examples that break their own schema are listed, exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from _catalog_support import jsonschema_paths, property_example

from evolink._catalog import ModelSpec, all_models, validate_body
from evolink._errors import ValidationError
from evolink._schema import Schema

MODELS = all_models()
# The docs' own examples that leave out a field their schema requires (2026-08-21). Kling's
# prose says the prompt may be left out in multi-shot mode, which the schema does not express.
DOC_DEFECTS = {
    ("MiniMax-Hailuo-2.3-Fast", "image_to_video"): "image_urls",
    ("kling-o3-image-to-video", "multi_shot"): "prompt",
    ("kling-o3-text-to-video", "multi_shot"): "prompt",
    ("kling-v3-text-to-video", "multi_shot"): "prompt",
    ("qwen-image-edit", "image_edit"): "image_urls",
    ("qwen-image-edit-plus", "image_edit"): "image_urls",
    ("wan2.5-image-to-image", "image_to_image"): "image_urls",
    ("wan2.5-image-to-video", "image_to_video"): "image_urls",
    ("wan2.6-image-to-video", "image_to_video"): "image_urls",
    ("wan2.6-image-to-video-flash", "image_to_video"): "image_urls",
}


def _refusal(spec: ModelSpec, body: Mapping[str, Any]) -> ValidationError | None:
    try:
        validate_body(spec.name, body)
    except ValidationError as error:
        return error
    return None


@pytest.mark.parametrize(
    ("spec", "example_name"),
    [
        pytest.param(spec, example.name, id=f"{spec.name}-{example.name}")
        for spec in MODELS
        for example in spec.examples
    ],
)
def test_documented_example(spec, example_name):
    """An example passes unless it is a listed docs defect; jsonschema says the same."""
    [example] = [e for e in spec.examples if e.name == example_name]
    refused = _refusal(spec, example.body)
    expected_field = DOC_DEFECTS.get((spec.name, example_name))
    assert expected_field == (refused.field if refused else None)
    assert ({expected_field} if expected_field else set()) == jsonschema_paths(spec, example.body)
    if refused is not None:
        assert spec.doc in str(refused)


def accepted_body(spec: ModelSpec) -> dict[str, Any]:
    """A body the model accepts: its first sound example, completed where the docs forgot."""
    sound = [e for e in spec.examples if (spec.name, e.name) not in DOC_DEFECTS]
    body = copy.deepcopy(dict((sound or spec.examples)[0].body))
    for name in spec.required:
        body.setdefault(name, property_example(spec, [name]))
    return body


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.name) for s in MODELS])
def test_accepted_body(spec):
    """Each model has a body both validators accept (the docs' own, or completed from them)."""
    body = accepted_body(spec)
    assert _refusal(spec, body) is None
    assert set() == jsonschema_paths(spec, body)


def _mutations(spec: ModelSpec) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(kind, field, body): the accepted body with one documented constraint broken."""
    body = accepted_body(spec)
    places = [([], spec.params, body)]
    for name, schema in spec.params.properties.items():
        if schema.properties and isinstance(body.get(name), dict):
            places.append(([name], schema, body[name]))
    seen = set()
    for prefix, schema, value in places:
        for kind, name, broken in _broken(spec, prefix, schema, value):
            if kind not in seen:
                seen.add(kind)
                mutated = copy.deepcopy(body)
                target = mutated
                for part in prefix:
                    target = target[part]
                if broken is _DROP:
                    del target[name]
                else:
                    target[name] = broken
                yield kind, ".".join([*prefix, name]), mutated


_DROP = object()


def _broken(spec: ModelSpec, prefix: list[str], schema: Schema, value: dict[str, Any]):
    for name in schema.required:
        if name in value:
            yield "drop-required", name, _DROP
    for name, field in schema.properties.items():
        if field.one_of:
            continue  # a value past one form's limit may fit another
        if field.enum is not None:
            odd = "not-a-documented-value" if "string" in field.types else 10**6 + 7
            yield "enum", name, odd
        elif field.maximum is not None and "integer" in field.types:
            yield "maximum", name, int(field.maximum) + 1
        elif field.maximum is not None:
            yield "maximum", name, field.maximum + 1
        elif field.max_items is not None:
            items = value.get(name) or property_example(spec, [*prefix, name]) or []
            if items:
                yield "max-items", name, [items[0]] * (field.max_items + 1)


MUTATIONS = [
    pytest.param(spec, kind, field, body, id=f"{spec.name}-{kind}-{field}")
    for spec in MODELS
    for kind, field, body in _mutations(spec)
]


@pytest.mark.parametrize(("spec", "kind", "field", "body"), MUTATIONS)
def test_broken_body_is_refused(spec, kind, field, body):
    """A body breaking one documented constraint is refused, naming the field and the page."""
    refused = _refusal(spec, body)
    assert refused is not None
    assert field == refused.field
    assert spec.doc in str(refused)
    assert field in jsonschema_paths(spec, body)


def test_every_model_has_a_broken_body():
    """The mutations reach every model: none is tested on acceptance alone."""
    covered = {param.values[0].name for param in MUTATIONS}
    assert {spec.name for spec in MODELS} == covered
