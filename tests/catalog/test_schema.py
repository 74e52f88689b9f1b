"""The JSON-schema interpreter, rule by rule, and the catalog's front functions."""

from __future__ import annotations

import pytest

from evolink._catalog import model_spec, validate_body
from evolink._errors import ValidationError
from evolink._schema import Schema, first_violation

RANGE = Schema(types=("integer",), minimum=4, maximum=15)
AUTO_OR_SECONDS = Schema(
    one_of=(Schema(types=("integer",), minimum=3, maximum=10), Schema(enum=("auto",)))
)
BODY = Schema(
    types=("object",),
    required=("prompt",),
    properties={
        "prompt": Schema(types=("string",), min_length=1, max_length=5),
        "name": Schema(types=("string",), pattern="^[a-z_]+$"),
        "weight": Schema(types=("number",), minimum=0, maximum=1, multiple_of=0.01),
        "urls": Schema(types=("array",), min_items=1, max_items=2, items=Schema(types=("string",))),
        "duration": AUTO_OR_SECONDS,
        "flag": Schema(types=("boolean",)),
        "voices": Schema(types=("object",), additional=Schema(types=("string",))),
        "params": Schema(
            types=("object",),
            required=("task_id",),
            properties={"task_id": Schema(types=("string",)), "n": Schema(enum=(1, 2))},
        ),
    },
)


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        pytest.param({}, "prompt", "required", id="required"),
        pytest.param({"prompt": 3}, "prompt", "type", id="type"),
        pytest.param({"prompt": ""}, "prompt", "min_length", id="min-length"),
        pytest.param({"prompt": "abcdef"}, "prompt", "max_length", id="max-length"),
        pytest.param({"prompt": "a", "name": "A b"}, "name", "pattern", id="pattern"),
        pytest.param({"prompt": "a", "weight": -0.5}, "weight", "minimum", id="minimum"),
        pytest.param({"prompt": "a", "weight": 1.5}, "weight", "maximum", id="maximum"),
        pytest.param({"prompt": "a", "weight": 0.555}, "weight", "multiple_of", id="multiple-of"),
        pytest.param({"prompt": "a", "urls": []}, "urls", "min_items", id="min-items"),
        pytest.param({"prompt": "a", "urls": ["x"] * 3}, "urls", "max_items", id="max-items"),
        pytest.param({"prompt": "a", "urls": ["x", 1]}, "urls[1]", "type", id="array-item"),
        pytest.param({"prompt": "a", "duration": 11}, "duration", "one_schema", id="one-of-none"),
        pytest.param({"prompt": "a", "flag": 1}, "flag", "type", id="int-is-no-boolean"),
        pytest.param({"prompt": "a", "voices": {"a": 1}}, "voices.a", "type", id="additional"),
        pytest.param({"prompt": "a", "params": {}}, "params.task_id", "required", id="nested-req"),
        pytest.param(
            {"prompt": "a", "params": {"task_id": "t", "n": True}}, "params.n", "one_of", id="enum"
        ),
    ],
)
def test_each_rule_names_the_field(body, field, rule):
    """The first broken rule is reported with the field's dotted path and the rule's name."""
    found = first_violation(BODY, body)
    assert found is not None
    assert (field, rule) == (found.field, found.rule)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"prompt": "a"}, id="minimal"),
        pytest.param({"prompt": "a", "weight": 0.57, "duration": "auto"}, id="decimal-multiple"),
        pytest.param({"prompt": "a", "duration": 3.0, "urls": ("x",)}, id="float-int-tuple"),
        pytest.param(
            {"prompt": "a", "extra": object(), "params": {"task_id": "t", "n": 2.0}}, id="extra"
        ),
    ],
)
def test_sound_bodies_pass(body):
    """Unknown fields pass; 3.0 is an integer, 0.57 a multiple of 0.01, a tuple an array."""
    assert first_violation(BODY, body) is None


def test_one_of_more_than_one():
    """oneOf means exactly one: a value two forms accept is refused."""
    both = Schema(one_of=(Schema(types=("integer",)), Schema(types=("number",))))
    found = first_violation(both, 3)
    assert found is not None
    assert "more than one" in found.message


@pytest.mark.parametrize(
    ("schema", "text"),
    [
        pytest.param(RANGE, "an integer from 4 to 15", id="range"),
        pytest.param(Schema(types=("number",), minimum=0.5), "a number of at least 0.5", id="min"),
        pytest.param(Schema(types=("integer",), maximum=9), "an integer of at most 9", id="max"),
        pytest.param(Schema(enum=("1:1", 2)), "one of '1:1', 2", id="enum"),
        pytest.param(AUTO_OR_SECONDS, "an integer from 3 to 10; or one of 'auto'", id="one-of"),
        pytest.param(Schema(), "any value", id="any"),
    ],
)
def test_describe(schema, text):
    """What a schema allows reads as words in the error message."""
    assert text == schema.describe()


def test_message_names_allowed_values_and_doc():
    """The error gives the field, the allowed values, the model and its docs page."""
    spec = model_spec("MiniMax-Hailuo-02")
    assert spec is not None
    body = {"model": spec.name, "prompt": "a cat", "duration": 7}
    with pytest.raises(ValidationError) as caught:
        validate_body(spec.name, body)
    error = caught.value
    assert "duration" == error.field
    assert "one_of" == error.rule
    assert "6, 10" in error.message
    assert spec.doc in error.message


def test_unknown_model_is_not_checked():
    """A model the catalog does not know has no spec, and its body is sent as asked."""
    assert model_spec("no-such-model") is None
    validate_body("no-such-model", {"anything": object()})


def test_model_key_and_unknown_fields_are_not_checked():
    """`model` is the argument, not checked in the body; fields the docs omit are allowed."""
    validate_body("gpt-image-2", {"model": 3, "prompt": "a cat", "brand_new_field": [1]})


def test_spec_fields():
    """A spec knows its kind, endpoint, prompt, required fields, TypedDict and files."""
    spec = model_spec("mj-v7-upscale")
    assert spec is not None
    assert ("image", "/v1/images/generations", False) == (
        spec.kind,
        spec.endpoint,
        spec.takes_prompt,
    )
    assert "model_params" in spec.required
    assert spec.spec.startswith("specs/evolink-docs-2026-08-21/en/api-manual/image-series/")
    assert spec.doc.endswith("mj-v7-upscale.mdx")
    assert "MjV7UpscaleParams" == spec.params_type


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        pytest.param([1, "a"], True, id="equal-array"),
        pytest.param([1, "b"], False, id="other-array"),
        pytest.param({"k": 1.0}, True, id="equal-object"),
        pytest.param({"k": True}, False, id="true-is-not-1"),
        pytest.param(1, False, id="number-is-no-array"),
    ],
)
def test_enum_compares_as_json(value, accepted):
    """Enum membership is JSON equality: containers item by item, true never 1."""
    schema = Schema(enum=([1, "a"], {"k": 1}))
    assert accepted == (first_violation(schema, value) is None)


def test_type_message_names_a_non_json_value():
    """A value JSON has no type for is named by its Python type."""
    found = first_violation(Schema(types=("string",)), object())
    assert found is not None
    assert "must be a string, not object" == found.message
