"""Extract the Python samples of README.md and docs/, and run them as a reader would."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
_INVISIBLE = re.compile(r"^<!-- invisible-code-block: python\n(.*?)^-->", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    source: str
    invisible: bool


def blocks(doc: str) -> list[Block]:
    """Every python block of a document (visible and invisible), in document order."""
    text = (ROOT / doc).read_text()
    found: list[Block] = []
    for pattern, invisible in ((_FENCE, False), (_INVISIBLE, True)):
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(Block(doc, line, match.group(1), invisible))
    return sorted(found, key=lambda b: b.line)


def run_blocks(doc_blocks: list[Block], namespace: dict[str, object]) -> None:
    """Run blocks in one namespace, top-level await allowed, one event loop for the doc."""
    with asyncio.Runner() as runner:
        for block in doc_blocks:
            run_block(block, namespace, runner)


def run_block(block: Block, namespace: dict[str, object], runner: asyncio.Runner) -> None:
    # Pad so a traceback points at the line in the document.
    source = "\n" * block.line + block.source
    code = compile(
        source, f"{block.doc}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    if code.co_flags & inspect.CO_COROUTINE:
        coro = eval(code, namespace)  # noqa: S307 - the docs' own samples
        runner.run(coro)
    else:
        exec(code, namespace)  # noqa: S102 - the docs' own samples
