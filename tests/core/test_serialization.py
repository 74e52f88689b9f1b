"""`to_dict()`, `to_json()` and `from_dict()` on the public models: JSON-safe, round-tripping."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evolink import (
    Balance,
    BatchReport,
    BillingRule,
    Credits,
    GenerationRequest,
    Outcome,
    OutcomeKind,
    SavedImage,
    SkipReason,
    Task,
    TaskCredits,
    TaskError,
    TaskInfo,
    TaskStatus,
    TaskType,
    Usage,
    ValidationError,
)

text = st.text(max_size=20)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=6,
)
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=4, max_value=10**9)
# Credits held or taken are never negative (a negative one is a garbled answer).
amounts = st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=0, max_value=10**9)
task_ids = st.from_regex(r"[A-Za-z0-9._~:-]{1,20}", fullmatch=True).map(
    lambda s: "task-unified-" + s
)
# A key-shaped `sk-...` in a task's error message is masked as it is read.
messages = text.filter(lambda m: "sk-" not in m)
floats = st.floats(allow_nan=False, allow_infinity=False)
times = st.datetimes(
    min_value=datetime(1971, 1, 1),  # noqa: DTZ001 - made aware by `timezones`
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30))]),
)


def extra_for(cls: type) -> st.SearchStrategy[dict[str, Any]]:
    """Unknown fields: any JSON, under names the class does not use."""
    known = {a.name for a in attrs.fields(cls)}
    return st.dictionaries(names.filter(lambda n: n not in known), json_value, max_size=2)


def open_enum(cls: type) -> st.SearchStrategy[Any]:
    """Known members and values the SDK has never heard of."""
    return st.sampled_from(list(cls)) | names.map(cls)


task_errors = st.builds(
    TaskError,
    code=text,
    message=messages,
    type=st.none() | text,
    suggestion=st.none() | text,
    extra=extra_for(TaskError),
)
task_infos = st.builds(
    TaskInfo,
    can_cancel=st.none() | st.booleans(),
    estimated_time=st.none() | floats,
    extra=extra_for(TaskInfo),
)
usages = st.builds(
    Usage,
    billing_rule=st.none() | open_enum(BillingRule),
    credits_reserved=st.none() | amounts,
    user_group=st.none() | text,
    credits_used=st.none() | amounts,
    cost=st.none() | decimals,
    extra=extra_for(Usage),
)
tasks = st.builds(
    Task,
    id=task_ids,
    status=open_enum(TaskStatus),
    progress=st.integers(0, 100),
    created=st.none() | times,
    model=st.none() | text,
    object=st.none() | text,
    type=st.none() | open_enum(TaskType),
    task_info=st.none() | task_infos,
    usage=st.none() | usages,
    results=st.lists(text, max_size=3).map(tuple),
    error=st.none() | task_errors,
    extra=extra_for(Task),
)
balances = st.builds(
    Balance,
    remaining_credits=decimals,
    used_credits=decimals,
    unlimited_credits=st.none() | st.booleans(),
)
credits_ = st.builds(
    Credits,
    token=st.none() | balances,
    user=st.none() | balances,
    extra=extra_for(Credits),
)
requests = st.builds(
    GenerationRequest,
    prompt=text,
    model=text,
    size=st.none() | text,
    n=st.none() | st.integers(1, 4),
    image_urls=st.none() | st.lists(text, max_size=2),
    mask_url=st.none() | text,
    callback_url=st.none() | text,
    extra_body=st.none() | st.dictionaries(names, json_value, max_size=2),
)
task_credits = st.builds(
    TaskCredits, reserved=decimals, charged=decimals, released=decimals, settled=st.booleans()
)
outcomes = st.builds(
    Outcome,
    index=st.integers(0, 10_000),
    request=st.none() | requests,
    kind=st.sampled_from(list(OutcomeKind)),
    task=st.none() | tasks,
    error_code=st.none() | text,
    error_message=st.none() | text,
    retryable=st.booleans(),
    reason=st.none() | st.sampled_from(list(SkipReason)),
    idempotency_key=st.none() | text,
    attempts=st.integers(0, 5),
    credits=task_credits,
    elapsed=st.none() | floats,
    tag=json_value,
)
reports = st.builds(
    BatchReport,
    outcomes=st.lists(outcomes, max_size=3),
    reserved=decimals,
    charged=decimals,
    released=decimals,
    stopped_reason=st.none() | text,
    resubmitted=st.integers(0, 5),
    elapsed=floats,
    requests=st.integers(0, 100),
)
saved_images = st.builds(
    SavedImage,
    url=text,
    path=st.sampled_from([Path("out/a.png"), Path("/srv/images/b.webp")]),
    size=st.integers(0),
)

MODELS = [
    pytest.param(Task, tasks, id="Task"),
    pytest.param(TaskError, task_errors, id="TaskError"),
    pytest.param(TaskInfo, task_infos, id="TaskInfo"),
    pytest.param(Usage, usages, id="Usage"),
    pytest.param(Balance, balances, id="Balance"),
    pytest.param(Credits, credits_, id="Credits"),
    pytest.param(GenerationRequest, requests, id="GenerationRequest"),
    pytest.param(Outcome, outcomes, id="Outcome"),
    pytest.param(BatchReport, reports, id="BatchReport"),
    pytest.param(SavedImage, saved_images, id="SavedImage"),
]


def _only_json_types(value: Any) -> bool:
    if isinstance(value, dict):
        return all(type(k) is str and _only_json_types(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_only_json_types(v) for v in value)
    return value is None or type(value) in {str, int, float, bool}


@pytest.mark.parametrize(("cls", "strategy"), MODELS)
def test_round_trip(cls: type, strategy: st.SearchStrategy[Any]):
    """from_dict(to_dict(x)) == x, and from the JSON text too; the dict holds JSON types only."""

    @given(strategy)
    def check(obj: Any) -> None:
        data = obj.to_dict()
        assert _only_json_types(data)
        assert obj == cls.from_dict(data)
        assert obj == cls.from_dict(json.loads(obj.to_json()))

    check()


def test_dump_shapes():
    """Times are ISO-8601, credits decimal strings, enums their values, unknown fields kept."""
    task = Task(
        id="task-unified-1",
        status=TaskStatus.COMPLETED,
        created=datetime(2025, 9, 6, 11, 1, 33, tzinfo=timezone.utc),
        usage=Usage(billing_rule=BillingRule.PER_CALL, credits_reserved=Decimal("2.50")),
        results=("https://r/1.png",),
        extra={"seed": 7},
    )

    assert {
        "id": "task-unified-1",
        "status": "completed",
        "progress": 0,
        "created": "2025-09-06T11:01:33+00:00",
        "usage": {"billing_rule": "per_call", "credits_reserved": "2.50"},
        "results": ["https://r/1.png"],
        "seed": 7,
    } == task.to_dict()
    assert '"credits_reserved": "2.50"' in task.to_json()


def test_from_dict_reads_the_api_json():
    """from_dict also takes the API's own shape: Unix seconds, numbers, unknown fields."""
    task = Task.from_dict(
        {
            "id": "task-unified-1",
            "status": "paused",
            "created": 1757156493,
            "usage": {"credits_reserved": 2.5},
            "new": 1,
        }
    )

    assert datetime(2025, 9, 6, 11, 1, 33, tzinfo=timezone.utc) == task.created
    assert Decimal("2.5") == task.credits_reserved
    assert not task.status.is_known
    assert {"new": 1} == task.extra


