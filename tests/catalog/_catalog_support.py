"""The yardstick for the catalog's validator: `jsonschema` on the model's own OpenAPI file.

Two of the validator's documented choices are applied to `jsonschema` too, so the two judge
the same rules: `additionalProperties: false` is dropped (unknown fields are sent, never
refused) and `multipleOf` is decided in decimal, not in binary floating point.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.validators import Draft202012Validator, extend

from evolink._catalog import ModelSpec

ROOT = Path(__file__).resolve().parents[2]


def _decimal_multiple_of(validator, step, instance, schema):
    if validator.is_type(instance, "number") and Decimal(repr(instance)) % Decimal(repr(step)):
        yield jsonschema.ValidationError(f"{instance!r} is not a multiple of {step}")


_Validator = extend(Draft202012Validator, {"multipleOf": _decimal_multiple_of})


def _without_closed_objects(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _without_closed_objects(value)
            for key, value in node.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(node, list):
        return [_without_closed_objects(item) for item in node]
    return node


@functools.cache
def openapi_request(spec_path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request schema (with `components` beside it for `$ref`) and the raw document."""
    document = json.loads((ROOT / spec_path).read_text(encoding="utf-8"))
    [operations] = document["paths"].values()
    schema = copy.deepcopy(operations["post"]["requestBody"]["content"]["application/json"])
    return {**schema["schema"], "components": document["components"]}, document


@functools.cache
def _validator(spec_path: str) -> Any:
    schema, _ = openapi_request(spec_path)
    return _Validator(_without_closed_objects(schema))


def jsonschema_paths(spec: ModelSpec, body: Mapping[str, Any]) -> set[str]:
    """Where `jsonschema` finds fault with `body`, as dotted paths; empty when it accepts."""
    return set(_paths(_validator(spec.spec).iter_errors(body)))


def _paths(errors: Iterable[jsonschema.ValidationError]) -> Iterator[str]:
    for error in errors:
        where = dotted(error.absolute_path)
        if error.validator == "required":
            prefix = f"{where}." if where else ""
            missing = [name for name in error.validator_value if name not in error.instance]
            yield from (prefix + name for name in missing)
        else:
            yield where


def dotted(parts: Iterable[str | int]) -> str:
    """`["model_params", "shots", 0, "prompt"]` -> `model_params.shots[0].prompt`."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def property_example(spec: ModelSpec, path: list[str]) -> Any:
    """The `example` the OpenAPI file gives for the property at `path`, or None."""
    schema, _ = openapi_request(spec.spec)
    node = schema["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for name in path:
        node = node.get("properties", {}).get(name, {})
    return node.get("example", node.get("default"))
