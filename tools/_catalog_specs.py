"""Read Evolink's model files: each model's own file, its constraints, examples, aliases."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = {
    "/v1/images/generations": "image",
    "/v1/videos/generations": "video",
    "/v1/audios/generations": "audio",
}
# Every keyword the model files use, and what becomes of it (see src/evolink/_schema.py).
CHECKED = frozenset(
    {
        "type", "enum", "minimum", "maximum", "multipleOf", "minLength", "maxLength", "pattern",
        "minItems", "maxItems", "items", "properties", "required", "oneOf",
        "additionalProperties",
    }
)  # fmt: skip
RECORDED = frozenset({"default", "format"})
ANNOTATIONS = frozenset({"description", "example", "examples", "title"})
# The body fields each kind's `generate` names as arguments (src/evolink/_images.py and
# `_Media` in src/evolink/_generations.py); a model's other fields are its "options", the
# keyword arguments its overload takes (tests/catalog/test_generated.py holds them equal).
NAMED_FIELDS = {
    "image": ("prompt", "size", "n", "image_urls", "mask_url", "callback_url"),
    "video": ("prompt", "image_urls", "callback_url"),
    "audio": ("prompt", "image_urls", "callback_url"),
}
# "The previously integrated model name `a` is still supported and will be automatically
# mapped to `b`", and Suno's "(e.g. `a`, `b`) ... mapped to the corresponding `-beta` versions".
ONE_ALIAS = re.compile(r"model name `([^`]+)` is still supported and will be automatically mapped to `([^`]+)`")  # fmt: skip  # noqa: E501
BETA_ALIASES = re.compile(r"model names \(e\.g\. ((?:`[^`]+`(?:, )?)+)\) are still supported and will be automatically mapped to the corresponding `-beta` versions")  # fmt: skip  # noqa: E501


@dataclass(frozen=True)
class Corpus:
    """Everything the outputs are made of."""

    specs: Path
    models: list[Model]
    aliases: dict[str, str]  # old name -> catalog name, as the docs say
    params_names: dict[str, str]  # canonical(params) -> TypedDict name
    options_names: dict[str, str]  # canonical(options(model)) -> TypedDict name

    def params_name(self, model: Model) -> str:
        return self.params_names[canonical(model.params)]

    def options_name(self, model: Model) -> str:
        return self.options_names[canonical(options(model))]


def read_corpus(specs: Path) -> Corpus:
    """Read every model file under `specs`; raise `SpecError` on anything not understood."""
    files = [_read_file(path, specs) for path in sorted(specs.rglob("*.json"))]
    models = _own_models(files)
    aliases = _find_aliases(files, models)
    return Corpus(specs, models, aliases, _params_names(models), _options_names(models))


class SpecError(Exception):
    """A model file the generator cannot read faithfully."""


@dataclass(frozen=True)
class SpecFile:
    """One OpenAPI file: the models its `model` field names and its request schema."""

    path: str
    kind: str
    endpoint: str
    names: tuple[str, ...]
    schema: Mapping[str, Any]  # the request schema, `$ref`s resolved, descriptions kept
    examples: Mapping[str, Any]

    @property
    def archived(self) -> bool:
        return self.path.startswith("_archived/")


@dataclass(frozen=True)
class Model:
    """One model entry: its own file (the most specific that names it)."""

    name: str
    spec: SpecFile
    params: Mapping[str, Any]  # the constraints, without `model`
    examples: tuple[Mapping[str, Any], ...]


def _read_file(path: Path, specs: Path) -> SpecFile:
    relative = path.relative_to(specs).as_posix()
    document = json.loads(path.read_text(encoding="utf-8"))
    [(endpoint, operations)] = document["paths"].items()
    if endpoint not in KINDS or list(operations) != ["post"]:
        raise SpecError(f"{relative}: {endpoint} {list(operations)} is not a generation endpoint")
    content = operations["post"]["requestBody"]["content"]["application/json"]
    schema = _resolve(content["schema"], document, relative)
    model = schema["properties"]["model"]
    # The model's name is its enum; some files give only a default or an example.
    names = model.get("enum") or [model.get("default") or model["example"]]
    return SpecFile(
        path=relative,
        kind=KINDS[endpoint],
        endpoint=endpoint,
        names=tuple(names),
        schema=schema,
        examples=content["examples"],
    )


def _resolve(node: Any, document: Mapping[str, Any], where: str) -> Any:
    if isinstance(node, list):
        return [_resolve(item, document, where) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        prefix = "#/components/schemas/"
        if not node["$ref"].startswith(prefix) or len(node) > 1:
            raise SpecError(f"{where}: cannot resolve {node}")
        target = document["components"]["schemas"][node["$ref"].removeprefix(prefix)]
        return _resolve(target, document, where)
    return {key: _resolve(value, document, where) for key, value in node.items()}


def constraints(schema: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The schema as the catalog keeps it: checked keywords and `default`/`format` only."""
    kept: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ANNOTATIONS or (key == "additionalProperties" and value is False):
            continue
        if key not in CHECKED | RECORDED:
            raise SpecError(f"{where}: the keyword {key!r} is unknown; decide in _schema.py")
        kept[key] = _inner(key, value, where)
    return kept


