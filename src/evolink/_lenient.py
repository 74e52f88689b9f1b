"""Lenient reading of the platform's newer JSON (catalog, prices, files): odd shapes survive.

Each helper takes whatever the server sent and returns the typed value or None; nothing
here raises on a wrong type, so one odd field never costs the whole answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any


def mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def items(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a JSON array (anything else in it is skipped)."""
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def text(value: Any) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def texts(value: Any) -> tuple[str, ...]:
    """The non-empty strings of an array (a lone string counts as one)."""
    if isinstance(value, str):
        return (value,) if value else ()
    if not isinstance(value, Sequence) or isinstance(value, bytes):
        return ()
    return tuple(item for item in value if isinstance(item, str) and item)


def number(value: Any) -> Decimal | None:
    """A finite number (int, float or numeric string) as an exact Decimal, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def integer(value: Any) -> int | None:
    """A whole number (int or digits), or None."""
    found = number(value)
    if found is None or found != found.to_integral_value():
        return None
    return int(found)


def boolean(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def moment(value: Any) -> datetime | None:
    """An ISO 8601 date-time (or Unix seconds) as an aware datetime, or None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def day(value: Any) -> date | None:
    """A date (`2026-05-29`, or the date of a date-time), or None."""
    found = moment(value)
    if found is not None:
        return found.date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None
