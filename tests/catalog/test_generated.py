"""The generated files match the vendored specs, and the name Literals match the catalog."""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import typing

import pytest
from _catalog_support import ROOT

from evolink import _model_names, _model_overloads, _typed_resources
from evolink._catalog import all_models, model_spec, resolve_alias
from evolink._generations import Audios, Videos
from evolink._images import Images

MODELS = all_models()


@pytest.fixture(scope="module")
def generator():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        yield importlib.import_module("generate_catalog")
    finally:
        sys.path.remove(str(ROOT / "tools"))


def test_generated_files_are_fresh(generator, capsys):
    """`generate_catalog.py --check` passes: catalog.json, the two modules, the page are current."""
    assert 0 == generator.main(["--check"]), capsys.readouterr().out


def test_catalog_counts():
    """The 2026-08-21 docs: 43 image, 74 video, 10 audio models, 3 archived image models."""
    counts = {
        (kind, archived): sum(m.kind == kind and m.archived == archived for m in MODELS)
        for kind in ("image", "video", "audio")
        for archived in (False, True)
    }
    assert {
        ("image", False): 43,
        ("video", False): 74,
        ("audio", False): 10,
        ("image", True): 3,
        ("video", True): 0,
        ("audio", True): 0,
    } == counts


@pytest.mark.parametrize(
    ("literal", "kind", "archived"),
    [
        pytest.param(_model_names.ImageModel, "image", False, id="ImageModel"),
        pytest.param(_model_names.VideoModel, "video", False, id="VideoModel"),
        pytest.param(_model_names.AudioModel, "audio", False, id="AudioModel"),
        pytest.param(_model_names.ArchivedImageModel, "image", True, id="ArchivedImageModel"),
    ],
)
def test_literal_names_match_the_catalog(literal, kind, archived):
    """Each Literal lists exactly the catalog's models of its kind."""
    expected = {m.name for m in MODELS if m.kind == kind and m.archived == archived}
    assert expected == set(typing.get_args(literal))


def test_aliases():
    """The docs' "automatically mapped to" sentences, including gpt-4o-image (archived)."""
    aliases = set(typing.get_args(_model_names.ModelAlias))
    assert {"gpt-4o-image", "gpt-image-1.5-lite", "veo3.1-fast", "suno-v5"} <= aliases
    assert all(model_spec(alias) is not None for alias in aliases)
    assert "gpt-4o-image-beta" == resolve_alias("gpt-4o-image")
    spec = model_spec("gpt-4o-image")
    assert spec is not None
    assert spec.archived
    assert "gpt-4o-image" in spec.aliases
    assert "not-an-alias" == resolve_alias("not-an-alias")


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.name) for s in MODELS])
def test_params_typeddict_matches_the_schema(spec):
    """The model's TypedDict has one key per documented field, `Required` where required."""
    typed = getattr(_model_names, spec.params_type)
    annotations = {k: v.__forward_arg__ for k, v in typed.__annotations__.items()}
    assert set(spec.params.properties) == set(annotations)
    required = {k for k, v in annotations.items() if v.startswith("Required[")}
    assert set(spec.required) == required


def _overload_keywords(protocol: str, method: str) -> set[tuple[str, ...]]:
    """The keyword names (but `model` and `**params`) of each overload in the generated module."""
    tree = ast.parse((ROOT / "src" / "evolink" / "_model_overloads.py").read_text("utf-8"))
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == protocol]
    return {
        tuple(a.arg for a in [*f.args.args, *f.args.kwonlyargs] if a.arg not in {"self", "model"})
        for f in cls.body
        if isinstance(f, ast.FunctionDef) and f.name == method
    }


@pytest.mark.parametrize(
    ("protocol", "resource", "kind"),
    [
        pytest.param("ImageOverloads", Images, "image", id="images"),
        pytest.param("VideoOverloads", Videos, "video", id="videos"),
        pytest.param("AudioOverloads", Audios, "audio", id="audios"),
    ],
)
@pytest.mark.parametrize("method", ["generate", "run"])
def test_overloads_name_the_methods_arguments(generator, protocol, resource, kind, method):
    """Every overload names `generate`'s arguments (`run`: and `timeout`), as the method does."""
    specs = importlib.import_module("_catalog_specs")
    named = inspect.signature(resource.generate).parameters
    expected = [p for p in named if p not in {"self", "model", "params"}]
    if method == "run":
        expected.append("timeout")
    assert [{tuple(expected)}] == [_overload_keywords(protocol, method)]
    body_fields = {p for p in expected if p in specs.NAMED_FIELDS[kind] or p == "prompt"}
    assert set(specs.NAMED_FIELDS[kind]) == body_fields


def test_typed_resources_import():
    """The protocols the client is typed with exist at run time too (for `typing.cast`)."""
    assert _model_overloads.ImageOverloads in _typed_resources.TypedImages.__mro__
    assert {"generate", "run"} <= set(dir(_typed_resources.TypedSyncImages))
