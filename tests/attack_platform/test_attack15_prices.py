"""Issue 15, part 2: published prices and estimates, attacked from the docs alone.

Promises checked (issue 15 "Parts 2", docs/how-to/estimate.md, PLATFORM.md):
- "unit price x images or seconds x resolution multiplier, plus per-input add-ons; a range
  when the price depends on something not yet known; 'billed by usage, unknown in advance'
  where that is the truth".
- "client.estimate validates every request first (a bad one raises ValidationError, with
  nothing sent)".
- "A balance check before a batch starts says clearly when the account cannot cover it."
- Prices are "cached for five minutes, revalidated with an ETag".
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from attack15_server import META, SECRET, Hostile, envelope_error, model_row, sku

from evolink import (
    AsyncEvolink,
    BalanceTooLowError,
    EvolinkError,
    GenerationRequest,
    ModelDeprecatedWarning,
    ValidationError,
)
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

PRICING = "/v1/catalog/pricing"


def image(model: str = "gpt-image-2", **params: object) -> GenerationRequest:
    n = params.pop("n", None)
    image_urls = params.pop("image_urls", None)
    return GenerationRequest(
        prompt="a lighthouse",
        model=model,
        n=n,
        image_urls=image_urls,
        params=params,  # type: ignore[arg-type]
    )


def video(model: str = "veo-3.1-generate-preview", **params: object) -> GenerationRequest:
    n = params.pop("n", None)
    return GenerationRequest(prompt="a wave", model=model, n=n, params=params, kind="video")  # type: ignore[arg-type]


async def test_several_skus_for_one_model_make_a_range_not_the_last_row(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """PLATFORM.md: prices are '[{sku_id, model_id, role, ...}]': a model may have several
    SKUs (one per resolution, say). docs/how-to/estimate.md: 'Where the price depends on
    something the request leaves open ... the estimate is a range'. A table listing 1, 5
    and 3 credits for one model's output must not be read as whichever row came last."""
    a15_server.prices = [
        sku("gpt-image-2", "g2-1k", price=1),
        sku("gpt-image-2", "g2-4k", price=5),
        sku("gpt-image-2", "g2-2k", price=3),
    ]
    cost = await a15_client.estimate(image(n=1))
    assert cost.max_credits is not None, cost
    assert cost.max_credits >= 5, cost
    assert cost.min_credits <= 1, cost


