"""The JSON-schema subset of Evolink's model files, as a value and a small interpreter.

`tools/generate_catalog.py` refuses any keyword not named here, so a new keyword in a future
docs snapshot needs a decision before it can reach the catalog. What each keyword does:

- checked: `type`, `enum`, `minimum`, `maximum`, `multipleOf`, `minLength`, `maxLength`,
  `pattern`, `minItems`, `maxItems`, `items`, `properties`, `required`, `oneOf`, and
  `additionalProperties` when it is a schema (the values of a free-form object).
- recorded, not checked: `default` (the server fills it in) and `format` (`uri`, `uuid`: an
  annotation, as `jsonschema` treats it by default; the platform fetches the URL and judges it).
- dropped by the generator: `additionalProperties: false` (the platform adds fields faster than
  the docs list them, so an unknown field is sent as asked, never refused) and the annotations
  `description`, `example`, `examples`, `title`. `$ref` is resolved by the generator.

Two choices differ from a literal reading, on purpose: `multipleOf` is decided in decimal
(0.57 is a multiple of 0.01, as the docs mean, though 0.57 / 0.01 is not whole in binary
floating point) and a tuple counts as an array (it is sent as one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

_JSON_TYPE_NAMES = {
    "array": "an array",
    "boolean": "a boolean",
    "integer": "an integer",
    "null": "null",
    "number": "a number",
    "object": "an object",
    "string": "a string",
}


@attrs.frozen
class Schema:
    """One schema of the subset. An empty `types` allows any JSON type."""

    types: tuple[str, ...] = ()
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    items: Schema | None = None
    properties: Mapping[str, Schema] = attrs.field(factory=dict)
    required: tuple[str, ...] = ()
    additional: Schema | None = None
    one_of: tuple[Schema, ...] = ()
    default: Any = None
    format: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schema:
        """Read the catalog's JSON form (the generator's output) of a schema."""
        kind = data.get("type")
        items = data.get("items")
        additional = data.get("additionalProperties")
        return cls(
            types=() if kind is None else tuple(kind) if isinstance(kind, list) else (kind,),
            enum=None if "enum" not in data else tuple(data["enum"]),
            minimum=data.get("minimum"),
            maximum=data.get("maximum"),
            multiple_of=data.get("multipleOf"),
            min_length=data.get("minLength"),
            max_length=data.get("maxLength"),
            pattern=data.get("pattern"),
            min_items=data.get("minItems"),
            max_items=data.get("maxItems"),
            items=None if items is None else cls.from_json(items),
            properties={k: cls.from_json(v) for k, v in data.get("properties", {}).items()},
            required=tuple(data.get("required", ())),
            additional=None if additional is None else cls.from_json(additional),
            one_of=tuple(cls.from_json(s) for s in data.get("oneOf", ())),
            default=data.get("default"),
            format=data.get("format"),
        )

    def describe(self) -> str:
        """What the schema allows, in a few words: `'1:1', '2:3'`, `an integer from 4 to 15`."""
        if self.enum is not None:
            return "one of " + ", ".join(_shown(v) for v in self.enum)
        if self.one_of:
            return "; or ".join(s.describe() for s in self.one_of)
        words = " or ".join(_JSON_TYPE_NAMES.get(t, t) for t in self.types) or "any value"
        if self.minimum is not None and self.maximum is not None:
            return f"{words} from {_shown(self.minimum)} to {_shown(self.maximum)}"
        if self.minimum is not None:
            return f"{words} of at least {_shown(self.minimum)}"
        if self.maximum is not None:
            return f"{words} of at most {_shown(self.maximum)}"
        return words


@attrs.frozen
class Violation:
    """The first rule a value breaks: where (a dotted path), which rule, and how."""

    field: str
    rule: str
    message: str


def first_violation(schema: Schema, value: Any, path: str = "") -> Violation | None:
    """The first rule of `schema` that `value` breaks, or None when it obeys them all."""
    if schema.types and not any(_is_type(value, t) for t in schema.types):
        wanted = " or ".join(_JSON_TYPE_NAMES.get(t, t) for t in schema.types)
        return Violation(path, "type", f"must be {wanted}, not {_json_type(value)}")
    if schema.enum is not None and not any(_json_equal(value, v) for v in schema.enum):
        return Violation(path, "one_of", f"{_shown(value)} is not {schema.describe()}")
    found = (
        _check_number(schema, value, path)
        or _check_string(schema, value, path)
        or _check_array(schema, value, path)
        or _check_object(schema, value, path)
    )
    if found is None and schema.one_of:
        found = _check_one_of(schema, value, path)
    return found


def _check_number(schema: Schema, value: Any, path: str) -> Violation | None:
    if not _is_type(value, "number"):
        return None
    if schema.minimum is not None and value < schema.minimum:
        limit = _shown(schema.minimum)
        return Violation(path, "minimum", f"is {_shown(value)}; the least allowed is {limit}")
    if schema.maximum is not None and value > schema.maximum:
        limit = _shown(schema.maximum)
        return Violation(path, "maximum", f"is {_shown(value)}; the most allowed is {limit}")
    step = schema.multiple_of
    if step is not None and Decimal(repr(value)) % Decimal(repr(step)) != 0:
        return Violation(path, "multiple_of", f"{_shown(value)} is not a multiple of {step}")
    return None


def _check_string(schema: Schema, value: Any, path: str) -> Violation | None:
    if not isinstance(value, str):
        return None
    if schema.min_length is not None and len(value) < schema.min_length:
        return Violation(
            path, "min_length", f"is {len(value)} characters; at least {schema.min_length}"
        )
    if schema.max_length is not None and len(value) > schema.max_length:
        return Violation(
            path, "max_length", f"is {len(value)} characters; at most {schema.max_length}"
        )
    if schema.pattern is not None and re.search(schema.pattern, value) is None:
        return Violation(path, "pattern", f"{_shown(value)} does not match {schema.pattern}")
    return None


def _check_array(schema: Schema, value: Any, path: str) -> Violation | None:
    if not _is_type(value, "array"):
        return None
    if schema.min_items is not None and len(value) < schema.min_items:
        return Violation(path, "min_items", f"has {len(value)} items; at least {schema.min_items}")
    if schema.max_items is not None and len(value) > schema.max_items:
        return Violation(path, "max_items", f"has {len(value)} items; at most {schema.max_items}")
    if schema.items is not None:
        for index, item in enumerate(value):
            found = first_violation(schema.items, item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _check_object(schema: Schema, value: Any, path: str) -> Violation | None:
    if not isinstance(value, Mapping):
        return None
    prefix = f"{path}." if path else ""
    for name in schema.required:
        if name not in value:
            return Violation(f"{prefix}{name}", "required", "is required")
    for name, item in value.items():
        rule = schema.properties.get(name, schema.additional)
        if rule is not None:
            found = first_violation(rule, item, f"{prefix}{name}")
            if found is not None:
                return found
    return None


def _check_one_of(schema: Schema, value: Any, path: str) -> Violation | None:
    matches = sum(first_violation(option, value, path) is None for option in schema.one_of)
    if matches == 1:
        return None
    how = "none" if matches == 0 else "more than one"
    return Violation(path, "one_schema", f"matches {how} of the forms: {schema.describe()}")


def _is_type(value: Any, kind: str) -> bool:
    # As JSON Schema 2020-12 (and `jsonschema`) has it: a bool is no number, 3.0 is an integer.
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    checks: dict[str, bool] = {
        "array": isinstance(value, (list, tuple)),
        "boolean": isinstance(value, bool),
        "null": value is None,
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "object": isinstance(value, Mapping),
        "string": isinstance(value, str),
    }
    return checks.get(kind, False)


def _json_type(value: Any) -> str:
    for kind in ("boolean", "integer", "number", "string", "array", "object", "null"):
        if _is_type(value, kind):
            return _JSON_TYPE_NAMES[kind]
    return type(value).__name__


def _json_equal(left: Any, right: Any) -> bool:
    # JSON equality: true is not 1, 1.0 is 1, containers compare item by item.
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, str) or isinstance(right, str):
        return isinstance(left, str) and isinstance(right, str) and left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, Sequence) and isinstance(right, Sequence):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    return bool(left == right)


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)
