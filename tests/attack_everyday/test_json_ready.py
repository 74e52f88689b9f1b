"""to_dict / to_json / from_dict with hostile values, from the models reference."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from _attack_helpers import API, KEY, TASK_ID, FakeAPI, task_json

import evolink
from evolink import (
    AsyncEvolink,
    Balance,
    Credits,
    GenerationRequest,
    Outcome,
    OutcomeKind,
    SavedImage,
    Task,
    TaskStatus,
)


def _strict_loads(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


HOSTILE_EXTRA = {
    "nested": {"deep": [1, {"ü": "雪の狐 🦊", "z": None, "t": True}], "empty": {}},
    "big_int": 10**30,
    "neg": -(10**18),
    "float": 0.1,
    "nul": "a\x00b",
    "surrogate_free": "\u2028\u2029",
}


def test_docs_example_round_trips():
    task = Task.from_dict(
        {
            "id": TASK_ID,
            "status": "completed",
            "created": 1757156493,
            "usage": {"credits_reserved": 2.5},
            "results": ["https://files.example/1.png"],
        }
    )
    dumped = _strict_loads(task.to_json(indent=2))
    assert dumped["created"] == "2025-09-06T11:01:33+00:00"
    assert dumped["usage"]["credits_reserved"] == "2.5"
    assert Task.from_dict(json.loads(task.to_json())) == task
    assert task.created == datetime(2025, 9, 6, 11, 1, 33, tzinfo=timezone.utc)


def test_hostile_extras_round_trip_and_stay_as_sent():
    body = task_json(results=["https://files.example/ü.png"], **HOSTILE_EXTRA)
    task = Task.from_dict(body)
    assert dict(task.extra)["nested"] == HOSTILE_EXTRA["nested"]
    again = Task.from_dict(_strict_loads(task.to_json()))
    assert again == task
    assert again.to_dict() == task.to_dict()
    assert _strict_loads(task.to_json())["big_int"] == 10**30


def test_to_json_is_strict_json_even_when_the_server_sent_nan():
    # Python's json (which parses answers) accepts NaN/Infinity; a JSON-ready dump must not
    # emit them, or JSON.parse in a browser and strict parsers refuse the dump.
    raw = json.loads(f'{{"id": "{TASK_ID}", "status": "completed", "score": NaN, "x": Infinity}}')
    task = Task.from_dict(raw)
    _strict_loads(task.to_json())


def test_huge_and_tiny_credits_stay_exact():
    for value in ("123456789012345678901234567890.123456789", "0.000000001", "0", 2.5, 10**25):
        task = Task.from_dict(
            {"id": TASK_ID, "status": "pending", "usage": {"credits_reserved": value}}
        )
        dumped = _strict_loads(task.to_json())
        assert Decimal(dumped["usage"]["credits_reserved"]) == Decimal(str(value))
        assert isinstance(dumped["usage"]["credits_reserved"], str)
        assert Task.from_dict(dumped) == task


def test_unknown_status_and_type_round_trip():
    task = Task.from_dict({"id": TASK_ID, "status": "paused", "type": "hologram"})
    assert task.status.is_known is False
    assert TaskStatus("paused").is_known is False
    dumped = _strict_loads(task.to_json())
    assert dumped["status"] == "paused"
    assert dumped["type"] == "hologram"
    assert Task.from_dict(dumped) == task


def test_datetimes_from_iso_with_other_offsets_and_naive_are_utc_aware():
    a = Task.from_dict({"id": TASK_ID, "status": "pending", "created": "2025-09-06T13:01:33+02:00"})
    b = Task.from_dict({"id": TASK_ID, "status": "pending", "created": 1757156493})
    assert a.created == b.created
    assert a.created is not None
    assert a.created.utcoffset() is not None


@pytest.mark.parametrize(
    "data",
    [[], "task", None, 5, {"status": "completed"}, {"id": 7, "status": "completed"}],
)
def test_from_dict_of_the_wrong_shape_is_validation_error_named_by_class(data):
    with pytest.raises(evolink.ValidationError) as info:
        Task.from_dict(data)
    assert info.value.field == "Task"


def test_credits_and_balance_round_trip():
    credits = Credits.from_dict(
        {
            "token": {
                "remaining_credits": "12.34",
                "used_credits": 0.1,
                "unlimited_credits": False,
            },
            "user": {"remaining_credits": 99999999999999999999.5, "used_credits": "0"},
            "extra_field": {"ü": [1, 2]},
        }
    )
    again = Credits.from_dict(_strict_loads(credits.to_json()))
    assert again == credits
    assert credits.token is not None
    assert credits.token.remaining_credits == Decimal("12.34")
    bal = Balance(remaining_credits=Decimal("1.10"), used_credits=Decimal(0))
    assert Balance.from_dict(bal.to_dict()) == bal
    assert _strict_loads(bal.to_json())["remaining_credits"] in ("1.10", "1.1")


def test_generation_request_round_trip_with_unicode_and_extra_body():
    req = GenerationRequest(
        prompt="雪の中の赤い狐 🦊 \u202e",
        size="1:1",
        n=2,
        image_urls=["https://example.com/a.png"],
        extra_body={"style": {"nested": [1, 2, {"k": "v"}]}, "seed": 2**40},
    )
    again = GenerationRequest.from_dict(_strict_loads(req.to_json()))
    assert again == req


def test_saved_image_round_trip():
    saved = SavedImage(url="https://x.example/1.png", path=Path("out") / "ü 1.png", size=10**12)
    dumped = _strict_loads(saved.to_json())
    assert dumped["path"].endswith("ü 1.png")
    assert SavedImage.from_dict(dumped) == saved


def test_outcome_round_trip_and_non_json_tag_is_type_error():
    task = Task.from_dict(task_json(results=["https://x.example/1.png"]))
    out = Outcome(
        index=3,
        request=GenerationRequest(prompt="p"),
        kind=OutcomeKind.COMPLETED,
        task=task,
        tag={"row": 3, "ü": ["x"]},
    )
    again = Outcome.from_dict(_strict_loads(out.to_json()))
    assert again == out
    with pytest.raises(TypeError):
        Outcome(index=0, request=None, kind=OutcomeKind.REJECTED, tag=object()).to_json()


@pytest.mark.parametrize("cls_name", ["BatchProgress", "TaskCredits"])
def test_other_public_models_are_json_ready(cls_name):
    # The issue: "every public model has to_dict() / to_json() and from_dict()".
    cls = getattr(evolink, cls_name)
    assert hasattr(cls, "to_dict")
    assert hasattr(cls, "to_json")
    assert hasattr(cls, "from_dict")


@pytest.mark.anyio
async def test_task_read_from_the_api_round_trips_through_json():
    api = FakeAPI()
    body = task_json(results=["https://x.example/1.png"], **HOSTILE_EXTRA)
    api.routes["GET", f"/v1/tasks/{TASK_ID}"] = lambda _: httpx.Response(200, json=body)
    async with AsyncEvolink(api_key=KEY, base_url=API, transport=api.transport()) as client:
        task = await client.tasks.get(TASK_ID)
    assert Task.from_dict(_strict_loads(task.to_json())) == task
    assert KEY not in task.to_json()


@pytest.mark.anyio
async def test_answers_json_can_not_parse_become_response_decode_errors():
    api = FakeAPI()
    huge = b'{"id": "%s", "status": "completed", "n": 1%s}' % (TASK_ID.encode(), b"0" * 5000)
    api.routes["GET", f"/v1/tasks/{TASK_ID}"] = lambda _: httpx.Response(
        200, content=huge, headers={"content-type": "application/json"}
    )
    async with AsyncEvolink(
        api_key=KEY, base_url=API, transport=api.transport(), max_retries=0
    ) as client:
        with pytest.raises(evolink.ResponseDecodeError):
            await client.tasks.get(TASK_ID)
