"""`to_dict()`, `to_json()` and `from_dict()` for the public models.

One mixin, so every model dumps and loads the same way: through one codec
(`_json_codec`, which installs itself here when imported), never through code of its own.
The models do not import the codec: it imports them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import Self

T = TypeVar("T")

_dump: Callable[[Any], Any] | None = None
_load: Callable[[type[Any], Any], Any] | None = None


def use_codec(dump: Callable[[Any], Any], load: Callable[[type[T], Any], T]) -> None:
    """Install the codec every `Serializable` dumps and loads through."""
    global _dump, _load
    _dump, _load = dump, load


def _codec() -> tuple[Callable[[Any], Any], Callable[[type[Any], Any], Any]]:
    if _dump is None or _load is None:  # pragma: no cover - `evolink` imports the codec
        raise RuntimeError("evolink's JSON codec is not loaded: import evolink")
    return _dump, _load


class Serializable:
    """Adds JSON-ready dumps and loads to an attrs model."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """This object as JSON-ready data.

        Times are ISO-8601 strings, credits exact decimal strings (`"2.5"`), enums their
        values; fields the SDK does not know (`extra`) are included as the server sent them,
        but for NaN and infinities (which JSON cannot hold, though Python's parser reads
        them in an answer): those, wherever they are, become `None`.
        """
        dump, _ = _codec()
        data: dict[str, Any] = dump(self)
        return data

    def to_json(self, *, indent: int | None = None) -> str:
        """`to_dict()` as a JSON string: strict JSON, which any parser reads.

        Non-finite numbers are written as `null` (see `to_dict()`), never as the bare
        `NaN` or `Infinity` that strict parsers (a browser's `JSON.parse`) refuse.

        Raises:
            TypeError: a value the caller attached (an `Outcome`'s `tag`) is not JSON.
        """
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Load what `to_dict()` (or the API itself) produced.

        Raises:
            ValidationError: `data` is not the shape of this class.
        """
        _, load = _codec()
        loaded: Self = load(cls, data)
        return loaded