def test_from_dict_takes_a_z_time():
    """An ISO-8601 time ending in Z (as JavaScript writes it) is UTC."""
    task = Task.from_dict(
        {"id": "task-unified-t", "status": "pending", "created": "2025-09-06T11:01:33Z"}
    )

    assert datetime(2025, 9, 6, 11, 1, 33, tzinfo=timezone.utc) == task.created


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        pytest.param(Task, {"id": "t"}, id="task-without-status"),
        pytest.param(Task, {"id": "t", "status": "pending", "created": "yesterday"}, id="bad-time"),
        pytest.param(Balance, {"remaining_credits": "lots", "used_credits": 0}, id="bad-decimal"),
        pytest.param(Outcome, {"index": 0, "request": None, "kind": 3}, id="bad-kind"),
        pytest.param(BatchReport, {"outcomes": 3}, id="outcomes-not-a-list"),
    ],
)
def test_from_dict_refuses_bad_data(cls: type, data: dict[str, Any]):
    """Data of the wrong shape raises ValidationError naming the class, never a cattrs error."""
    with pytest.raises(ValidationError) as caught:
        cls.from_dict(data)

    assert cls.__name__ == caught.value.field


def test_a_tag_that_is_not_json_fails_in_to_json_only():
    """to_dict keeps a caller's tag as it is; to_json says it cannot write it."""
    marker = object()
    outcome = Outcome(index=0, request=None, kind=OutcomeKind.SKIPPED, tag=marker)

    assert marker is outcome.to_dict()["tag"]
    with pytest.raises(TypeError):
        outcome.to_json()


def test_report_repr_is_short():
    """repr(report) shows counts and credits, never every outcome."""
    outcome = Outcome(
        index=0, request=GenerationRequest(prompt="x" * 500), kind=OutcomeKind.COMPLETED
    )
    report = BatchReport(outcomes=[outcome] * 1000, charged=Decimal(2500))

    text = repr(report)

    assert "x" * 20 not in text
    assert len(text) < 200
    assert "outcomes=1000" in text
    assert "completed=1000" in text
    assert "charged=2500" in text


def test_outcome_repr_names_the_task_without_printing_it():
    """repr(outcome) names its task and error, not the whole task and request."""
    task = Task(id="task-unified-9", status=TaskStatus.FAILED, results=("https://r/" + "y" * 300,))
    outcome = Outcome(
        index=4,
        request=GenerationRequest(prompt="z" * 300),
        kind=OutcomeKind.FAILED,
        task=task,
        error_code="content_policy_violation",
        reason=None,
        credits=TaskCredits(charged=Decimal("1.5")),
    )

    assert (
        "Outcome(index=4, kind=failed, task_id='task-unified-9', "
        "error_code='content_policy_violation', charged=1.5)"
    ) == repr(outcome)
    assert "reason=budget" in repr(
        Outcome(index=0, request=None, kind=OutcomeKind.SKIPPED, reason=SkipReason.BUDGET)
    )
