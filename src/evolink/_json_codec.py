"""`to_dict()` / `from_dict()`'s codec: the API converter, copied, for files and people.

`_serialization.Serializable` dumps and loads through whatever codec is installed; this
module installs itself when imported (the package's `__init__` imports it), so that the
models need not import the converter that imports them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import cattrs

from evolink._converter import (
    _WITH_EXTRA,
    CONVERTER,
    _describe,
    _structure_with_extra,
    _to_datetime,
    _to_enum,
    _to_str,
    _unstructure_dropping_none,
)
from evolink._downloads import SavedImage
from evolink._errors import ValidationError
from evolink._ledger import TaskCredits
from evolink._models import Balance
from evolink._outcomes import BatchReport, Outcome, OutcomeKind, SkipReason
from evolink._progress import BatchProgress
from evolink._serialization import use_codec

T = TypeVar("T")

# -- JSON-ready dumps and loads: `to_dict()` / `from_dict()` ------------------------------
# `unstructure` above speaks the API's shapes (Unix seconds, numbers). A dump is for files
# and people: ISO-8601 times, exact Decimals as strings, enums as their values, paths as
# strings. It is the converter above, copied, with those hooks added; loading goes through
# the same structure hooks, and also takes an ISO-8601 time where the API sends a number.


def _from_iso_or_unix(value: Any, _: object) -> datetime:
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return _to_datetime(value, _)


def _passthrough(value: Any, _: object) -> Any:
    return value


def _make_json_converter() -> cattrs.Converter:
    converter = CONVERTER.copy()
    converter.register_structure_hook(datetime, _from_iso_or_unix)
    converter.register_unstructure_hook(datetime, lambda d: d.isoformat())
    converter.register_unstructure_hook(Decimal, str)
    converter.register_structure_hook(Path, lambda v, _: Path(_to_str(v, Path)))
    converter.register_unstructure_hook(Path, str)
    # An Outcome's `tag` is whatever the caller passed; it goes out and comes back as it is.
    converter.register_structure_hook_func(lambda t: t is object, _passthrough)
    converter.register_unstructure_hook_func(
        lambda t: t is object,
        lambda value: value if type(value) is object else converter.unstructure(value),
    )
    # The batch builds its report on a list: load one, so a round trip compares equal.
    outcomes = Sequence[Outcome]
    converter.register_structure_hook_func(
        lambda t: t == outcomes, lambda v, _: [converter.structure(o, Outcome) for o in v]
    )
    for plain_enum in (OutcomeKind, SkipReason):
        # Registered by class: otherwise the `str` hook would take these str-based enums.
        converter.register_structure_hook(plain_enum, _to_enum)
        converter.register_unstructure_hook(plain_enum, lambda e: e.value)
    # The copied class hooks bound the API's time hook when made: make them again.
    for cls in _WITH_EXTRA:
        converter.register_structure_hook(cls, _structure_with_extra(converter, cls))
    for model in (*_WITH_EXTRA, Balance):
        converter.register_unstructure_hook(model, _unstructure_dropping_none(converter, model))
    # Checked when made, so a model that cannot round-trip fails at import in the tests.
    for plain in (SavedImage, TaskCredits, Outcome, BatchReport, BatchProgress):
        converter.get_structure_hook(plain)
        converter.get_unstructure_hook(plain)
    return converter


_JSON = _make_json_converter()


def _json_converter() -> cattrs.Converter:
    return _JSON


def dump(obj: Any) -> Any:
    """A model as JSON-ready data (`to_dict()`): non-finite floats become `None`."""
    return _finite(_json_converter().unstructure(obj))


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinity, however deep, replaced by `None`.

    JSON has no way to write them, yet Python's parser accepts them in an answer, and a
    field the SDK does not know (`extra`) keeps what the server sent. A container is copied
    only where something in it changes, so the common case allocates nothing.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        cleaned = {key: _finite(item) for key, item in value.items()}
        changed = any(cleaned[key] is not item for key, item in value.items())
        return cleaned if changed else value
    if isinstance(value, list | tuple):
        items = [_finite(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value


def load(cls: type[T], data: Any) -> T:
    """A model from `dump`'s output or the API's JSON (`from_dict()`).

    Raises:
        ValidationError: `data` is not the shape of `cls`.
    """
    try:
        return _json_converter().structure(data, cls)
    except Exception as exc:  # noqa: BLE001 - whatever cattrs or a hook raises, the data is bad
        raise ValidationError(cls.__name__, "shape", _describe(exc)) from None


def install() -> None:
    """Make `to_dict()` / `from_dict()` go through this codec (the package does, at import)."""
    use_codec(dump, load)


install()
