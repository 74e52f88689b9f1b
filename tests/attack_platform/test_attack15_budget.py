"""Issue 15, part 2: the batch budget from published prices, attacked from the docs alone.

Promises checked:
- issue 15, Done when: "A batch of 200 prompts with max_credits set below their total, on a
  simulator whose prices are published and whose reservations vary by size: the reserved
  total never passes the budget at any moment, including the very first creates, and the
  report says how many were skipped for budget."
- docs/how-to/estimate.md: "a batch predicts each create's reservation from the published
  prices (the estimate's upper end), so even the first create of each kind is held to the
  budget ... Without published prices ... it falls back to learning the price from a first
  create sent alone."

The server here reserves exactly what its published table says a request costs, so a
budget passed is the SDK's misreading, never the server's surprise.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import httpx
import pytest
from attack15_server import Hostile, envelope_error, sku

from evolink import AsyncEvolink, GenerationRequest, OutcomeKind, SkipReason
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _slow_create_answers(a15_server: Hostile) -> None:
    # Creates are acted on at once but answered 2 s later: the batch's first wave is in
    # flight before it has learned anything from a reservation.
    a15_server.create_latency = 2.0


def assert_one_outcome_each(report: Any, total: int) -> None:
    assert [o.index for o in report.outcomes] == list(range(total))


async def test_200_prompts_first_creates_within_budget(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """The issue's own 'Done when', on a server of our own: 2 credits an image, n from 1
    to 4, 50 at once, a budget of 101 (odd, so the last fit is tight)."""
    a15_server.prices = [sku("gpt-image-2", "g", price=2)]
    a15_server.reserve = lambda body: Decimal(2) * int(body.get("n") or 1)
    rng = random.Random(15)
    requests = [GenerationRequest(prompt=f"crane {i}", n=rng.randint(1, 4)) for i in range(200)]
    async with a15_clock.running():
        report = await a15_client.images.generate_many(requests, max_credits=101, max_in_flight=50)
    assert a15_server.peak <= 101, f"reserved {a15_server.peak} against a budget of 101"
    assert_one_outcome_each(report, 200)
    made = len(a15_server.tasks)
    assert report.skipped_for_budget == 200 - made
    assert made >= 20  # 101 credits buy at least 20 of the dearest (8 credits) ones


async def test_several_skus_budget_uses_the_dearest(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """Three SKUs for one model (1, 5 and 3 credits an image: 1K, 4K, 2K). The first request
    asks 1K (reserved 1), the others 4K (reserved 5). 'the estimate's upper end' is 5: the
    first create teaches nothing about the 4K ones, and 1 + 3 x 5 fit in 20; a batch
    predicting 3 (the last row) for them sends six more at once and commits 31."""
    a15_server.prices = [
        sku("gpt-image-2", "g2-1k", price=1),
        sku("gpt-image-2", "g2-4k", price=5),
        sku("gpt-image-2", "g2-2k", price=3),
    ]
    per = {"1K": 1, "2K": 3, "4K": 5}
    a15_server.reserve = lambda body: Decimal(per[body.get("resolution", "1K")])
    requests = [
        GenerationRequest(prompt=f"tower {i}", params={"resolution": "1K" if i == 0 else "4K"})
        for i in range(12)
    ]
    async with a15_clock.running():
        report = await a15_client.images.generate_many(requests, max_credits=20, max_in_flight=10)
    assert a15_server.peak <= 20, f"reserved {a15_server.peak} against a budget of 20"
    assert_one_outcome_each(report, 12)


async def test_per_second_video_with_n_held_to_budget(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """Per-second video: 10 credits a second, 4 seconds: one video reserves 40, n=2 videos
    (veo's `n`, 'Number of videos, default 1') reserve 80. The first request makes one
    video, the others two: a budget of 200 holds the first and two more."""
    a15_server.prices = [sku("veo-3.1-generate-preview", "veo", unit="second", price=10)]
    a15_server.reserve = lambda body: Decimal(10 * int(body["duration"]) * int(body.get("n", 1)))
    requests = [
        GenerationRequest(
            prompt=f"wave {i}",
            model="veo-3.1-generate-preview",
            n=1 if i == 0 else 2,
            params={"duration": 4},
            kind="video",
        )
        for i in range(6)
    ]
    async with a15_clock.running():
        report = await a15_client.videos.generate_many(requests, max_credits=200, max_in_flight=6)
    assert a15_server.peak <= 200, f"reserved {a15_server.peak} against a budget of 200"
    assert_one_outcome_each(report, 6)


@pytest.mark.parametrize(
    "published",
    [
        pytest.param("usd", id="only-a-USD-price"),
        pytest.param("unreachable", id="pricing-unreachable"),
        pytest.param("garbage", id="pricing-garbage"),
    ],
)
async def test_without_a_credit_price_the_first_create_goes_alone(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock, published: str
) -> None:
    """'Without published prices (the service unreachable) it falls back to learning the
    price from a first create sent alone' and 'may take the batch over the cap by its own
    reservation' (budget.md): never by more. A USD price is no credit price: read as
    credits, 0.04 would let all ten go at once."""
    if published == "usd":
        a15_server.prices = [sku("gpt-image-2", "usd", currency="USD", price="0.04")]
    elif published == "unreachable":

        def gone(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("unreachable", request=request)

        a15_server.pricing_fault = gone
    else:
        a15_server.pricing_fault = lambda r: httpx.Response(200, content=b"\x00\xff not json")
    a15_server.reserve = lambda body: Decimal(4)
    async with a15_clock.running():
        report = await a15_client.images.generate_many(
            [f"kite {i}" for i in range(10)], max_credits=10, max_in_flight=10
        )
    assert a15_server.committed_at_each_create[0] == 4
    assert a15_server.peak <= 10 + 4
    assert len(a15_server.tasks) == 2  # 4 + 4 fit in 10, a third does not
    assert_one_outcome_each(report, 10)
    skipped = [o for o in report.outcomes if o.kind is OutcomeKind.SKIPPED]
    assert all(o.reason is SkipReason.BUDGET for o in skipped)


async def test_budget_refusals_do_not_leave_creates_half_sent(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """'If the account runs out (the server answers 402), the batch stops submitting,
    collects the tasks already running, and ends the rest skipped with
    reason=SkipReason.INSUFFICIENT_CREDITS' (budget.md). Published prices say 1 a task; the
    account runs dry after 5 reservations."""
    a15_server.prices = [sku("gpt-image-2", "g", price=1)]

    def dry(request: httpx.Request, body: dict[str, object]) -> httpx.Response | None:
        if a15_server.committed >= 5:
            return envelope_error(402, "insufficient_quota", "not enough credits")
        return None

    a15_server.create_fault = dry
    a15_server.reserve = lambda body: Decimal(1)
    async with a15_clock.running():
        report = await a15_client.images.generate_many(
            [f"reed {i}" for i in range(20)], max_credits=100, max_in_flight=3
        )
    assert_one_outcome_each(report, 20)
    completed = [o for o in report.outcomes if o.kind is OutcomeKind.COMPLETED]
    assert len(completed) == 5
    assert "insufficient" in str(report.stopped_reason)
    assert sum(1 for o in report.outcomes if o.reason is SkipReason.INSUFFICIENT_CREDITS) >= 12


async def test_a_short_first_video_does_not_teach_a_low_price_for_long_ones(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """'it corrects itself from the reservations the server makes': a 4-second video
    reserving 40 says nothing about 8-second ones, which the published per-second price says
    reserve 80. A budget of 200 holds the first and two long ones, never more."""
    a15_server.prices = [sku("veo-3.1-generate-preview", "veo", unit="second", price=10)]
    a15_server.reserve = lambda body: Decimal(10 * int(body["duration"]))
    requests = [
        GenerationRequest(
            prompt=f"tide {i}",
            model="veo-3.1-generate-preview",
            params={"duration": 4 if i == 0 else 8},
            kind="video",
        )
        for i in range(6)
    ]
    async with a15_clock.running():
        report = await a15_client.videos.generate_many(requests, max_credits=200, max_in_flight=6)
    assert a15_server.peak <= 200, f"reserved {a15_server.peak} against a budget of 200"
    assert len(a15_server.tasks) == 3
    assert_one_outcome_each(report, 6)


async def test_a_cheap_first_resolution_does_not_teach_a_low_price_for_dear_ones(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """Resolution multipliers in the published table (1K x1, 2K x2.5 on 2 credits): a first
    1K image reserving 2 says nothing about the 2K ones, which reserve 5."""
    a15_server.prices = [
        sku("krea-2-turbo", "k", price=2, resolution_multipliers={"1K": 1, "2K": 2.5})
    ]
    a15_server.reserve = lambda body: Decimal(5 if body.get("quality") == "2K" else 2)
    requests = [
        GenerationRequest(
            prompt=f"dune {i}", model="krea-2-turbo", params={"quality": "1K" if i == 0 else "2K"}
        )
        for i in range(8)
    ]
    async with a15_clock.running():
        report = await a15_client.images.generate_many(requests, max_credits=17, max_in_flight=8)
    assert a15_server.peak <= 17, f"reserved {a15_server.peak} against a budget of 17"
    assert len(a15_server.tasks) == 4  # 2 + 3 x 5
    assert_one_outcome_each(report, 8)
