"""`to_dict()`, `to_json()` and `from_dict()` for the public models.

One mixin, so every model dumps and loads the same way: through the converter module
(`_converter.dump` / `_converter.load`), never through code of its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self


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
        from evolink._converter import dump  # noqa: PLC0415 - the converter imports models

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
        from evolink._converter import load  # noqa: PLC0415 - the converter imports models

        return load(cls, data)
