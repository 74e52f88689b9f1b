"""Every public name has a docstring (the API reference is generated from them)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

import evolink
import evolink.fastapi
import evolink.testing
from evolink._images import Images
from evolink._tasks import Tasks

# Constants cannot carry docstrings of their own; the reference documents them in prose.
CONSTANTS = frozenset({"DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "__version__"})
# Type aliases (Literal model names) cannot carry a docstring; the catalog page documents them.
CONSTANTS |= {"ImageModel", "VideoModel", "AudioModel", "ArchivedImageModel"}
# Names allowed to lack a docstring: none.
PENDING: frozenset[str] = frozenset()


def _public_names() -> Iterator[tuple[str, object]]:
    for module in (evolink, evolink.fastapi, evolink.testing):
        for name in module.__all__:
            if name not in CONSTANTS:
                yield f"{module.__name__}.{name}", getattr(module, name)


def _members(obj: type) -> Iterator[tuple[str, object]]:
    """Public methods and properties defined by the class itself (not inherited)."""
    for name, member in vars(obj).items():
        if name.startswith("_") or inspect.isclass(member):
            continue
        if isinstance(member, (property, staticmethod, classmethod)) or inspect.isfunction(member):
            yield name, member


def _param(obj: object, qualname: str) -> object:
    marks = pytest.mark.skip(reason="pending in its owner's module") if qualname in PENDING else ()
    return pytest.param(obj, id=qualname, marks=marks)


def _targets() -> Iterator[object]:
    for qualname, obj in _public_names():
        yield _param(obj, qualname)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for name, member in _members(obj):
                yield _param(member, f"{qualname}.{name}")


def _resources() -> Iterator[object]:
    """`client.images` and `client.tasks`: public through the client, private by module."""
    for cls in (Images, Tasks):
        yield _param(cls, f"client.{cls.__name__.lower()}")
        for name, member in _members(cls):
            yield _param(member, f"client.{cls.__name__.lower()}.{name}")


@pytest.mark.parametrize("obj", [*_targets(), *_resources()])
def test_has_docstring(obj: object) -> None:
    """Each public class, function, method and property says what it does."""
    target = obj.fget if isinstance(obj, property) else obj
    doc = inspect.getdoc(target)
    assert doc, f"{obj!r} has no docstring"
    if inspect.isclass(obj) and obj.__doc__ is None:
        pytest.fail(f"{obj!r} only inherits its docstring")


def test_module_docstrings() -> None:
    """The public modules say what they hold."""
    for module in (evolink, evolink.fastapi, evolink.testing):
        assert inspect.getdoc(module), module.__name__
