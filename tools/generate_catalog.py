"""Generate the model catalog from Evolink's vendored OpenAPI files.

    python tools/generate_catalog.py          # write the outputs
    python tools/generate_catalog.py --check  # exit 1 if an output is stale

Reads every model file under `specs/evolink-docs-2026-08-21/` (see its README) and writes
`src/evolink/catalog.json` (what the SDK validates against), `src/evolink/_model_names.py`
(model-name Literals and per-model parameter TypedDicts), `src/evolink/_model_overloads.py`
(per-model overloads of `generate` and `run`) and `docs/reference/model-catalog.md`.
Standard library only, so it runs before the package is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _catalog_names import render_names
from _catalog_overloads import render_overloads
from _catalog_page import render_page
from _catalog_specs import Corpus, read_corpus

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs" / "evolink-docs-2026-08-21"
CATALOG = ROOT / "src" / "evolink" / "catalog.json"
NAMES = ROOT / "src" / "evolink" / "_model_names.py"
OVERLOADS = ROOT / "src" / "evolink" / "_model_overloads.py"
PAGE = ROOT / "docs" / "reference" / "model-catalog.md"


def main(argv: list[str] | None = None) -> int:
    """Write the outputs, or with `--check` report the stale ones; 1 when any is stale."""
    parser = argparse.ArgumentParser(description="Generate the model catalog.")
    parser.add_argument("--check", action="store_true", help="exit 1 if an output is stale")
    check: bool = parser.parse_args(argv).check
    outputs = render()
    stale = [path for path, text in outputs.items() if _differs(path, text)]
    for path in stale:
        if not check:
            path.write_text(outputs[path], encoding="utf-8")
        print(f"{path.relative_to(ROOT)} {'is stale' if check else 'written'}")  # noqa: T201
    if check and stale:
        print("run: python tools/generate_catalog.py")  # noqa: T201 - a command-line tool
        return 1
    return 0


def render(specs: Path = SPECS) -> dict[Path, str]:
    """Every output's path and the text it should have."""
    corpus = read_corpus(specs)
    source = specs.relative_to(ROOT).as_posix()
    return {
        CATALOG: render_catalog(corpus, source),
        NAMES: render_names(corpus, source),
        OVERLOADS: render_overloads(corpus, source),
        PAGE: render_page(corpus, source),
    }


def render_catalog(corpus: Corpus, source: str) -> str:
    """catalog.json: every model, the aliases, and each distinct parameter schema once."""
    models = {}
    for model in corpus.models:
        spec = model.spec
        models[model.name] = {
            "kind": spec.kind,
            "endpoint": spec.endpoint,
            "archived": spec.archived,
            # The docs' page beside the OpenAPI file (neither names a URL for it).
            "doc": spec.path.removesuffix(".json") + ".mdx",
            "spec": spec.path,
            "params": corpus.params_name(model),
            "examples": list(model.examples),
        }
    schemas = sorted((name, json.loads(key)) for key, name in corpus.params_names.items())
    catalog = {
        "source": source,
        "generated_by": "tools/generate_catalog.py",
        "aliases": corpus.aliases,
        "models": models,
        "schemas": dict(schemas),
    }
    return json.dumps(catalog, indent=1, ensure_ascii=False) + "\n"


def _differs(path: Path, text: str) -> bool:
    return not path.is_file() or path.read_text(encoding="utf-8") != text


if __name__ == "__main__":
    sys.exit(main())