def _inner(key: str, value: Any, where: str) -> Any:
    if key == "properties":
        return {name: constraints(sub, f"{where}.{name}") for name, sub in value.items()}
    if key in {"items", "additionalProperties"}:
        return constraints(value, f"{where}[]")
    if key == "oneOf":
        return [constraints(sub, f"{where}|") for sub in value]
    return value


def _own_models(files: list[SpecFile]) -> list[Model]:
    owner: dict[str, SpecFile] = {}
    for spec in files:
        for name in spec.names:
            rival = owner.get(name)
            if rival is not None and len(rival.names) == len(spec.names):
                raise SpecError(f"{name} is in {rival.path} and {spec.path}, equally specific")
            # An overview page repeats its family's models: the model's own page wins.
            if rival is None or len(spec.names) < len(rival.names):
                owner[name] = spec
    models = []
    for name, spec in sorted(owner.items(), key=lambda item: item[0].lower()):
        params = constraints(spec.schema, spec.path)
        params["properties"] = {k: v for k, v in params["properties"].items() if k != "model"}
        params["required"] = [r for r in params.get("required", []) if r != "model"]
        models.append(Model(name, spec, params, tuple(_examples(name, spec))))
    return models


def _examples(name: str, spec: SpecFile) -> Iterator[dict[str, Any]]:
    documented = [(key, example) for key, example in spec.examples.items()]
    own = [(key, example) for key, example in documented if example["value"]["model"] == name]
    for key, example in own or documented:
        # A family member without an example of its own shares the family's, renamed.
        yield {
            "name": key,
            "summary": example.get("summary", key),
            "borrowed": not own,
            "body": {**example["value"], "model": name},
        }


def _find_aliases(files: list[SpecFile], models: list[Model]) -> dict[str, str]:
    known = {model.name for model in models}
    aliases: dict[str, str] = {}
    for spec in files:
        text = " ".join(spec.schema["properties"]["model"].get("description", "").split())
        found = [(old, new) for old, new in ONE_ALIAS.findall(text)]
        for listed in BETA_ALIASES.findall(text):
            found += [(old, f"{old}-beta") for old in re.findall(r"`([^`]+)`", listed)]
        if "mapped to" in text and not found:
            raise SpecError(f"{spec.path}: an alias sentence the generator cannot read")
        for old, new in found:
            if new not in known or old in known:
                raise SpecError(f"{spec.path}: alias {old} -> {new} does not fit the catalog")
            aliases[old] = new
    return dict(sorted(aliases.items()))


def _params_names(models: list[Model]) -> dict[str, str]:
    """A TypedDict name per distinct parameter schema, from the first model that has it."""
    names: dict[str, str] = {}
    for model in models:
        key = canonical(model.params)
        names.setdefault(key, pascal(model.name) + "Params")
    if len(set(names.values())) != len(names):
        raise SpecError("two parameter schemas would share one TypedDict name")
    return names


def options(model: Model) -> dict[str, Any]:
    """The model's fields that its kind's `generate` does not name: `**params` there."""
    named = NAMED_FIELDS[model.spec.kind]
    properties = model.params["properties"]
    return {
        "properties": {k: v for k, v in properties.items() if k not in named},
        "required": [r for r in model.params["required"] if r not in named],
    }


def _options_names(models: list[Model]) -> dict[str, str]:
    """A TypedDict name per distinct set of options, from the first model that has it."""
    names: dict[str, str] = {}
    for model in models:
        names.setdefault(canonical(options(model)), pascal(model.name) + "Options")
    if len(set(names.values())) != len(names):
        raise SpecError("two option sets would share one TypedDict name")
    return names


def canonical(schema: Mapping[str, Any]) -> str:
    """A schema's identity: equal constraints, equal text."""
    return json.dumps(schema, sort_keys=True)


def pascal(name: str) -> str:
    """`seedance-2.0-fast` -> `Seedance20Fast`, `MiniMax-Hailuo-02` -> `MiniMaxHailuo02`."""
    words = re.split(r"[^0-9A-Za-z]+", name.replace(".", ""))
    return "".join(word[:1].upper() + word[1:] for word in words if word)
