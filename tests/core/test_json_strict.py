"""`to_dict()` / `to_json()`: strict JSON whatever the server sent, for every public model."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import attrs
import pytest
from _core_support import TASK_ID
from hypothesis import given
from hypothesis import strategies as st

from evolink import BatchProgress, Task, TaskCredits


def _strict_loads(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(constant)

    return json.loads(text, parse_constant=refuse)


def _non_finite_free(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_non_finite_free(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(_non_finite_free(item) for item in value)
    return True


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=10,
)


def test_non_finite_server_fields_dump_as_null() -> None:
    """NaN and infinities in `extra`, however deep, are `None` / `null`, never bare `NaN`."""
    raw = json.loads(
        f'{{"id": "{TASK_ID}", "status": "completed", "score": NaN,'
        ' "nested": {"a": [1.5, Infinity, {"b": -Infinity}]}, "kept": 2.5}'
    )
    task = Task.from_dict(raw)

    expected = {"score": None, "nested": {"a": [1.5, None, {"b": None}]}, "kept": 2.5}
    assert expected == {key: task.to_dict()[key] for key in expected}
    assert expected == {key: _strict_loads(task.to_json())[key] for key in expected}


@given(extra=st.dictionaries(st.sampled_from(["score", "meta", "list"]), _JSON_VALUES))
def test_to_json_is_always_strict(extra: dict[str, Any]) -> None:
    """Whatever JSON-like values the server adds (Python's parser reads NaN), the dump parses."""
    task = Task.from_dict({"id": TASK_ID, "status": "processing", **extra})

    assert _non_finite_free(task.to_dict())
    assert task.to_dict() == _strict_loads(task.to_json())


def test_finite_dumps_are_not_copied() -> None:
    """Nothing non-finite: the dump is as before (same values, nothing replaced)."""
    task = Task.from_dict({"id": TASK_ID, "status": "completed", "meta": {"a": [1.0, 2]}})

    assert {"a": [1.0, 2]} == task.to_dict()["meta"]


CREDITS = TaskCredits(
    reserved=Decimal("5.0"), charged=Decimal("2.5"), released=Decimal("2.5"), settled=True
)
PROGRESS = BatchProgress(
    total=10,
    submitted=4,
    creating=1,
    in_flight=2,
    completed=1,
    failed=0,
    cancelled=0,
    rejected=0,
    skipped=0,
    uncertain=0,
    abandoned=0,
    reserved=Decimal("10.0"),
    charged=Decimal("2.5"),
    released=Decimal(0),
    max_credits=Decimal(50),
    elapsed=3.25,
    eta=12.5,
)


@pytest.mark.parametrize(
    "model", [pytest.param(CREDITS, id="TaskCredits"), pytest.param(PROGRESS, id="BatchProgress")]
)
def test_ledger_and_progress_round_trip_through_json(model: TaskCredits | BatchProgress) -> None:
    """`TaskCredits` and `BatchProgress` dump and load like every other public model."""
    data = _strict_loads(model.to_json())

    assert model == type(model).from_dict(data)
    assert model == type(model).from_dict(model.to_dict())
    assert "2.5" == data["charged"]


def test_progress_with_an_infinite_eta_dumps_null() -> None:
    """An `eta` of infinity is written as `null`: strict JSON for a web page."""
    data = _strict_loads(attrs.evolve(PROGRESS, eta=math.inf).to_json())

    assert data["eta"] is None
