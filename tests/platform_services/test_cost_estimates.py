"""`client.estimate(...)`: published prices x images or seconds x resolution, plus add-ons;
ranges where the price depends on what is not known; unknown where that is the truth."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from _platform_support import BASE_URL, client_for, png

from evolink import (
    AsyncEvolink,
    BalanceTooLowError,
    CostEstimate,
    Evolink,
    GenerationRequest,
    ModelPrice,
    PriceUnit,
    ValidationError,
)
from evolink._cost import combine, estimate_request, fitting
from evolink._prices import parse_prices
from evolink.testing import TEST_API_KEY, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

VIDEO = "kling-v3-text-to-video"


async def test_images_cost_price_times_images(client: AsyncEvolink):
    """gpt-image-2 at 2.5 a picture: n=2 and a prompt make 7.5, exactly."""
    estimate = await client.estimate([GenerationRequest(prompt="fox", n=2), "owl"])

    assert (
        CostEstimate(
            Decimal("7.5"),
            Decimal("7.5"),
            (
                "gpt-image-2: 2.5 credits/image x 2 image(s)",
                "gpt-image-2: 2.5 credits/image x 1 image(s)",
            ),
            2,
        )
        == estimate
    )
    assert estimate.is_exact
    assert "7.5 credits" == str(estimate)


async def test_local_files_are_estimated_unsent(
    client: AsyncEvolink, sim: Simulator, tmp_path: Path
):
    """A request naming local files (in `image_urls` and `mask_url`) is estimated like one
    naming URLs, and nothing is uploaded for an estimate."""
    image = tmp_path / "ref.png"
    image.write_bytes(png(1))
    local = GenerationRequest(prompt="fox", image_urls=[image], mask_url=image)
    remote = GenerationRequest(
        prompt="fox", image_urls=["https://x/ref.png"], mask_url="https://x/mask.png"
    )

    assert await client.estimate(remote) == await client.estimate(local)
    assert 0 == sim.count("POST", "/api/v1/files/upload")


async def test_a_video_costs_its_seconds(client: AsyncEvolink, sim: Simulator):
    """A video's estimate is its per-second price times its duration, as the server reserves."""
    request = GenerationRequest(prompt="waves", model=VIDEO, kind="video", params={"duration": 5})
    estimate = await client.estimate(request)
    task = await client.videos.create(request)

    assert estimate.max_credits == task.credits_reserved
    assert "5 s" in estimate.basis[0]


def _price(**kwargs: Any) -> ModelPrice:
    kwargs.setdefault("model", "m")
    kwargs.setdefault("unit", PriceUnit.IMAGE)
    kwargs.setdefault("price", Decimal(2))
    return ModelPrice(**kwargs)


@pytest.mark.parametrize(
    ("request_", "price", "low", "high"),
    [
        pytest.param(
            GenerationRequest(prompt="p", model="m", size="2K"),
            _price(resolution_multipliers={"1K": Decimal(1), "2K": Decimal("1.5")}),
            Decimal(3),
            Decimal(3),
            id="known-resolution",
        ),
        pytest.param(
            GenerationRequest(prompt="p", model="m"),
            _price(resolution_multipliers={"1K": Decimal(1), "4K": Decimal(3)}),
            Decimal(2),
            Decimal(6),
            id="resolution-not-given-is-a-range",
        ),
        pytest.param(
            GenerationRequest(prompt="p", model="m", image_urls=["https://a/1.png", "https://a/2"]),
            _price(input_image=Decimal("0.5")),
            Decimal(3),
            Decimal(3),
            id="input-image-add-ons",
        ),
        pytest.param(
            GenerationRequest(prompt="p", model="m"),
            _price(min_charge=Decimal(5)),
            Decimal(5),
            Decimal(5),
            id="minimum-charge",
        ),
        pytest.param(
            GenerationRequest(prompt="p", model="m", kind="audio"),
            _price(unit=PriceUnit.REQUEST, price=Decimal(3)),
            Decimal(3),
            Decimal(3),
            id="per-request",
        ),
        pytest.param(
            GenerationRequest(prompt="p", model="m"),
            _price(unit=PriceUnit.USAGE, min_charge=Decimal(1)),
            Decimal(1),
            None,
            id="billed-by-usage",
        ),
        pytest.param(
            GenerationRequest(prompt="p", model="m", kind="video"),
            _price(unit=PriceUnit.SECOND),
            Decimal(0),
            None,
            id="seconds-unknown-for-a-model-without-schema",
        ),
        pytest.param(
            GenerationRequest(prompt="p", model="m"), None, Decimal(0), None, id="no-price"
        ),
    ],
)
def test_estimate_rules(
    request_: GenerationRequest, price: ModelPrice | None, low: Decimal, high: Decimal | None
):
    """Each part of the rule: multipliers, ranges, add-ons, minimums, unknowns."""
    estimate = estimate_request(request_, price)
    assert (low, high) == (estimate.min_credits, estimate.max_credits)
    assert estimate.basis


