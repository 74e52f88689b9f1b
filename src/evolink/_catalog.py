"""The model catalog: what each Evolink model accepts, and the check of a request body.

The data is `catalog.json`, generated from Evolink's own OpenAPI files by
`tools/generate_catalog.py` (never edited by hand) and read once, on first use.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any, Literal

import attrs

from evolink._errors import ValidationError
from evolink._schema import Schema, first_violation

Kind = Literal["image", "video", "audio"]


@attrs.frozen
class Example:
    """A request body from the model's docs page.

    `borrowed` marks a family's example given to a member the docs show none for, with
    only `model` changed.
    """

    name: str
    summary: str
    body: Mapping[str, Any]
    borrowed: bool


@attrs.frozen
class ModelSpec:
    """One model as its docs page describes it.

    Attributes:
        name: the model's name, sent as `model`.
        kind: `"image"`, `"video"` or `"audio"`.
        endpoint: the path its tasks are created with (`/v1/videos/generations`).
        params: the request body's schema, less `model`.
        params_type: the name of its TypedDict in `evolink._model_names`.
        doc: its docs page, as a path in Evolink's docs.
        spec: its OpenAPI file, as a path under `specs/` in this repository.
        archived: taken off the docs (the platform may refuse it).
        aliases: old names the platform maps to this one.
        examples: the request bodies its docs show.
    """

    name: str
    kind: Kind
    endpoint: str
    params: Schema
    params_type: str
    doc: str
    spec: str
    archived: bool
    aliases: tuple[str, ...]
    examples: tuple[Example, ...]

    @property
    def takes_prompt(self) -> bool:
        """Whether the body has a `prompt` field at all (Midjourney's actions have none)."""
        return "prompt" in self.params.properties

    @property
    def required(self) -> tuple[str, ...]:
        """The body's required fields, besides `model`."""
        return self.params.required


@attrs.frozen
class _Catalog:
    models: Mapping[str, ModelSpec]
    aliases: Mapping[str, str]


def model_spec(name: str) -> ModelSpec | None:
    """The model called `name` (or an old name the platform maps to it); None if unknown."""
    catalog = _catalog()
    return catalog.models.get(catalog.aliases.get(name, name))


def resolve_alias(name: str) -> str:
    """The name the platform maps `name` to (`gpt-4o-image` -> `gpt-4o-image-beta`), else `name`."""
    return _catalog().aliases.get(name, name)


def all_models() -> tuple[ModelSpec, ...]:
    """Every model in the catalog, current and archived, sorted by name."""
    return tuple(_catalog().models.values())


def validate_body(model: str, body: Mapping[str, Any]) -> None:
    """Check a request body against the documented schema of `model`.

    Checks required fields, JSON types, enums, ranges, string and array lengths, and nested
    objects (see `evolink._schema` for the exact subset). Fields the docs do not list are
    allowed, and `model` itself is not checked (it is the argument). A model the catalog does
    not know is not checked at all: see `model_spec`.

    Raises:
        ValidationError: naming the field (a dotted path such as `model_params.duration`),
            the rule, what is allowed, and the model's docs page.
    """
    spec = model_spec(model)
    if spec is None:
        return
    found = first_violation(spec.params, {k: v for k, v in body.items() if k != "model"})
    if found is not None:
        message = f"{found.message} ({spec.name}; see {spec.doc})"
        raise ValidationError(found.field, found.rule, message)


@functools.cache
def _catalog() -> _Catalog:
    text = resources.files("evolink").joinpath("catalog.json").read_text(encoding="utf-8")
    data = json.loads(text)
    schemas = {name: Schema.from_json(schema) for name, schema in data["schemas"].items()}
    aliases: dict[str, str] = data["aliases"]
    models = {
        name: ModelSpec(
            name=name,
            kind=entry["kind"],
            endpoint=entry["endpoint"],
            params=schemas[entry["params"]],
            params_type=entry["params"],
            doc=entry["doc"],
            spec=f"{data['source']}/{entry['spec']}",
            archived=entry["archived"],
            aliases=tuple(old for old, new in aliases.items() if new == name),
            examples=tuple(Example(**example) for example in entry["examples"]),
        )
        for name, entry in data["models"].items()
    }
    return _Catalog(models=models, aliases=aliases)