async def test_resolution_multiplier_is_applied(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """'unit price x images ... x the resolution's multiplier' (docs/how-to/estimate.md)."""
    a15_server.prices = [
        sku("krea-2-turbo", "k", price=2, resolution_multipliers={"1K": 1, "2K": 2.5})
    ]
    assert (await a15_client.estimate(image("krea-2-turbo", quality="2K"))).max_credits == 5
    one_k = await a15_client.estimate(image("krea-2-turbo", quality="1K"))
    assert (one_k.min_credits, one_k.max_credits) == (2, 2)
    default = await a15_client.estimate(image("krea-2-turbo"))  # the schema's default is 1K
    assert default.min_credits == 2
    assert default.max_credits in (Decimal(2), Decimal(5))


async def test_multiplier_key_in_another_case_is_not_read_as_no_multiplier(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """A table keyed '4K' and a request for veo's '4k' (its documented spelling): the
    estimate must not fall to the 1x price; either it matches, or the price depends on
    something unknown and the estimate's upper end covers the dearest multiplier."""
    a15_server.prices = [
        sku(
            "veo-3.1-generate-preview",
            "veo",
            unit="second",
            price=10,
            resolution_multipliers={"720P": 1, "1080P": 1.5, "4K": 3},
        )
    ]
    cost = await a15_client.estimate(video(duration=8, quality="4k"))
    assert cost.max_credits is None or cost.max_credits >= 240, cost


async def test_per_second_video_price(a15_client: AsyncEvolink, a15_server: Hostile) -> None:
    """'unit price x ... seconds of video x the resolution's multiplier'."""
    a15_server.prices = [
        sku(
            "veo-3.1-generate-preview",
            "veo",
            unit="second",
            price=10,
            resolution_multipliers={"720p": 1, "1080p": 1.5, "4k": 3},
        )
    ]
    cost = await a15_client.estimate(video(duration=8, quality="1080p", n=2))
    assert (cost.min_credits, cost.max_credits) == (240, 240), cost


async def test_input_image_add_on(a15_client: AsyncEvolink, a15_server: Hostile) -> None:
    """'plus a price per input image where the model charges one' (estimate.md)."""
    a15_server.prices = [
        sku("gpt-image-2", "out", price=2),
        sku("gpt-image-2", "in", role="input_image", price="0.5"),
    ]
    urls = ["https://img.example/a.png", "https://img.example/b.png"]
    cost = await a15_client.estimate(image(n=3, image_urls=urls))
    assert (cost.min_credits, cost.max_credits) == (7, 7), cost


async def test_price_in_another_currency_is_not_read_as_credits(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """PLATFORM.md: each price has a `currency`. ModelPrice: 'One model's published price,
    in credits'. A USD or CNY row is no credit price, whatever order the rows come in."""
    a15_server.prices = [
        sku("gpt-image-2", "cr", price=3),
        sku("gpt-image-2", "usd", currency="USD", price="0.03"),
        sku("gpt-image-2", "cny", currency="CNY", price=21),
        sku("krea-2-turbo", "usd-only", currency="USD", price="0.02"),
    ]
    cost = await a15_client.estimate(image(n=2))
    assert (cost.min_credits, cost.max_credits) == (6, 6), cost
    usd_only = await a15_client.estimate(image("krea-2-turbo"))
    assert usd_only.max_credits is None
    assert usd_only.unpriced == 1


@pytest.mark.parametrize("unit", ["1k_tokens", "per_1k_tokens", "token"])
async def test_token_billed_model_has_no_upper_bound(
    a15_client: AsyncEvolink, a15_server: Hostile, unit: str
) -> None:
    """'Where the truth is that nobody knows in advance (a model billed by tokens ...),
    max_credits is None and basis says why.'"""
    a15_server.prices = [sku("gpt-image-2", "tok", unit=unit, price=1)]
    cost = await a15_client.estimate(image(n=1))
    assert cost.max_credits is None
    assert cost.unpriced == 1
    assert cost.basis


async def test_decimal_prices_stay_exact(a15_client: AsyncEvolink, a15_server: Hostile) -> None:
    """Credits are Decimals (docs/reference/models.md: 'Credits are Decimals'): 0.1 x 3 is
    0.3, not 0.30000000000000004."""
    a15_server.prices = [sku("gpt-image-2", "cheap", price=0.1)]
    cost = await a15_client.estimate(image(n=3))
    assert cost.max_credits == Decimal("0.3")
    assert cost.min_credits == Decimal("0.3")


async def test_garbage_price_rows_do_not_become_prices_nor_break_the_table(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """A lenient reader (PLATFORM.md) keeps the good rows; a row whose price is missing,
    not a number or negative is no price (a negative one would let a budget believe
    creates are free, or better than free)."""
    a15_server.prices = [
        sku("krea-2-turbo", "null", price=None),
        sku("doubao-seedream-4.5", "text", price="call us"),
        sku("qwen-image-3.0", "neg", price=-4),
        {"sku_id": "half-a-row"},
        sku("gpt-image-2", "ok", price=2, brand_new_field={"x": 1}),
    ]
    assert (await a15_client.estimate(image(n=1))).max_credits == 2
    for model in ("krea-2-turbo", "doubao-seedream-4.5", "qwen-image-3.0"):
        cost = await a15_client.estimate(image(model))
        assert cost.max_credits is None, (model, cost)
        assert cost.min_credits >= 0


async def test_prices_revalidated_with_etag_and_stale_on_failure(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """Prices are 'cached for five minutes, revalidated with an ETag'; PriceTable's source
    is 'service', 'stale' or 'none'."""
    a15_server.prices = [sku("gpt-image-2", "g", price=2)]
    assert (await a15_client.prices.table()).source == "service"
    await a15_client.prices.table()
    assert a15_server.count(PRICING, "GET") == 1
    a15_clock.advance(301)
    table = await a15_client.prices.table()
    reads = [r for r in a15_server.log if r.url.path == PRICING]
    assert reads[-1].headers.get("if-none-match") == '"price-1"'
    assert table.get("gpt-image-2") is not None
    assert table.get("gpt-image-2").price == 2  # type: ignore[union-attr]
    a15_server.pricing_fault = lambda r: envelope_error(502, "bad_gateway", "upstream")
    a15_clock.advance(301)
    async with a15_clock.running():
        stale = await a15_client.prices.table()
    assert stale.source == "stale"
    assert stale.get("gpt-image-2") is not None


async def test_estimate_validates_before_sending_anything(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """'client.estimate validates every request first (a bad one raises ValidationError,
    with nothing sent)'."""
    good = [image(n=1) for _ in range(3)]
    bad = GenerationRequest(prompt="a fox", model="gpt-image-1.5", size="16:9")
    with pytest.raises(ValidationError):
        await a15_client.estimate([*good, bad])
    with pytest.raises(ValidationError):
        await a15_client.estimate.check_balance([*good, bad])
    assert a15_server.log == []


async def test_mixed_batch_estimate_counts_the_unpriced(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """CostEstimate: 'max_credits ... None when it cannot be known in advance';
    'unpriced: how many of them have no upper bound'."""
    a15_server.prices = [sku("gpt-image-2", "g", price=2)]
    cost = await a15_client.estimate([image(n=2), image(n=1), image("krea-2-turbo"), "a fox"])
    assert cost.requests == 4
    assert cost.unpriced == 1
    assert cost.max_credits is None
    assert cost.min_credits == 2 * 2 + 2 + 2


def credits_body(token: float, user: float, *, unlimited: bool = False) -> dict[str, object]:
    return {
        "success": True,
        "message": "",
        "data": {
            "token": {
                "remaining_credits": token,
                "unlimited_credits": unlimited,
                "used_credits": 1,
            },
            "user": {"remaining_credits": user, "used_credits": 1},
        },
    }


async def test_balance_check_uses_the_account_that_is_short(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """'A balance check before a batch starts says clearly when the account cannot cover
    it' (issue 15). GET /v1/credits reports a key's and a user's credits (manual,
    get-credits): plenty on the key is no help when the account behind it has 3."""
    a15_server.prices = [sku("gpt-image-2", "g", price=2)]
    a15_server.balance_body = credits_body(token=99_416.44, user=3)
    with pytest.raises(BalanceTooLowError) as caught:
        await a15_client.estimate.check_balance(["a", "b", "c"])
    assert caught.value.needed == 6
    assert caught.value.available == 3


async def test_balance_check_with_unlimited_key_looks_at_the_user(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """An unlimited key (manual: `unlimited_credits`) whose remaining_credits reads 0 is
    no reason to refuse when the user has 1000."""
    a15_server.prices = [sku("gpt-image-2", "g", price=2)]
    a15_server.balance_body = credits_body(token=0, user=1000, unlimited=True)
    cost = await a15_client.estimate.check_balance(["a", "b"])
    assert cost.max_credits == 4


async def test_balance_answer_with_success_false_is_an_error_not_a_pass(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """PLATFORM.md: 'A body with success: false (credits, files API) is an error even with
    HTTP 200.' check_balance returns the estimate only 'when the balance covers its
    minimum (or the balance is not reported)': a refusal is not 'not reported'. The key it
    quotes back stays out of the error."""
    a15_server.prices = [sku("gpt-image-2", "g", price=2)]
    a15_server.balance_body = {
        "success": False,
        "message": f"token {SECRET} is disabled",
        "data": None,
    }
    with pytest.raises(EvolinkError) as caught:
        await a15_client.estimate.check_balance(["a", "b"])
    err = caught.value
    assert SECRET not in f"{err} {err!r} {err.args!r} {vars(err)!r}"


async def test_estimate_survives_a_bodyless_304_it_did_not_ask_for(
    a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """A proxy answering 304 with no body to a request that sent no If-None-Match is a
    broken answer: the estimate may be unpriced, but must not crash with a raw error."""
    a15_server.pricing_fault = lambda r: httpx.Response(304)
    a15_server.catalog_fault = lambda r: httpx.Response(304)
    async with AsyncEvolink(
        api_key=SECRET, transport=a15_server.transport(), clock=a15_clock, max_retries=0
    ) as client:
        cost = await client.estimate("a fox")
    assert cost.requests == 1


async def test_newer_pricing_envelope_is_read(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """A versioned envelope with a newer schema_version and fields the SDK does not know:
    the rows in the documented shape are still read (a lenient reader)."""
    a15_server.pricing_fault = lambda r: httpx.Response(
        200,
        json={
            "meta": {**META, "schema_version": 3, "currencies": ["credits", "USD"]},
            "prices": [sku("gpt-image-2", "g", price=2, tier_discounts=[{"from": 100}])],
            "promotions": [],
        },
    )
    assert (await a15_client.estimate(image(n=1))).max_credits == 2


async def test_estimate_warns_about_a_deprecated_model_with_its_date(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """'client.estimate ... checks each model against the catalog: ... a deprecated one warns
    with its date' (estimate.md)."""
    a15_server.models = [
        model_row("krea-2-turbo", lifecycle="deprecated", deprecates_at="2026-10-01")
    ]
    a15_server.prices = [sku("krea-2-turbo", "k", price=2)]
    with pytest.warns(ModelDeprecatedWarning, match="2026-10-01"):
        cost = await a15_client.estimate(image("krea-2-turbo"))
    assert cost.max_credits == 2