def test_a_video_without_duration_uses_the_schema():
    """The model's documented duration (default, or its range) stands in for the request's."""
    price = _price(model=VIDEO, unit=PriceUnit.SECOND, price=Decimal(1))
    estimate = estimate_request(GenerationRequest(prompt="p", model=VIDEO, kind="video"), price)
    assert estimate.min_credits > 0
    assert estimate.max_credits is not None


def test_combine_and_fitting():
    """Sums keep the basis once per computation; `fitting` counts what a budget holds."""
    one = CostEstimate(Decimal(2), Decimal(3), ("a",))
    unknown = CostEstimate(Decimal(1), None, ("b",), unpriced=1)
    total = combine([one, one, unknown])

    assert (Decimal(5), None, 3, 1) == (
        total.min_credits,
        total.max_credits,
        total.requests,
        total.unpriced,
    )
    assert ("2 x a", "b") == total.basis
    assert "at least 5 credits (the rest is unknown in advance)" == str(total)
    assert "2-3 credits" == str(one)
    assert 2 == fitting([one, one, one], Decimal(7))
    assert 3 == fitting([one, unknown, one], Decimal(7))


def test_prices_are_read_leniently():
    """Rows in money, without a model or unit, or negative are skipped; add-ons attach."""
    table = parse_prices(
        {
            "prices": [
                {"model_id": "a", "unit": "per_image", "price": "2", "currency": "credits"},
                {"model_id": "a", "role": "input_image", "price": 0.5},
                {"model_id": "b", "unit": "image", "price": 2, "currency": "USD"},
                {"model_id": "c", "unit": "furlong", "price": 2},
                {"model_id": "d", "unit": "image", "price": -1},
                {"unit": "image", "price": 1},
                {
                    "model_name": "e",
                    "billing_rule": "per_1k_tokens",
                    "price": 1,
                    "resolution_multipliers": {"x": "bad", "y": 2},
                },
                "junk",
            ]
        }
    )
    assert {"a", "e"} == set(table.prices)
    assert Decimal("0.5") == table.prices["a"].input_image
    assert PriceUnit.USAGE == table.prices["e"].unit
    assert {"y": Decimal(2)} == dict(table.prices["e"].resolution_multipliers)


async def test_invalid_requests_are_refused_before_any_request(
    client: AsyncEvolink, sim: Simulator
):
    with pytest.raises(ValidationError):
        await client.estimate(GenerationRequest(prompt="", model="gpt-image-2"))
    with pytest.raises(ValidationError):
        await client.estimate([42])  # type: ignore[list-item]
    assert [] == list(sim.requests)


async def test_no_published_prices_says_unknown(clock: VirtualClock):
    """Without prices the estimate is honest: no upper bound."""
    sim = Simulator(clock=clock, publish_prices=False)
    async with clock.running(), client_for(sim) as client:
        estimate = await client.estimate("fox")
    assert estimate.max_credits is None
    assert 1 == estimate.unpriced


async def test_the_balance_check(clock: VirtualClock):
    """An account below the estimate's minimum: BalanceTooLowError with both amounts."""
    sim = Simulator(clock=clock, balance=5)
    async with clock.running(), client_for(sim) as client:
        fits = await client.estimate.check_balance(["a", "b"])
        with pytest.raises(BalanceTooLowError) as caught:
            await client.estimate.check_balance(["a", "b", "c"])
    assert Decimal(5) == fits.min_credits
    assert (Decimal("7.5"), Decimal(5)) == (caught.value.needed, caught.value.available)


async def test_prices_are_revalidated_with_etag(
    client: AsyncEvolink, sim: Simulator, clock: VirtualClock
):
    await client.prices.table()
    await clock.sleep(600)
    await client.prices.table()
    assert [200, 304] == [r.status for r in sim.requests if r.path == "/v1/catalog/pricing"]


async def test_a_pricing_answer_without_prices_means_none():
    async with respx.mock() as mock:
        mock.get(f"{BASE_URL}/v1/catalog/pricing").respond(200, json={"meta": {}})
        mock.get(f"{BASE_URL}/v1/catalog/models").respond(200, json={"models": []})
        async with AsyncEvolink(
            api_key=TEST_API_KEY, base_url=BASE_URL, transport=httpx.MockTransport(mock.handler)
        ) as client:
            table = await client.prices.table()
            estimate = await client.estimate("fox")
    assert "none" == table.source
    assert estimate.max_credits is None


def test_the_blocking_estimate():
    """`Evolink().estimate` and `.models` answer as the async ones do."""
    sim = Simulator()
    with Evolink(api_key=TEST_API_KEY, base_url=BASE_URL, transport=sim.transport()) as client:
        estimate = client.estimate(["a", "b"])
        model = client.models.get("gpt-image-2")
        videos = client.models.list(kind="video")
    assert Decimal(5) == estimate.max_credits
    assert model is not None
    assert videos
