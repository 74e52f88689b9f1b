"""Every `python` block of the docs and the README runs, in order, one namespace per page,
and passes `mypy --strict`."""

from __future__ import annotations

import ast
import inspect
import os
import re
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


# -- every example type-checks under `mypy --strict` --------------------------------------
# A page's blocks share one namespace when they run, so they are checked together: one
# module per page, its blocks in order inside `async def _page() -> None:` (for top-level
# `await`). Errors are reported at the page's own lines.

MYPY_CONFIG = """\
[mypy]
strict = True
warn_unreachable = True
# A page may define a name twice on purpose: each tutorial step is a script of its own.
disable_error_code = no-redef
"""


def _page_module(page: Path) -> tuple[str, list[int]]:
    """The page's blocks as one module, and the page line of each module line (0: ours)."""
    lines = ["async def _page() -> None:"]
    origin = [0]
    for example in SYBIL.parse(page):
        source = str(example.parsed)
        first = example.line + example.parsed.line_offset + 1
        for offset, line in enumerate(source.splitlines()):
            lines.append(f"    {line}" if line.strip() else "")
            origin.append(first + offset)
    lines.append("    pass")
    origin.append(0)
    return "\n".join(lines) + "\n", origin


def _mypy_api() -> object | None:
    try:
        from mypy import api  # noqa: PLC0415 - only where mypy is installed
    except ImportError:
        return None
    return api


@pytest.fixture(scope="session")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, list[str]]:
    """One mypy run over every page's module; its errors by page, at the page's lines."""
    api = _mypy_api()
    if api is None:
        if os.environ.get("CI"):
            pytest.fail("mypy must be installed in CI: add it to the tests dependency group")
        pytest.skip("mypy is not installed (it is in the typing dependency group)")
    folder = tmp_path_factory.mktemp("docs-mypy")
    (folder / "mypy.ini").write_text(MYPY_CONFIG)
    modules: dict[str, tuple[Path, list[int]]] = {}
    for number, page in enumerate(TYPED_PAGES):
        source, origin = _page_module(page)
        name = f"page_{number}.py"
        (folder / name).write_text(source)
        modules[name] = (page, origin)
    stdout, stderr, _ = api.run(  # type: ignore[attr-defined]
        [
            "--config-file",
            str(folder / "mypy.ini"),
            "--cache-dir",
            str(folder / ".mypy_cache"),
            "--no-error-summary",
            "--show-error-codes",
            *(str(folder / name) for name in modules),
        ]
    )
    errors: dict[Path, list[str]] = {page: [] for page in TYPED_PAGES}
    for line in stdout.splitlines():
        name, _, rest = line.partition(":")
        found = modules.get(Path(name).name)
        number, _, message = rest.partition(":")
        if found is None or not number.isdigit():
            errors.setdefault(ROOT, []).append(line)
            continue
        page, origin = found

        def at(number: int, origin: list[int] = origin) -> int:
            return origin[number - 1] if 0 < number <= len(origin) else 0

        message = re.sub(r"line (\d+)", lambda m: f"line {at(int(m[1]))}", message)
        errors[page].append(f"{page.relative_to(ROOT)}:{at(int(number))}:{message}")
    assert not stderr.strip(), stderr
    assert not errors.get(ROOT), errors.get(ROOT)
    return errors


TYPED_PAGES = [
    page for page in PAGES if "benchmarks" not in page.relative_to(ROOT).parts and _runnable(page)
]


#: Pages whose snippets are not ours to fix here (edited on another branch); each must pass
#: once fixed there (xfail is strict), and then leaves this list.
NOT_YET_TYPED: dict[str, str] = {}


def _typed_param(page: Path) -> object:
    name = str(page.relative_to(ROOT))
    reason = NOT_YET_TYPED.get(name)
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(page, id=name, marks=marks)


@pytest.mark.parametrize("page", [_typed_param(page) for page in TYPED_PAGES])
def test_examples_type_check(page: Path, mypy_errors: dict[Path, list[str]]) -> None:
    """The page's examples pass `mypy --strict`, as a reader's editor would check them."""
    assert [] == mypy_errors[page]
