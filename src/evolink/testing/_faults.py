"""Fault injection knobs: what goes wrong, how often, drawn from the simulator's seed."""

from __future__ import annotations

import attrs

from evolink.testing._catalog import TASK_ERROR_CODES


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} is a probability in [0, 1], got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _statuses(
    _: object, attribute: attrs.Attribute[tuple[int, ...]], value: tuple[int, ...]
) -> None:
    if not value or any(not 500 <= status <= 599 for status in value):
        raise ValueError(f"{attribute.name} must be a non-empty tuple of 5xx statuses")


def _codes(_: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must name at least one error code")


def _p() -> float:
    return attrs.field(default=0.0, validator=_probability)


@attrs.frozen(kw_only=True)
class Faults:
    """What the simulator gets wrong on purpose. Every probability defaults to 0.

    Draws come from the simulator's seeded RNG, so one seed and one sequence of requests
    give the same faults every run. Task fates (failure, cancellation, partial results)
    come from a separate RNG, so turning a request fault on does not change durations.

    Attributes:
        rate_limit: fraction of API requests answered 429 (a "429 storm").
        rate_limit_window: `(start, end)` seconds after the simulator was made during
            which the storm blows; None means always.
        create_errors: fraction of creates answered 5xx before any task is made.
        read_errors: fraction of task reads (single, batch, list) answered 5xx.
        error_statuses: the 5xx statuses to draw from (uniformly).
        lost_create_response: fraction of creates whose task is made and reserved, then
            the connection drops mid-response (in-process: `httpx.RemoteProtocolError`).
        slow_response: fraction of API requests answered only after `slow_delay` seconds
            (the work is done first, so a slow create still makes its task). In-process,
            a delay past the request's read timeout raises `httpx.ReadTimeout`.
        slow_delay: seconds of delay for a slow response.
        malformed_json: fraction of successful API answers whose body is cut short
            (invalid JSON; a create has made its task).
        task_failure: fraction of tasks that end `failed`.
        failure_codes: the task error codes a failure draws from (uniformly).
        cancellation: fraction of tasks that end `cancelled`.
        partial_completion: fraction of tasks with `n > 1` that make fewer images than
            asked (charged pro rata).
        callback_drop: fraction of callbacks never sent.
        callback_duplicate: fraction of callbacks sent twice.
        callback_late: fraction of callbacks sent `callback_late_by` seconds late.
        callback_out_of_order: fraction of callbacks held back a random part of
            `callback_late_by`, so they may arrive after callbacks of tasks that ended later.
        callback_late_by: seconds a late callback waits.
        catalog_errors: fraction of catalog and price requests answered 503 (the
            control plane down: 1.0 keeps it down).
        upload_errors: fraction of file uploads answered 503 before anything is stored.
        lost_upload_response: fraction of uploads whose file is stored, then the
            connection drops mid-response.
    """

    rate_limit: float = _p()
    rate_limit_window: tuple[float, float] | None = None
    create_errors: float = _p()
    read_errors: float = _p()
    error_statuses: tuple[int, ...] = attrs.field(default=(500, 502, 503), validator=_statuses)
    lost_create_response: float = _p()
    slow_response: float = _p()
    slow_delay: float = attrs.field(default=30.0, validator=_non_negative)
    malformed_json: float = _p()
    task_failure: float = _p()
    failure_codes: tuple[str, ...] = attrs.field(default=TASK_ERROR_CODES, validator=_codes)
    cancellation: float = _p()
    partial_completion: float = _p()
    callback_drop: float = _p()
    callback_duplicate: float = _p()
    callback_late: float = _p()
    callback_out_of_order: float = _p()
    callback_late_by: float = attrs.field(default=30.0, validator=_non_negative)
    catalog_errors: float = _p()
    upload_errors: float = _p()
    lost_upload_response: float = _p()

    def __attrs_post_init__(self) -> None:
        window = self.rate_limit_window
        if window is not None and not 0 <= window[0] <= window[1]:
            raise ValueError("rate_limit_window must be (start, end) with 0 <= start <= end")
        if self.task_failure + self.cancellation > 1.0:
            raise ValueError("task_failure + cancellation must not exceed 1")
