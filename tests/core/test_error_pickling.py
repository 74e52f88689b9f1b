"""Errors cross process boundaries: every public error pickles with its message and attributes."""

from __future__ import annotations

import pickle
import traceback
from decimal import Decimal
from typing import Any

import pytest
from _core_support import API_KEY, TASK_ID

import evolink
from evolink import (
    APIError,
    AsyncEvolink,
    ConfigurationError,
    DownloadError,
    EvolinkError,
    GenerationRequest,
    NotFoundError,
    RateLimitError,
    SubmissionUncertainError,
    Task,
    TaskFailedError,
    ValidationError,
    WaitTimeoutError,
)

_FAILED = Task.from_dict(
    {
        "id": TASK_ID,
        "status": "failed",
        "error": {"code": "content_policy_violation", "message": "refused"},
        "server_field": {"kept": [1, 2]},
    }
)
_RUNNING = Task.from_dict({"id": TASK_ID, "status": "processing", "progress": 40})


def _task_failed() -> TaskFailedError:
    try:
        _FAILED.raise_for_status()
    except TaskFailedError as exc:
        return exc
    raise AssertionError  # pragma: no cover


ERRORS = [
    pytest.param(ValidationError("size", "one_of", "must be 1:1 or 16:9"), id="validation"),
    pytest.param(ConfigurationError("no API key"), id="configuration"),
    pytest.param(
        NotFoundError(
            "gone", status_code=404, code="task_not_found", request_id="req-1", body={"e": 1}
        ),
        id="not-found",
    ),
    pytest.param(APIError("teapot", status_code=418), id="api-error"),
    pytest.param(
        RateLimitError("slow down", status_code=429, retry_after=2.5, code=1002), id="rate-limit"
    ),
    pytest.param(
        SubmissionUncertainError(
            "no answer",
            idempotency_key="k" * 24,
            request=GenerationRequest(prompt="a fox", model="gpt-image-2", params={"n": 2}),
        ),
        id="submission-uncertain",
    ),
    pytest.param(_task_failed(), id="task-failed"),
    pytest.param(WaitTimeoutError(_RUNNING, 30.0), id="wait-timeout"),
    pytest.param(DownloadError("HTTP 503", transient=True), id="download"),
    pytest.param(
        evolink.UploadUncertainError("no answer", idempotency_key="k" * 24, source="a.png"),
        id="upload-uncertain",
    ),
    pytest.param(
        evolink.ModelRetiredError("m", retired_at="2026-08-01", replacement="n"), id="retired"
    ),
    pytest.param(
        evolink.BalanceTooLowError(needed=Decimal(5), available=Decimal(2)), id="balance-too-low"
    ),
]


def _state(error: BaseException) -> dict[str, Any]:
    return {name: value for name, value in vars(error).items() if not name.startswith("__")}


@pytest.mark.parametrize("error", ERRORS)
def test_errors_round_trip_through_pickle(error: EvolinkError) -> None:
    """An error comes back from pickle as the same class, message and attributes."""
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes

    assert type(error) is type(again)
    assert str(error) == str(again)
    assert error.args == again.args
    assert _state(error) == _state(again)


def test_every_public_error_is_covered() -> None:
    """The cases above name every public `EvolinkError` subclass with an `__init__` of its own."""
    own_init = {
        cls
        for cls in vars(evolink).values()
        if isinstance(cls, type) and issubclass(cls, EvolinkError) and "__init__" in vars(cls)
    }
    covered = {type(param.values[0]) for param in ERRORS}

    assert own_init <= covered


def test_a_pickled_error_names_its_public_class() -> None:
    """The pickle refers to `evolink.NotFoundError`, the name users import."""
    data = pickle.dumps(NotFoundError("gone", status_code=404))

    assert b"evolink._errors" not in data
    assert b"NotFoundError" in data


def test_a_half_built_client_has_a_repr_without_its_key() -> None:
    """`repr` of a client whose `__init__` raised part-way works and does not show the key."""
    with pytest.raises(ConfigurationError) as info:
        AsyncEvolink(api_key=API_KEY, max_retries=-1)
    frame = info.tb.tb_next.tb_frame if info.tb.tb_next else info.tb.tb_frame
    half_built = frame.f_locals["self"]

    assert "AsyncEvolink(<not initialised>)" == repr(half_built)
    assert "AsyncEvolink(<not initialised>)" == repr(AsyncEvolink.__new__(AsyncEvolink))
    assert traceback.TracebackException.from_exception(info.value, capture_locals=True)


def test_a_built_client_repr_masks_its_key() -> None:
    """A working client's repr shows its address, and its key only masked."""
    client = AsyncEvolink(api_key=API_KEY, base_url="https://api.example.test")

    assert "AsyncEvolink(base_url='https://api.example.test', api_key='***')" == repr(client)
