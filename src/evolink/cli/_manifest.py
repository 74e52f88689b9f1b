"""`manifest.jsonl`: one line per input, in input order, for scripts and for people."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

MANIFEST_NAME = "manifest.jsonl"

#: The statuses an input can end with; `download_failed` is a completed task whose images
#: could not all be saved.
STATUSES = (
    "completed",
    "download_failed",
    "failed",
    "cancelled",
    "rejected",
    "skipped",
    "uncertain",
    "abandoned",
)


@attrs.frozen(kw_only=True)
class Result:
    """How one input ended, as the manifest and the gallery show it.

    Attributes:
        index: 0-based position among the inputs.
        line: the line of the prompt file it came from.
        files: image paths relative to the output folder.
    """

    index: int
    line: int
    prompt: str
    status: str
    request: Mapping[str, Any] | None = None
    task_id: str | None = None
    reserved: Decimal | None = None
    charged: Decimal | None = None
    files: tuple[str, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    #: The key of its last create: what finds the task again if its answer was lost.
    idempotency_key: str | None = None
    #: Its create was resent after an attempt of unknown fate, on a server not shown to
    #: honour keys: a second task may have been made (and charged).
    possible_duplicate: bool = False

    @property
    def ok(self) -> bool:
        """Whether the input completed and every image is on disk."""
        return self.status == "completed"

    def to_json(self) -> dict[str, Any]:
        """The manifest line (credits as numbers, absent values as null)."""
        return {
            "index": self.index,
            "line": self.line,
            "prompt": self.prompt,
            "status": self.status,
            "task_id": self.task_id,
            "credits": {
                "reserved": _number(self.reserved),
                "charged": _number(self.charged),
            },
            "files": list(self.files),
            "error": None
            if self.error_code is None and self.error_message is None
            else {"code": self.error_code, "message": self.error_message},
            "request": dict(self.request) if self.request is not None else None,
            "idempotency_key": self.idempotency_key,
            "possible_duplicate": self.possible_duplicate,
        }


def _number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file, so readers never see half of it."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)


def write_manifest(folder: Path, results: Iterable[Result]) -> Path:
    """Write `manifest.jsonl` in `folder`, one line per input in index order."""
    lines = [
        json.dumps(result.to_json(), ensure_ascii=False)
        for result in sorted(results, key=lambda r: r.index)
    ]
    path = folder / MANIFEST_NAME
    write_atomically(path, "".join(line + "\n" for line in lines))
    return path
