"""The platform's newer answers are read leniently: odd values become None, never a crash."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from evolink import GenerationRequest, ModelPrice, PriceUnit, TaskType
from evolink import _lenient as read
from evolink._cost import estimate_request
from evolink.testing import Simulator

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2", 2, id="digits"),
        pytest.param(2.0, 2, id="whole-float"),
        pytest.param(2.5, None, id="fraction"),
        pytest.param(True, None, id="bool"),
        pytest.param(float("nan"), None, id="nan"),
        pytest.param("two", None, id="words"),
        pytest.param(None, None, id="none"),
    ],
)
def test_integers(value: Any, expected: int | None):
    assert expected == read.integer(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            "2026-09-01T08:00:00+08:00",
            datetime(2026, 9, 1, tzinfo=timezone.utc),
            id="iso-with-offset",
        ),
        pytest.param("2026-09-01T00:00:00Z", datetime(2026, 9, 1, tzinfo=timezone.utc), id="z"),
        pytest.param("2026-09-01T00:00:00", datetime(2026, 9, 1, tzinfo=timezone.utc), id="naive"),
        pytest.param(0, datetime(1970, 1, 1, tzinfo=timezone.utc), id="unix"),
        pytest.param(1e300, None, id="unix-overflow"),
        pytest.param("soon", None, id="words"),
        pytest.param("", None, id="empty"),
    ],
)
def test_moments(value: Any, expected: datetime | None):
    assert expected == read.moment(value)


def test_days_texts_and_items():
    assert date(2026, 5, 29) == read.day("2026-05-29")
    assert read.day(["2026-05-29"]) is None
    assert ("a",) == read.texts("a")
    assert () == read.texts(b"a")
    assert ("a", "b") == read.texts(["a", "", 3, "b"])
    assert [] == read.items("not a list")
    assert {} == dict(read.mapping([1]))


def test_a_video_model_with_a_duration_range_is_a_range():
    """A documented minimum and maximum (no default) make the estimate a range."""
    model = "doubao-seedance-1.0-pro-fast"
    price = ModelPrice(model=model, unit=PriceUnit.SECOND, price=Decimal(1))

    estimate = estimate_request(GenerationRequest(prompt="p", model=model, kind="video"), price)

    assert (Decimal(2), Decimal(12)) == (estimate.min_credits, estimate.max_credits)
    assert "2-12 s" in estimate.basis[0]


async def test_listing_by_type_and_model():
    """`type` and `model` filters travel as query parameters."""
    from _platform_support import client_for  # noqa: PLC0415

    sim = Simulator()
    async with client_for(sim) as client:
        await client.images.generate("a fox")
        by_type = [t async for t in client.tasks.list(type=TaskType.IMAGE, model="gpt-image-2")]
        none = [t async for t in client.tasks.list(type="video")]
    assert 1 == len(by_type)
    assert [] == none
    assert "model=gpt-image-2" in sim.requests[1].query


async def test_invalidate_makes_the_next_read_revalidate():
    from _platform_support import client_for  # noqa: PLC0415

    sim = Simulator()
    async with client_for(sim) as client:
        await client.prices.table()
        client.prices._document.invalidate()
        await client.prices.table()
    assert [200, 304] == [r.status for r in sim.requests]
