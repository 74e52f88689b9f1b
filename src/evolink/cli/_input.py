"""Prompt files: plain text, JSONL or CSV, read and validated whole before anything is sent.

Every row gets an index (its position among the rows, blank lines and comments aside), so an
invalid row can become a `rejected` outcome with `--skip-invalid` and numbering stays stable
between a run and its `--resume`.

Two kinds of trouble are told apart. A row whose *values* are wrong (a bad size, a missing
prompt) is invalid and may be skipped. A file whose *structure* is broken (a CSV quote left
open, a JSONL line that is not JSON) is malformed: what the rows say cannot be trusted (an
open quote swallows every later line into one prompt), so nothing is sent, ever.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from evolink._catalog import model_spec
from evolink._cost import without_local_files
from evolink._errors import ValidationError
from evolink._models import DEFAULT_IMAGE_MODEL, GenerationRequest, MediaKind
from evolink._uploads import check_local_file, local_files
from evolink._validation import validate

#: Lines longer than this are refused as they are read (a prompt is at most a few KB).
MAX_LINE_BYTES = 1_000_000
_COMMON = ("prompt", "model", "size", "n", "image_urls", "mask_url", "callback_url")


class InputError(Exception):
    """The file cannot be used at all (missing, undecodable, structurally broken)."""


@attrs.frozen
class _Malformed:
    """A line whose structure is broken (not JSON, the wrong number of CSV cells)."""

    message: str


@attrs.frozen
class Defaults:
    """What the command line sets for rows that do not say."""

    model: str = DEFAULT_IMAGE_MODEL
    size: str | None = None
    n: int | None = None
    #: The model's own parameters (`--param quality=2K`), under the row's own.
    params: Mapping[str, Any] = attrs.field(factory=dict)
    #: What a model the catalog does not know makes (a known one's kind is the catalog's).
    kind: MediaKind = "image"
    #: Where a row's local reference images (`image_urls` naming files) are looked for.
    base_dir: Path | None = None

    def kind_of(self, model: str) -> MediaKind:
        """What `model` makes: the catalog's word, else the command line's `--kind`."""
        spec = model_spec(model)
        return spec.kind if spec is not None else self.kind


@attrs.frozen
class Row:
    """One input: its index, where it came from, and the request or why it is invalid."""

    index: int
    line: int
    request: GenerationRequest | None
    error: str | None = None
    prompt: str = ""
    #: The line itself is broken, not just its values: `--skip-invalid` does not skip it.
    malformed: bool = False

    @property
    def valid(self) -> bool:
        """Whether the row can be sent."""
        return self.request is not None


@attrs.frozen
class PromptFile:
    """Every row of a prompt file, valid or not."""

    rows: tuple[Row, ...]

    @property
    def invalid(self) -> tuple[Row, ...]:
        """The rows that cannot be sent, in file order."""
        return tuple(row for row in self.rows if not row.valid)

    @property
    def malformed(self) -> tuple[Row, ...]:
        """The rows whose line is broken (the file must be fixed), in file order."""
        return tuple(row for row in self.rows if row.malformed)

    def fingerprint(self) -> str:
        """A hash of every row, to tell on `--resume` whether the input changed."""
        digest = hashlib.sha256()
        for row in self.rows:
            body = row.request.to_body() if row.request is not None else {"error": row.error}
            digest.update(json.dumps(body, sort_keys=True, default=str).encode())
            digest.update(b"\n")
        return digest.hexdigest()


def read_prompt_file(path: Path, defaults: Defaults) -> PromptFile:
    """Read and validate a prompt file; the format comes from its suffix.

    `.jsonl`/`.ndjson` are JSON objects a line, `.csv` has a header row, anything else is a
    prompt a line (blank lines and lines starting with `#` are skipped).

    A line whose structure is broken comes back as a `malformed` row; a CSV quote left open
    (or a header without `prompt`) is one at its line, and the file is not read past it.

    Raises:
        InputError: the file is missing, not UTF-8, or has a line over `MAX_LINE_BYTES`.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = decode(raw, path)
    if defaults.base_dir is None:  # local reference images are named relative to the file
        defaults = attrs.evolve(defaults, base_dir=path.parent)
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        entries = _jsonl_entries(text)
    elif suffix == ".csv":
        entries = _csv_entries(text)
    else:
        entries = _text_entries(text)
    rows = [_to_row(index, line, fields, defaults) for index, (line, fields) in enumerate(entries)]
    return PromptFile(rows=tuple(rows))


def rows_from_fields(rows: Sequence[Mapping[str, Any]], defaults: Defaults) -> PromptFile:
    """Rows given in code (the demo, `generate`), validated like a file's."""
    return PromptFile(
        rows=tuple(_to_row(index, index + 1, fields, defaults) for index, fields in enumerate(rows))
    )


