"""Random bodies: the catalog's validator and `jsonschema` give the same verdict.

Bodies are built from each model's schema, mostly near the rules' edges (enum values and
strays, numbers around the limits, strings and arrays around their lengths, required fields
sometimes missing, a wrong JSON type now and then). When the validator refuses, the field it
names is one `jsonschema` names too.
"""

from __future__ import annotations

import pytest
from _catalog_support import jsonschema_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evolink._catalog import ModelSpec, all_models, validate_body
from evolink._errors import ValidationError
from evolink._schema import Schema

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-2, 2, allow_nan=False),
    st.text(max_size=3),
)


def values(schema: Schema, depth: int = 0) -> st.SearchStrategy[object]:
    """Values near `schema`'s rules, with the odd wrong type."""
    options = [_near(schema, kind, depth) for kind in schema.types or ("string",)]
    if schema.enum is not None:
        documented = st.sampled_from(schema.enum)
        options = [documented, documented, documented, st.just("not-documented")]
    if schema.one_of:
        options += [values(option, depth + 1) for option in schema.one_of]
    # A wrong type one time in 25, so that a body has a fair chance of passing as a whole.
    near = st.one_of(*options)
    return st.integers(0, 24).flatmap(lambda n: SCALARS if n == 0 else near)


def _near(schema: Schema, kind: str, depth: int) -> st.SearchStrategy[object]:
    if kind == "string":
        limits = [n for n in (schema.min_length, schema.max_length) if n is not None]
        edges = [st.just("x" * n) for limit in limits for n in (limit - 1, limit, limit + 1)]
        patterned = [st.from_regex(schema.pattern)] if schema.pattern else []
        return st.one_of(st.text(max_size=8), *edges, *patterned)
    if kind in {"integer", "number"}:
        low = -5 if schema.minimum is None else int(schema.minimum) - 2
        high = 30 if schema.maximum is None else int(schema.maximum) + 2
        numbers = st.integers(low, high)
        if kind == "number":
            numbers |= st.floats(low, high, allow_nan=False) | st.integers(
                low * 100, high * 100
            ).map(lambda n: n / 100)
        return numbers
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        items = values(schema.items, depth + 1) if schema.items else SCALARS
        most = (schema.max_items or 3) + 1
        return st.lists(items, min_size=max((schema.min_items or 0) - 1, 0), max_size=most)
    if kind == "object":
        return objects(schema, depth + 1)
    return SCALARS


def objects(schema: Schema, depth: int = 0) -> st.SearchStrategy[object]:
    """Objects with the schema's fields: required ones usually there, others sometimes."""
    if depth > 4:
        return st.just({})
    fields = {name: values(field, depth) for name, field in schema.properties.items()}
    required = {k: v for k, v in fields.items() if k in schema.required}
    optional = {k: v for k, v in fields.items() if k not in schema.required}
    extra = []
    if schema.additional is not None:
        extra = [st.dictionaries(st.text(max_size=4), values(schema.additional, depth), max_size=2)]
    return st.one_of(
        st.fixed_dictionaries(required, optional=optional),
        st.fixed_dictionaries(required, optional=optional),
        st.fixed_dictionaries({}, optional=fields),
        *extra,
    )


_BODIES: dict[str, st.SearchStrategy[object]] = {}


def _bodies(spec: ModelSpec) -> st.SearchStrategy[object]:
    """`objects` for the spec's body, built once (building it anew for every example cost
    most of the test's time)."""
    if spec.name not in _BODIES:
        _BODIES[spec.name] = objects(spec.params)
    return _BODIES[spec.name]


def _verdict(spec: ModelSpec, body: dict[str, object]) -> str | None:
    try:
        validate_body(spec.name, body)
    except ValidationError as error:
        return error.field
    return None


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.name) for s in all_models()])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_validator_agrees_with_jsonschema(spec, data):
    """Accepted by one, accepted by the other; refused, at a field both name."""
    body = data.draw(_bodies(spec), label="body")
    assert isinstance(body, dict)
    body["model"] = spec.name
    field = _verdict(spec, body)
    faults = jsonschema_paths(spec, body)
    assert (field is None) == (not faults)
    if field is not None:
        assert field in faults
