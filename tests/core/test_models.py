"""The models and the one converter: tolerant parsing, faithful round-trips."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from _core_support import TASK_ID, task_payload
from hypothesis import given
from hypothesis import strategies as st

from evolink import (
    BillingRule,
    Credits,
    ResponseDecodeError,
    Task,
    TaskError,
    TaskFailedError,
    TaskInfo,
    TaskStatus,
    TaskType,
    Usage,
)
from evolink._converter import parse, parse_credits, parse_task, unstructure

# -- strategies ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def _extras(known: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(
        st.text(min_size=1, max_size=12).filter(lambda k: k not in known), json_values, max_size=3
    )


def _with_extras(fixed: st.SearchStrategy[dict[str, Any]], known: set[str]) -> Any:
    return st.builds(lambda f, e: {**e, **f}, fixed, _extras(known))


def _optional_fields(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


credit_amounts = (
    st.integers(0, 10**6)
    | st.floats(0, 10**6, allow_nan=False)
    | st.decimals(0, 10**6, places=3, allow_nan=False).map(str)
)
open_string = st.text(min_size=1, max_size=12)

task_infos = _with_extras(
    _optional_fields(
        can_cancel=st.booleans() | st.none(),
        estimated_time=st.integers(0, 10**4) | st.floats(0, 10**4) | st.none(),
    ),
    {"can_cancel", "estimated_time", "extra"},
)
usages = _with_extras(
    _optional_fields(
        billing_rule=st.sampled_from(["per_call", "per_token", "per_second"]) | open_string,
        credits_reserved=credit_amounts,
        user_group=st.text(max_size=10),
        credits_used=credit_amounts,
        cost=credit_amounts,
    ),
    {"billing_rule", "credits_reserved", "user_group", "credits_used", "cost", "extra"},
)
task_errors = _with_extras(
    st.fixed_dictionaries(
        {"code": open_string},
        optional={
            "message": st.text(max_size=20),
            "type": st.just("task_error"),
            "suggestion": st.text(max_size=10),
        },
    ),
    {"code", "message", "type", "suggestion", "extra"},
)
task_payloads = _with_extras(
    st.fixed_dictionaries(
        {
            "id": st.from_regex(r"[A-Za-z0-9._~:-]{1,20}", fullmatch=True).map(
                lambda s: "task-unified-" + s
            ),
            "status": st.sampled_from([s.value for s in TaskStatus]) | open_string,
        },
        optional={
            "progress": st.integers(0, 100),
            "created": st.integers(0, 4_000_000_000),
            "model": st.text(max_size=15),
            "object": st.just("image.generation.task"),
            "type": st.sampled_from([t.value for t in TaskType]) | open_string,
            "task_info": task_infos,
            "usage": usages,
            "results": st.lists(st.text(max_size=20), max_size=4),
            "error": task_errors,
        },
    ),
    {
        "id",
        "status",
        "progress",
        "created",
        "model",
        "object",
        "type",
        "task_info",
        "usage",
        "results",
        "error",
        "extra",
    },
)


# -- round-trips --------------------------------------------------------------------------


@given(task_payloads)
def test_task_round_trip(payload):
    """parse -> unstructure -> parse gives an equal Task, extra fields included."""
    task = parse_task(payload)

    again = parse_task(unstructure(task))

    assert task == again
    assert payload["id"] == task.id
    assert payload["status"] == task.status.value
    known = {a.name for a in Task.__attrs_attrs__} - {"extra"}
    assert {k: v for k, v in payload.items() if k not in known} == dict(task.extra)


@given(task_payloads)
def test_created_is_aware_utc(payload):
    """created becomes an aware UTC datetime for the same instant."""
    task = parse_task(payload)

    if "created" in payload:
        assert task.created is not None
        assert timezone.utc == task.created.tzinfo
        assert payload["created"] == task.created.timestamp()
    else:
        assert task.created is None


@given(credit_amounts)
def test_credits_are_exact_decimals(value):
    """Credits in int, float or string form become the Decimal of their text."""
    usage = parse(Usage, {"credits_reserved": value})

    assert Decimal(str(value)) == usage.credits_reserved


def test_spec_example_parses():
    """The SPEC's create answer parses into typed fields."""
    task = parse_task(task_payload())

    assert TASK_ID == task.id
    assert TaskStatus.PENDING is task.status
    assert TaskType.IMAGE is task.type
    assert datetime(2025, 9, 6, 11, 1, 33, tzinfo=timezone.utc) == task.created
    assert TaskInfo(can_cancel=True, estimated_time=100.0) == task.task_info
    assert 100.0 == task.estimated_time
    assert (
        Usage(
            billing_rule=BillingRule.PER_CALL, credits_reserved=Decimal("2.5"), user_group="default"
        )
        == task.usage
    )
    assert Decimal("2.5") == task.credits_reserved
    assert () == task.results
    assert {} == task.extra


