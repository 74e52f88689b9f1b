# ruff: noqa: T201 - a command-line script, not a package; it reports by printing
"""Extract every model's request schema from Evolink's OpenAPI files for the simulator.

    python tools/extract_simulator_schemas.py [--docs FOLDER] [--out FILE] [--check]

Reads `en/api-manual/{image,video,audio}-series/**/*.json` and
`_archived/en/api-manual/**/*.json` under FOLDER (Evolink's English API manual; default
`specs/evolink-docs-2026-08-21`) and writes `src/evolink/testing/_models.json`: for every
model name of every model file, its endpoint, kind, doc file, request schema (`$ref`s
resolved inline, annotations such as `description` and `example` dropped), the task
`object` its answers carry, and its documented example bodies. `--check` writes nothing
and exits 1 if the file is stale.

Decisions the files leave open, made here once:

- A model named by several files (a family's overview and its own page) takes its own
  page: the file naming the fewest models.
- A model file without a `model` enum names its model by the property's `const` or
  `default`; the schema then pins `model` to that name.
- Some documented examples leave out a field their own schema requires. Such an example is
  kept with the field filled from the property's documented `example` (or `default`),
  and the names filled are listed under `example_fills`, so the defect stays visible.
  A family member with no example of its own borrows the family's first one, its `model`
  changed (listed as a `model` fill).
- The task `object` is the create answer's documented `object` enum, or
  `<kind>.generation.task` where a file documents none (two veo files).
- `aliases` come from the model descriptions' "Backward Compatible" notes ("the previously
  integrated model name `X` ... will be automatically mapped to `Y`").
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DOCS = ROOT / "specs" / "evolink-docs-2026-08-21"
DEFAULT_OUT = ROOT / "src" / "evolink" / "testing" / "_models.json"
ENDPOINTS = {
    "/v1/images/generations": "image",
    "/v1/videos/generations": "video",
    "/v1/audios/generations": "audio",
}
#: Keywords that only annotate (or belong to OpenAPI, not JSON Schema): dropped.
ANNOTATIONS = frozenset({"description", "example", "examples", "title", "externalDocs", "xml"})
#: Keywords whose value is a map of name -> schema.
SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
#: Keywords whose value is one schema.
SCHEMA_ONE = frozenset(
    {
        "items",
        "additionalProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
    }
)
#: Keywords whose value is a list of schemas.
SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_ALIAS = re.compile(
    r"model name `([^`]+)` is still supported and will be automatically mapped to `([^`]+)`"
)
_ALIAS_FAMILY = re.compile(
    r"\(e\.g\. ([^)]*)\) are still supported and will be automatically mapped"
    r" to the corresponding `-beta` versions"
)
_COMPATIBLE = re.compile(r"- `([^`]+)`:[^\n]*?compatible model name: `([^`]+)`")


class ExtractionError(Exception):
    """The docs say something this script does not know how to read."""


def _resolve(document: dict[str, Any], node: Any, seen: tuple[str, ...] = ()) -> Any:
    """`node` with every local `$ref` replaced by a copy of its target (siblings kept)."""
    if isinstance(node, list):
        return [_resolve(document, item, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#/") or ref in seen:
            raise ExtractionError(f"cannot inline $ref {ref!r}")
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        resolved = _resolve(document, target, (*seen, ref))
        siblings = {k: _resolve(document, v, seen) for k, v in node.items() if k != "$ref"}
        return {**resolved, **siblings}
    return {key: _resolve(document, value, seen) for key, value in node.items()}


def _strip(schema: Any) -> Any:
    """The schema without annotations, walking only schema positions."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ANNOTATIONS or key.startswith("x-"):
            continue
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _strip(sub) for name, sub in value.items()}
        elif key in SCHEMA_ONE:
            out[key] = _strip(value)
        elif key in SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_strip(sub) for sub in value]
        else:
            out[key] = value
    return out


def _model_names(schema: dict[str, Any]) -> list[str]:
    model = schema.get("properties", {}).get("model", {})
    if isinstance(model.get("enum"), list):
        return [str(name) for name in model["enum"]]
    for keyword in ("const", "default"):
        if isinstance(model.get(keyword), str):
            return [model[keyword]]
    raise ExtractionError("no model name (enum, const or default) in the request schema")


def _aliases(schema: dict[str, Any]) -> dict[str, str]:
    model = schema.get("properties", {}).get("model", {})
    text = model.get("description", "") or ""
    names = set(_model_names(schema))
    found = dict(_ALIAS.findall(text))
    for family in _ALIAS_FAMILY.findall(text):
        for alias in re.findall(r"`([^`]+)`", family):
            if f"{alias}-beta" in names:
                found[alias] = f"{alias}-beta"
    for target, alias in _COMPATIBLE.findall(text):
        found.setdefault(alias, target)
    return found


def _files(docs: Path) -> Iterator[tuple[Path, bool]]:
    for series in ("image-series", "video-series", "audio-series"):
        for path in sorted((docs / "en" / "api-manual" / series).rglob("*.json")):
            yield path, False
    for path in sorted((docs / "_archived").rglob("*.json")):
        yield path, True


