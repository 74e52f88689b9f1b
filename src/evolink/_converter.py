"""The one cattrs converter: API JSON to frozen models and back.

Tolerant by design: unknown fields go to each model's `extra`, unknown enum values become
pseudo-members, `created` becomes an aware UTC datetime, credits become exact Decimals.
"""

from __future__ import annotations

import math
import os
import types
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from evolink._errors import ResponseDecodeError, ValidationError
from evolink._ids import check_task_id
from evolink._models import (
    RESULT_MEDIA_FIELDS,
    Balance,
    Credits,
    Reference,
    ResultData,
    Task,
    TaskError,
    TaskInfo,
    Usage,
    _OpenEnum,
    read_result_data,
)
from evolink._redact import redact_text

T = TypeVar("T")

# Leaves before the classes that hold them.
_WITH_EXTRA = (ResultData, TaskInfo, Usage, TaskError, Task, Credits)


def _to_decimal(value: Any, _: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def _to_datetime(value: Any, _: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a Unix time: {value!r}")
    return datetime.fromtimestamp(value, tz=timezone.utc)


def _to_int(value: Any, _: object) -> int:
    # Progress arrives as an int; tolerate 42.0 but not "42" or True.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not an integer: {value!r}")
    return round(value)


def _to_float(value: Any, _: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _to_str(value: Any, _: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")
    return value


def _to_bool(value: Any, _: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"not a boolean: {value!r}")
    return value


def _to_str_tuple(value: Any, _: object) -> tuple[str, ...]:
    # A bare string would otherwise become a tuple of its characters.
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"not a list: {value!r}")
    return tuple(_to_str(item, str) for item in value)


def _is_reference(kind: object) -> bool:
    """Whether `kind` is `Reference` (a URL or a local file), maybe optional."""
    members = set(getattr(kind, "__args__", ())) if isinstance(kind, types.UnionType) else set()
    return os.PathLike[str] in members and members <= {str, os.PathLike[str], type(None)}


def _to_reference(value: Any, _: object) -> Reference | None:
    # From JSON a local file is its path's text: a str, as a URL is.
    if value is None or isinstance(value, os.PathLike):
        return value
    return _to_str(value, str)


def _to_reference_tuple(value: Any, _: object) -> tuple[Reference, ...]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"not a list: {value!r}")
    return tuple(item if isinstance(item, os.PathLike) else _to_str(item, str) for item in value)


def _to_enum(value: Any, cls: type[_OpenEnum]) -> _OpenEnum:
    return cls(_to_str(value, cls))


def _from_decimal(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _check_usage(usage: Usage) -> None:
    # Credits the server held or took cannot be negative: such an answer is garbled, and
    # must never count as room in a budget.
    for name in ("credits_reserved", "credits_used"):
        amount = getattr(usage, name)
        if amount is not None and amount < 0:
            raise ValueError(f"{name} is negative: {amount}")


def _check_task(task: Task) -> None:
    # The id becomes part of URL paths (reads, callbacks): check it where it enters.
    try:
        check_task_id(task.id)
    except ValidationError as exc:
        raise ValueError(f"id {task.id!r}: {exc}") from None


def _lenient_usage(data: dict[str, Any]) -> dict[str, Any]:
    # Evolink's own client reads `cost` as {credits, usd, cny}: keep the credits figure
    # (the object stays in `extra` as sent).
    cost = data.get("cost")
    if isinstance(cost, Mapping):
        data["cost"] = cost.get("credits")
    return data


def _lenient_task_error(data: dict[str, Any]) -> dict[str, Any]:
    # `code` may come as an integer or not at all; a failed task must still decode.
    code = data.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        data["code"] = str(code)
    elif not isinstance(code, str):
        data["code"] = "unknown_error"
    message = data.get("message")
    if isinstance(message, str):
        data["message"] = redact_text(message)  # a server may quote a key in it
    return data


def _lenient_result_data(data: dict[str, Any]) -> dict[str, Any]:
    # A media field that is not a URL string (a list, an object, a number) is no URL to
    # hand out: it stays in `extra` as sent, and the rest still reads.
    for name in RESULT_MEDIA_FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            del data[name]
    return data


def _result_data_urls(result_data: Any) -> list[str]:
    if not isinstance(result_data, Mapping):
        return []
    urls = (result_data.get(name) for name in ("image_url", "video_url", "audio_url"))
    return [url for url in urls if isinstance(url, str) and url]


_CHECKS: Mapping[type, Callable[[Any], None]] = {Usage: _check_usage, Task: _check_task}


def _lenient_task_info(data: dict[str, Any]) -> dict[str, Any]:
    # Hints, not facts: an estimate as text ("30") is read, one that is no number at all
    # ("abc", NaN) is no estimate (kept as sent in `extra`); a task must still decode.
    estimate = data.get("estimated_time")
    if isinstance(estimate, str):
        try:
            estimate = float(estimate)
        except ValueError:
            estimate = None
    usable = isinstance(estimate, (int, float)) and not isinstance(estimate, bool)
    data["estimated_time"] = estimate if usable and math.isfinite(estimate) else None  # type: ignore[arg-type]
    if not isinstance(data.get("can_cancel"), bool):
        data["can_cancel"] = None
    return data


def _lenient_task(data: dict[str, Any]) -> dict[str, Any]:
    # Progress is a hint too: as text ("42") it is read, as no number at all it is none
    # (kept as sent in `extra`); a paid task must still decode.
    progress = data.get("progress")
    if isinstance(progress, str):
        try:
            progress = float(progress)
        except ValueError:
            progress = None
    if isinstance(progress, float):
        progress = int(progress) if math.isfinite(progress) else None
    # A bool is an int to Python, not a percent: `true` is no progress at all.
    usable = isinstance(progress, int) and not isinstance(progress, bool)
    data["progress"] = progress if usable else None
    return data


_PREPARE: Mapping[type, Callable[[dict[str, Any]], dict[str, Any]]] = {
    Task: _lenient_task,
    TaskInfo: _lenient_task_info,
    Usage: _lenient_usage,
    TaskError: _lenient_task_error,
    ResultData: _lenient_result_data,
}


def _structure_with_extra(converter: cattrs.Converter, cls: type[T]) -> Callable[[Any, object], T]:
    known = frozenset(a.name for a in attrs.fields(cls)) - {"extra"}  # type: ignore[arg-type]
    base = make_dict_structure_fn(cls, converter, extra=override(omit=True))
    check = _CHECKS.get(cls)
    prepare = _PREPARE.get(cls)

    def structure(data: Any, _: object) -> T:
        if not isinstance(data, Mapping):
            raise TypeError(f"expected an object for {cls.__name__}, got {type(data).__name__}")
        # A null is as good as an absent field.
        present = {k: v for k, v in data.items() if k in known and v is not None}
        unknown = {k: v for k, v in data.items() if k not in known}
        if cls is Task and not present.get("results"):
            # Some models answer their files in `result_data` only: they are its results.
            media = _result_data_urls(data.get("result_data"))
            if media:
                present["results"] = media
        if prepare is not None:
            before = dict(present)
            present = {k: v for k, v in prepare(present).items() if v is not None}
            # What was reshaped is kept as sent, under its own name, in `extra`.
            unknown |= {k: v for k, v in before.items() if present.get(k) is not v}
        obj = base(present, cls)
        if check is not None:
            check(obj)
        return attrs.evolve(obj, extra=unknown) if unknown else obj  # type: ignore[misc]

    return structure


def _unstructure_dropping_none(converter: cattrs.Converter, cls: type[Any]) -> Callable[[Any], Any]:
    names = [a.name for a in attrs.fields(cls) if a.name != "extra"]

    def unstructure(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = dict(getattr(obj, "extra", {}))
        for name in names:
            value = getattr(obj, name)
            if value is not None:
                out[name] = converter.unstructure(value)
        return out

    return unstructure


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(Decimal, _to_decimal)
    converter.register_structure_hook(datetime, _to_datetime)
    converter.register_structure_hook(int, _to_int)
    converter.register_structure_hook(float, _to_float)
    converter.register_structure_hook(str, _to_str)
    converter.register_structure_hook(bool, _to_bool)
    converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _to_str_tuple)
    converter.register_structure_hook_func(_is_reference, _to_reference)
    converter.register_structure_hook_func(
        lambda t: t == tuple[Reference, ...], _to_reference_tuple
    )
    # More specific than the str hook, so the str-based enums stay enums.
    converter.register_structure_hook(_OpenEnum, _to_enum)
    converter.register_unstructure_hook(Decimal, _from_decimal)
    converter.register_unstructure_hook(datetime, lambda d: int(d.timestamp()))
    converter.register_unstructure_hook(tuple, list)
    converter.register_unstructure_hook(_OpenEnum, lambda e: e.value)
    # Leaves first: a class's generated hook binds the hooks of its fields when it is made.
    for cls in _WITH_EXTRA:
        converter.register_structure_hook(cls, _structure_with_extra(converter, cls))
    for model in (*_WITH_EXTRA, Balance):
        converter.register_unstructure_hook(model, _unstructure_dropping_none(converter, model))
    return converter


CONVERTER = _make_converter()


def parse(cls: type[T], data: Any) -> T:
    """Structure API JSON into `cls`, raising `ResponseDecodeError` on a shape we cannot use."""
    try:
        return CONVERTER.structure(data, cls)
    except Exception as exc:  # noqa: BLE001 - whatever cattrs or a hook raises, the body is bad
        detail = _describe(exc)
        raise ResponseDecodeError(
            f"unexpected {cls.__name__} in response: {detail}", status_code=200, body=data
        ) from None


def parse_task(data: Any) -> Task:
    """Structure one task payload."""
    return parse(Task, data)


def task_parser(task_id: str) -> Callable[[Any], Task]:
    """The parser of a read of `task_id`: an answer about another task is garbled."""

    def parse_read(data: Any) -> Task:
        task = parse_task(data)
        if task.id != task_id:
            raise ResponseDecodeError(
                f"asked for {task_id}, answered with {task.id}", status_code=200, body=data
            )
        return task

    return parse_read


def parse_result_data(data: Any) -> ResultData | None:
    """Structure a task's `result_data`; None unless it is an object (it never raises)."""
    return read_result_data(data)


def parse_credits(data: Any) -> Credits:
    """Structure the `data` member of a `GET /v1/credits` answer."""
    return parse(Credits, data)


def unstructure(obj: Any) -> Any:
    """A model back to API-shaped JSON (unknown fields included)."""
    return CONVERTER.unstructure(obj)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        notes = cattrs.transform_error(exc)
        return "; ".join(notes[:3])
    return str(exc)