def test_unknown_fields_are_reachable():
    """Fields the SDK does not know are kept in `.extra` at every level."""
    payload = task_payload(
        duration=12.5,
        result_data={"a": 1},
        status="failed",
        usage={"credits_reserved": 1, "credits_used": 0, "region": "eu"},
        task_info={"can_cancel": False, "queue": 3},
        error={"code": "service_error", "message": "m", "suggestion": "retry", "trace": "t-1"},
    )

    task = parse_task(payload)

    assert {"duration": 12.5, "result_data": {"a": 1}} == dict(task.extra)
    assert {"region": "eu"} == dict(task.usage.extra)
    assert {"queue": 3} == dict(task.task_info.extra)
    assert {"trace": "t-1"} == dict(task.error.extra)
    assert "retry" == task.error.suggestion
    assert Decimal(0) == task.usage.credits_used


def test_nulls_are_absent_fields():
    """A null for a known field reads as the field's default."""
    task = parse_task(task_payload(task_info=None, usage=None, model=None, progress=None))

    assert (None, None, None, 0) == (task.task_info, task.usage, task.model, task.progress)
    assert task.estimated_time is None
    assert task.credits_reserved is None


@pytest.mark.parametrize(
    ("status", "terminal", "success"),
    [
        pytest.param("pending", False, False, id="pending"),
        pytest.param("processing", False, False, id="processing"),
        pytest.param("completed", True, True, id="completed"),
        pytest.param("failed", True, False, id="failed"),
        pytest.param("cancelled", True, False, id="cancelled"),
        pytest.param("paused", False, False, id="unknown"),
    ],
)
def test_terminal_and_success(status, terminal, success):
    """is_terminal knows every terminal state; an unknown state is not terminal."""
    task = parse_task(task_payload(status=status))

    assert (terminal, success) == (task.is_terminal, task.is_success)
    assert status == task.status.value


def test_unknown_enum_values_keep_their_string():
    """An unknown status, type or billing rule is kept as its string."""
    task = parse_task(
        task_payload(status="paused", type="hologram", usage={"billing_rule": "per_vibe"})
    )

    assert "paused" == TaskStatus("paused").value
    assert "paused" == task.status.value == str(task.status)
    assert TaskStatus("paused") == task.status
    assert not task.status.is_known
    assert TaskStatus.PENDING.is_known
    assert "hologram" == task.type.value
    assert "per_vibe" == task.usage.billing_rule.value
    assert "pending" == str(TaskStatus.PENDING)


def test_enum_rejects_non_strings():
    """Only strings become pseudo-members."""
    with pytest.raises(ValueError, match="3"):
        TaskStatus(3)