def decode(raw: bytes, path: Path) -> str:
    """UTF-8 (a BOM allowed), or an `InputError` naming the line of the first bad byte."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        ) from None
    for number, content in enumerate(text.split("\n"), start=1):
        if len(content) > MAX_LINE_BYTES:
            raise InputError(f"{path}:{number}: line is over {MAX_LINE_BYTES} characters")
    return text


# Each reader yields (line number, fields) or (line number, why the line is broken).
_Entry = tuple[int, "Mapping[str, Any] | _Malformed"]


def _text_entries(text: str) -> Iterator[_Entry]:
    for number, line in enumerate(_lines(text), start=1):
        prompt = line.strip()
        if prompt and not prompt.startswith("#"):
            yield number, {"prompt": prompt}


def _jsonl_entries(text: str) -> Iterator[_Entry]:
    for number, line in enumerate(_lines(text), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, _Malformed(f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        except RecursionError:
            yield number, _Malformed("not valid JSON (nested too deeply)")
            continue
        if isinstance(value, str):
            value = {"prompt": value}
        if not isinstance(value, dict):
            yield number, _Malformed(f"expected a JSON object, not {type(value).__name__}")
            continue
        yield number, value


def _csv_entries(text: str) -> Iterator[_Entry]:
    # The same limit on a cell as on a text line (the csv module's default is 131,072).
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    # Strict: the lenient reader takes a quote left open as the start of one long cell, and
    # every later line silently becomes part of that prompt.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield 1, _Malformed(f"malformed CSV header ({exc})")
        return
    if header is None:
        return
    names = [name.strip() for name in header]
    if "prompt" not in names:
        yield 1, _Malformed("the CSV header has no 'prompt' column")
        return
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # No later row is certain after a broken quote: the file ends here, malformed.
            yield start, _Malformed(f"malformed CSV ({exc}); check the quotes from this line on")
            return
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(names):
            yield (
                start,
                _Malformed(f"expected {len(names)} cells as in the header, found {len(cells)}"),
            )
            continue
        fields = {
            name: _csv_value(name, cell)
            for name, cell in zip(names, cells, strict=True)
            if name and cell.strip()
        }
        yield start, fields


def _csv_value(name: str, cell: str) -> Any:
    cell = cell.strip()
    if name == "image_urls":
        return cell.replace("|", " ").split()
    if name in {"prompt", "model", "size", "mask_url", "callback_url"}:
        return cell
    try:  # numbers and booleans for `n` and model fields (`seed`, ...)
        value = json.loads(cell)
    except ValueError:
        return cell
    return value if isinstance(value, (int, float, bool)) else cell


def _to_row(
    index: int, line: int, fields: Mapping[str, Any] | _Malformed, defaults: Defaults
) -> Row:
    if isinstance(fields, _Malformed):
        return Row(index=index, line=line, request=None, error=fields.message, malformed=True)
    prompt = fields.get("prompt")
    shown = prompt if isinstance(prompt, str) else ""
    try:
        request = _to_request(fields, defaults)
        validate(without_local_files(request))
        for local in local_files(request):
            check_local_file(local)
    except ValidationError as exc:
        return Row(index=index, line=line, request=None, error=str(exc), prompt=shown)
    return Row(index=index, line=line, request=request, prompt=request.prompt or "")


def _to_request(fields: Mapping[str, Any], defaults: Defaults) -> GenerationRequest:
    image_urls = fields.get("image_urls")
    if isinstance(image_urls, str):
        image_urls = [image_urls]
    if image_urls is not None and not isinstance(image_urls, list):
        raise ValidationError("image_urls", "type", "must be a list of URLs")
    if image_urls is not None:  # a local file is uploaded (once) when the batch sends it
        image_urls = [_reference(url, defaults.base_dir) for url in image_urls]
    # Any other column is one of the model's own parameters, checked like the rest.
    params = {**defaults.params}
    params.update({key: value for key, value in fields.items() if key not in _COMMON})
    n = fields.get("n", defaults.n)
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    model = fields.get("model") or defaults.model
    return GenerationRequest(
        # A row without a prompt is for a model that takes none; the catalog says.
        prompt=fields.get("prompt"),
        model=model,
        size=fields.get("size", defaults.size),
        n=n,
        image_urls=image_urls,
        mask_url=fields.get("mask_url"),
        callback_url=fields.get("callback_url"),
        params=params or None,
        kind=defaults.kind_of(model) if isinstance(model, str) else defaults.kind,
    )


def _reference(value: Any, base_dir: Path | None) -> Any:
    """A local file's `Path` for a cell naming one (relative to the prompt file), else as is."""
    if not isinstance(value, str) or value.startswith(("http://", "https://", "data:")):
        return value
    try:
        candidate = Path(value).expanduser()
        if not candidate.is_absolute() and base_dir is not None:
            candidate = base_dir / candidate
        found = candidate.is_file()
    except (OSError, ValueError, RuntimeError):  # a name too long, `~nobody`: no file
        return value
    return candidate if found else value


def _lines(text: str) -> list[str]:
    """Lines split at CRLF, LF or CR only: `str.splitlines` also splits at U+2028, form
    feeds and other characters a prompt or a JSON string may hold."""
    return _NEWLINE.split(text)


_NEWLINE = re.compile(r"\r\n|\r|\n")