def _fill(
    body: dict[str, Any], schema: dict[str, Any], siblings: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[str]]:
    """The body with missing required top-level fields taken from the property's documented
    `example` or `default`, else from another example of the same file."""
    body = copy.deepcopy(body)
    filled = []
    for name in schema.get("required", []):
        if name in body:
            continue
        prop = schema.get("properties", {}).get(name, {})
        candidates = [prop[k] for k in ("example", "default") if k in prop]
        candidates += [other[name] for other in siblings if name in other]
        if not candidates:
            raise ExtractionError(f"an example lacks required {name!r} and nothing documents one")
        body[name] = copy.deepcopy(candidates[0])
        filled.append(name)
    return body, filled


def _operation_models(path: Path, docs: Path, *, archived: bool) -> Iterator[dict[str, Any]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    for route, operations in document.get("paths", {}).items():
        kind = ENDPOINTS.get(route)
        operation = operations.get("post")
        if kind is None or operation is None:
            continue
        content = operation["requestBody"]["content"]["application/json"]
        schema = _resolve(document, content["schema"])
        names = _model_names(schema)
        response = _resolve(document, operation["responses"]["200"])
        response_schema = response["content"]["application/json"]["schema"]
        # Two veo files document no `object`: their kind's, as every other file of it says.
        task_object = (
            response_schema.get("properties", {})
            .get("object", {})
            .get("enum", [f"{kind}.generation.task"])[0]
        )
        raw_examples = content.get("examples") or (
            {"example": {"value": content["example"]}} if "example" in content else {}
        )
        for name in names:
            model_schema = _strip(schema)
            props = model_schema.setdefault("properties", {})
            if "enum" not in props.get("model", {}):
                props["model"] = {**props.get("model", {}), "enum": [name]}
            examples: dict[str, Any] = {}
            fills: dict[str, list[str]] = {}
            siblings = [other["value"] for other in raw_examples.values()]
            own = {
                key: example["value"]
                for key, example in raw_examples.items()
                if example["value"].get("model", name) == name
            }
            borrowed = not own and bool(raw_examples)
            if borrowed:
                # A family member without an example of its own: the family's first one.
                first = next(iter(raw_examples))
                own = {first: {**raw_examples[first]["value"], "model": name}}
            for example_name, value in own.items():
                body, filled = _fill(value, schema, siblings)
                examples[example_name] = body
                if borrowed:
                    filled.insert(0, "model")
                if filled:
                    fills[example_name] = filled
            entry: dict[str, Any] = {
                "archived": archived,
                "doc": path.relative_to(docs).as_posix(),
                "endpoint": route,
                "examples": examples,
                "kind": kind,
                "schema": model_schema,
                "task_object": task_object,
            }
            if fills:
                entry["example_fills"] = fills
            yield {"name": name, "family": len(names), "aliases": _aliases(schema), **entry}


def extract(docs: Path) -> dict[str, Any]:
    """Every model's entry, and the aliases, read from the docs folder."""
    chosen: dict[str, dict[str, Any]] = {}
    aliases: dict[str, str] = {}
    for path, archived in _files(docs):
        try:
            found = list(_operation_models(path, docs, archived=archived))
        except (ExtractionError, KeyError) as exc:
            raise ExtractionError(f"{path.relative_to(docs)}: {exc!r}") from exc
        for entry in found:
            aliases.update(entry.pop("aliases"))
            name, family = entry.pop("name"), entry.pop("family")
            current = chosen.get(name)
            if current is not None and current["_family"] == family:
                raise ExtractionError(f"{name}: in {current['doc']} and {entry['doc']}")
            if current is None or family < current["_family"]:
                chosen[name] = {**entry, "_family": family}
    models = {}
    for name in sorted(chosen):
        entry = {k: v for k, v in chosen[name].items() if k != "_family"}
        jsonschema.Draft202012Validator.check_schema(entry["schema"])
        if not entry["examples"]:
            raise ExtractionError(f"{name}: no documented example body in {entry['doc']}")
        models[name] = entry
    unknown = {alias: target for alias, target in aliases.items() if target not in models}
    if unknown:
        raise ExtractionError(f"aliases of unknown models: {unknown}")
    return {"aliases": dict(sorted(aliases.items())), "models": models}


def render(data: dict[str, Any]) -> str:
    """Compact but diffable: sorted keys, one model per line."""

    def compact(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    lines = [f"{compact(name)}:{compact(entry)}" for name, entry in data["models"].items()]
    return (
        "{\n"
        f'"aliases":{compact(data["aliases"])},\n'
        '"generator":"tools/extract_simulator_schemas.py",\n'
        '"models":{\n' + ",\n".join(lines) + "\n}\n}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS, help="the docs folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the file to write")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is stale")
    args = parser.parse_args(argv)
    if not (args.docs / "en" / "api-manual").is_dir():
        parser.error(f"{args.docs} has no en/api-manual/ folder")
    text = render(extract(args.docs))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run {Path(__file__).name} --docs {args.docs}")
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    models = json.loads(text)["models"]
    kinds = sorted({entry["kind"] for entry in models.values()})
    counts = ", ".join(
        f"{sum(1 for e in models.values() if e['kind'] == kind and not e['archived'])} {kind}"
        for kind in kinds
    )
    archived = sum(1 for entry in models.values() if entry["archived"])
    print(f"wrote {args.out}: {counts} models, {archived} archived")
    return 0


if __name__ == "__main__":
    sys.exit(main())