@pytest.mark.parametrize(
    ("info", "estimate"),
    [
        ({"estimated_time": "100"}, 100.0),
        ({"estimated_time": "soon"}, None),
        ({"estimated_time": float("nan")}, None),
        ({"estimated_time": True}, None),
        ({"can_cancel": "yes", "estimated_time": 30}, 30.0),
    ],
)
def test_task_info_is_read_leniently(info, estimate):
    """Scheduling hints are hints: an odd one is read as text or dropped, never a reason
    to lose the task (what was sent stays in `extra`)."""
    task = parse_task(task_payload(task_info=info))
    assert task.estimated_time == estimate
    assert task.task_info is not None
    assert task.task_info.can_cancel is None or isinstance(task.task_info.can_cancel, bool)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(None, id="null"),
        pytest.param("task", id="string"),
        pytest.param({"status": "pending"}, id="no-id"),
        pytest.param(task_payload(id=5), id="id-int"),
        pytest.param(task_payload(status=["pending"]), id="status-list"),
        pytest.param(task_payload(created=True), id="created-bool"),
        pytest.param(task_payload(created=10**20), id="created-overflow"),
        pytest.param(task_payload(results=[1, 2]), id="results-ints"),
        pytest.param(task_payload(results="https://x/y.png"), id="results-string"),
        pytest.param(task_payload(usage={"credits_reserved": True}), id="credits-bool"),
        pytest.param(task_payload(usage={"credits_reserved": [1]}), id="credits-list"),
        pytest.param(task_payload(usage={"credits_reserved": "NaN"}), id="credits-nan-string"),
        pytest.param(task_payload(usage={"credits_reserved": "abc"}), id="credits-garbage"),
        pytest.param(task_payload(usage={"credits_reserved": float("inf")}), id="credits-inf"),
        pytest.param(task_payload(usage={"credits_reserved": -25}), id="credits-negative"),
        pytest.param(task_payload(usage={"credits_used": "-0.01"}), id="used-negative"),
        pytest.param(task_payload(id="task-unified-1/../../credits"), id="id-with-path"),
        pytest.param(task_payload(id="task-unified-1%2F..%2Fcredits"), id="id-percent-encoded"),
    ],
)
def test_wrong_types_raise_response_decode_error(payload):
    """A payload of the wrong shape raises ResponseDecodeError naming the class."""
    with pytest.raises(ResponseDecodeError, match="unexpected Task") as info:
        parse_task(payload)

    assert payload is info.value.body


def test_tolerated_number_forms():
    """Progress 42.0 reads as 42 and a datetime passes through as aware UTC."""
    task = parse_task(task_payload(progress=42.0))
    naive = parse(Task, {"id": TASK_ID, "status": "pending", "created": datetime(2026, 1, 1)})  # noqa: DTZ001 - naive on purpose

    assert 42 == task.progress
    assert datetime(2026, 1, 1, tzinfo=timezone.utc) == naive.created


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        pytest.param(
            {"code": "content_policy_violation", "message": "no"},
            "content_policy_violation",
            False,
            id="policy",
        ),
        pytest.param(
            {"code": "generation_timeout", "message": "slow"},
            "generation_timeout",
            True,
            id="timeout",
        ),
        pytest.param({"code": "service_error"}, "service_error", True, id="service-error"),
        pytest.param({"code": "brand_new_code"}, "brand_new_code", False, id="unknown-code"),
    ],
)
def test_raise_for_status_on_failure(error, code, retryable):
    """A failed task raises TaskFailedError with its code and whether it is retryable."""
    task = parse_task(task_payload(status="failed", error=error))

    with pytest.raises(TaskFailedError) as info:
        task.raise_for_status()

    assert task is info.value.task
    assert (code, retryable) == (info.value.code, info.value.retryable)
    assert TASK_ID in str(info.value)
    assert code in str(info.value)


def test_raise_for_status_on_cancel():
    """A cancelled task without error raises TaskFailedError with no code, not retryable."""
    task = parse_task(task_payload(status="cancelled"))

    with pytest.raises(TaskFailedError) as info:
        task.raise_for_status()

    assert (None, False) == (info.value.code, info.value.retryable)
    assert f"task {TASK_ID} cancelled: cancelled" == str(info.value)


@pytest.mark.parametrize(
    "status",
    [pytest.param(s, id=s) for s in ("pending", "processing", "completed", "paused")],
)
def test_raise_for_status_returns_task(status):
    """Any task that did not fail is returned as is."""
    task = parse_task(task_payload(status=status))

    assert task is task.raise_for_status()


def test_task_error_is_retryable():
    """TaskError knows the SPEC's retryable codes."""
    assert TaskError(code="resource_exhausted").is_retryable
    assert not TaskError(code="invalid_parameters").is_retryable


