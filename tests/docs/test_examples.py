"""Every `python` block of the docs and the README runs, in order, one namespace per page."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import anyio
import pytest
from sybil import Example, Sybil
from sybil.evaluators.python import pad
from sybil.parsers.markdown import SkipParser
from sybil.parsers.markdown.codeblock import CodeBlockParser

ROOT = Path(__file__).resolve().parents[2]
#: No example may take longer than this (the simulator's tasks take a fraction of a second).
EXAMPLE_TIMEOUT = 30.0


def evaluate(example: Example) -> None:
    """Run one block; top-level `await` (as in `python -m asyncio`) runs on a fresh loop."""
    __tracebackhide__ = True
    source = pad(example.parsed, example.line + example.parsed.line_offset)
    code = compile(
        source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    namespace = example.namespace
    if code.co_flags & inspect.CO_COROUTINE:

        async def main() -> None:
            with anyio.fail_after(EXAMPLE_TIMEOUT):
                await eval(code, namespace)  # noqa: S307 - the docs' own examples

        anyio.run(main)
    else:
        exec(code, namespace)  # noqa: S102 - the docs' own examples
    namespace.pop("__builtins__", None)


SYBIL = Sybil(
    parsers=[CodeBlockParser(language="python", evaluator=evaluate), SkipParser()],
    path=str(ROOT),
    patterns=["README.md", "docs/**/*.md"],
    excludes=["docs/benchmarks/**"],
)
PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")],
    key=lambda path: str(path.relative_to(ROOT)),
)


def _runnable(path: Path) -> bool:
    return any(True for _ in SYBIL.parse(path))


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(page, id=str(page.relative_to(ROOT)))
        for page in PAGES
        if "benchmarks" not in page.relative_to(ROOT).parts and _runnable(page)
    ],
)
def test_examples_run(page: Path, docs_environment: Path) -> None:
    """The page's examples run against the simulator, top to bottom, without an error."""
    document = SYBIL.parse(page)
    document.namespace["__name__"] = "__main__"
    ran = 0
    for example in document:
        example.evaluate()
        ran += 1
    assert ran > 0, "a page collected as runnable ran no example"