# -- credits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "remaining"),
    [
        pytest.param(
            {
                "token": {"remaining_credits": 40, "unlimited_credits": False, "used_credits": 10},
                "user": {"remaining_credits": 900.5, "used_credits": 99.5},
            },
            Decimal(40),
            id="capped-key",
        ),
        pytest.param(
            {
                "token": {"remaining_credits": 0, "unlimited_credits": True, "used_credits": 10},
                "user": {"remaining_credits": 900.5, "used_credits": 99.5},
            },
            Decimal("900.5"),
            id="unlimited-key",
        ),
        pytest.param(
            {"token": None, "user": {"remaining_credits": "12.25", "used_credits": 0}},
            Decimal("12.25"),
            id="user-only",
        ),
        pytest.param({"token": None, "user": None}, None, id="nulls"),
        pytest.param({}, None, id="absent"),
    ],
)
def test_credits_remaining(data, remaining):
    """remaining_credits is the key's cap unless unlimited, else the user's balance."""
    credits_ = parse_credits(data)

    assert isinstance(credits_, Credits)
    assert remaining == credits_.remaining_credits


def test_credits_keep_unknown_fields_and_round_trip():
    """Credits keep unknown members in `.extra` and round-trip through the converter."""
    data = {
        "token": {"remaining_credits": 1.5, "unlimited_credits": False, "used_credits": 2},
        "user": {"remaining_credits": 3, "used_credits": 4},
        "plan": "pro",
    }

    credits_ = parse_credits(data)

    assert {"plan": "pro"} == dict(credits_.extra)
    assert credits_ == parse_credits(unstructure(credits_))
    assert Decimal("1.5") == credits_.token.remaining_credits


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(None, id="null"),
        pytest.param(
            {"token": {"remaining_credits": "x", "used_credits": 1}, "user": None}, id="garbage"
        ),
        pytest.param({"token": [], "user": None}, id="token-list"),
    ],
)
def test_credits_wrong_shape(data):
    """A credits payload of the wrong shape raises ResponseDecodeError."""
    with pytest.raises(ResponseDecodeError, match="Credits"):
        parse_credits(data)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        pytest.param({"message": "no code"}, "unknown_error", id="missing"),
        pytest.param({"code": 1301, "message": "m"}, "1301", id="integer"),
        pytest.param({"code": None, "message": "m"}, "unknown_error", id="null"),
    ],
)
def test_a_failed_task_decodes_whatever_its_error_code(error, code):
    """`error.code` may be missing or an integer: a failed task still decodes."""
    task = parse_task(task_payload(status="failed", error=error))
    assert task.error is not None
    assert code == task.error.code


def test_cost_as_an_object_keeps_its_credits():
    """Evolink's own client reads `usage.cost` as {credits, usd, cny}: the task decodes."""
    cost = {"credits": 2.5, "usd": 0.025, "cny": 0.18}
    task = parse_task(
        task_payload(status="completed", usage={"credits_reserved": 2.5, "cost": cost})
    )
    assert task.usage is not None
    assert Decimal("2.5") == task.usage.cost
    assert cost == task.usage.extra["cost"]


def test_a_key_quoted_in_a_task_error_is_redacted():
    """A task's error message that quotes an `sk-` key keeps the key out."""
    error = {"code": "invalid", "message": "key sk-evo-abcdef123456 was refused"}
    task = parse_task(task_payload(status="failed", error=error))
    assert task.error is not None
    assert "sk-evo-abcdef123456" not in task.error.message


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("42", 42),
        ("42.9", 42),
        (42.5, 42),
        (float("nan"), 0),
        ("abc", 0),
        ("inf", 0),
        (True, 0),  # a bool is an int to Python, not a percent
    ],
)
def test_progress_is_read_leniently(sent: object, read: int) -> None:
    """Progress is a hint: as text or a fraction it is read, as no number it is none (a paid
    task must still decode); what was reshaped is kept as sent in `extra`."""
    task = Task.from_dict(task_payload(progress=sent))
    assert task.progress == read
    assert "progress" in task.extra
