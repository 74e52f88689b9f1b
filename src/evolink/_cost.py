"""`client.estimate(...)`: what a request (or a batch) will cost, before anything is spent.

unit price x images or seconds x resolution multiplier, plus per-input-image add-ons, with
a range wherever the price depends on something not known yet (a duration the request
leaves to the model, a resolution the price table does not list), and "unknown in
advance" where the truth is that the platform bills by usage or publishes no price.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from evolink import _lenient as read
from evolink._catalog import model_spec
from evolink._errors import BalanceTooLowError, ValidationError
from evolink._models import GenerationRequest
from evolink._prices import ModelPrice, PriceTable, PriceUnit
from evolink._validation import validate

if TYPE_CHECKING:
    from evolink._client import AsyncEvolink

ZERO = Decimal(0)
#: Where a local file stands in a request being checked (it is uploaded when sent).
LOCAL_STAND_IN = "https://files.evolink.invalid/local-file"
#: Request fields a resolution multiplier may be keyed by, in the order they are tried.
RESOLUTION_FIELDS = ("resolution", "size", "quality", "aspect_ratio")


@attrs.frozen
class CostEstimate:
    """What requests are expected to cost, in credits.

    Attributes:
        min_credits: the least they can cost.
        max_credits: the most; None when it cannot be known in advance (billed by usage,
            or no published price for a model).
        basis: how each part was computed, one line per distinct computation.
        requests: how many requests were estimated.
        unpriced: how many of them have no upper bound.
    """

    min_credits: Decimal
    max_credits: Decimal | None
    basis: tuple[str, ...]
    requests: int = 1
    unpriced: int = 0

    @property
    def is_exact(self) -> bool:
        """Whether the cost is known to the credit (no range, nothing unknown)."""
        return self.max_credits == self.min_credits

    def __str__(self) -> str:
        if self.max_credits is None:
            return f"at least {self.min_credits} credits (the rest is unknown in advance)"
        if self.is_exact:
            return f"{self.min_credits} credits"
        return f"{self.min_credits}-{self.max_credits} credits"


def estimate_request(request: GenerationRequest, price: ModelPrice | None) -> CostEstimate:
    """The cost of one request under `price` (None: no published price)."""
    if price is None:
        return CostEstimate(ZERO, None, (f"{request.model}: no published price",), unpriced=1)
    fields = _fields(request)
    if price.unit is PriceUnit.USAGE:
        low = price.min_charge or ZERO
        return CostEstimate(
            low, None, (f"{request.model}: billed by usage, unknown in advance",), unpriced=1
        )
    low_factor, high_factor, factor_text = _multiplier(price, fields)
    if price.unit is PriceUnit.IMAGE:
        units_low = units_high = Decimal(request.images)
        units_text = f"{request.images} image(s)"
    elif price.unit is PriceUnit.SECOND:
        seconds = _seconds(request, fields)
        if seconds is None:
            return CostEstimate(
                ZERO,
                None,
                (f"{request.model}: per second, and the duration is not known",),
                unpriced=1,
            )
        units_low, units_high, units_text = seconds
        if request.images > 1:  # each of `n` videos is that long
            units_low, units_high = units_low * request.images, units_high * request.images
            units_text = f"{request.images} x {units_text}"
    else:
        units_low = units_high = Decimal(1)
        units_text = "1 request"
    inputs = len(request.image_urls or ()) + (request.mask_url is not None)
    addon = price.input_image * inputs
    low = price.price * units_low * low_factor + addon
    high = price.price_max * units_high * high_factor + addon
    if price.min_charge is not None:
        low, high = max(low, price.min_charge), max(high, price.min_charge)
    unit_price = (
        f"{price.price}" if price.price_max == price.price else f"{price.price}-{price.price_max}"
    )
    text = f"{request.model}: {unit_price} credits/{price.unit} x {units_text}{factor_text}"
    if addon:
        text += f" + {price.input_image} x {inputs} input image(s)"
    return CostEstimate(_tidy(low), _tidy(high), (text,))


def combine(estimates: Iterable[CostEstimate]) -> CostEstimate:
    """The sum of many estimates (the basis lines counted, not repeated)."""
    low, high, count, unpriced = ZERO, ZERO, 0, 0
    unbounded = False
    lines: dict[str, int] = {}
    for one in estimates:
        count += one.requests
        unpriced += one.unpriced
        low += one.min_credits
        if one.max_credits is None:
            unbounded = True
        else:
            high += one.max_credits
        for line in one.basis:
            lines[line] = lines.get(line, 0) + one.requests
    basis = tuple(line if n == 1 else f"{n} x {line}" for line, n in lines.items())
    return CostEstimate(_tidy(low), None if unbounded else _tidy(high), basis, count, unpriced)


def fitting(estimates: Iterable[CostEstimate], budget: Decimal) -> int:
    """How many of `estimates`, taken in order, fit `budget` at their most (an unbounded
    one fits only while its minimum does, as the budget will then learn its price)."""
    spent = ZERO
    count = 0
    for one in estimates:
        spent += one.min_credits if one.max_credits is None else one.max_credits
        if spent > budget:
            break
        count += 1
    return count


def predicted_max(request: GenerationRequest, table: PriceTable) -> Decimal | None:
    """The most `request` may reserve, or None where it cannot be known (for the budget)."""
    return estimate_request(request, table.get(request.model)).max_credits


class Estimator:
    """`client.estimate(request | requests)`: the cost before anything is spent."""

    def __init__(self, client: AsyncEvolink) -> None:
        self._client = client

    async def __call__(
        self, requests: GenerationRequest | str | Iterable[GenerationRequest | str]
    ) -> CostEstimate:
        """Estimate one request (or a prompt, with the default model) or many.

        Raises:
            ValidationError: a request the API would refuse (nothing is sent).
            ModelRetiredError: a model the catalog says is retired.
        """
        return await estimate_with(self._client, requests)

    async def check_balance(
        self, requests: GenerationRequest | str | Iterable[GenerationRequest | str]
    ) -> CostEstimate:
        """Estimate `requests` and make sure the account can cover them (`GET /v1/credits`).

        Returns the estimate when the balance covers its minimum (or the balance is not
        reported).

        Raises:
            BalanceTooLowError: the account's credits are below the estimate's minimum.
            ValidationError, ModelRetiredError: as `estimate`.
        """
        estimate = await estimate_with(self._client, requests)
        available = (await self._client.credits()).remaining_credits
        if available is not None and available < estimate.min_credits:
            raise BalanceTooLowError(needed=estimate.min_credits, available=available)
        return estimate


async def estimate_with(
    client: AsyncEvolink, requests: GenerationRequest | str | Iterable[GenerationRequest | str]
) -> CostEstimate:
    """What `client.estimate` does (and the blocking client's door calls)."""
    items = [requests] if isinstance(requests, (GenerationRequest, str)) else list(requests)
    return combine(await estimate_each(client, items))


async def estimate_each(
    client: AsyncEvolink, items: Iterable[GenerationRequest | str]
) -> list[CostEstimate]:
    """One estimate per request, in order (all validated, and models checked, first)."""
    checked = []
    for item in items:
        request = GenerationRequest(prompt=item) if isinstance(item, str) else item
        if not isinstance(request, GenerationRequest):
            raise ValidationError("requests", "type", "expected GenerationRequest or prompts")
        validate(without_local_files(request), allow_local_callbacks=True)
        checked.append(request)
    for model in dict.fromkeys(request.model for request in checked):
        await client.models.check(model)
    table = await client.prices.table()
    return [estimate_request(request, table.get(request.model)) for request in checked]


def without_local_files(request: GenerationRequest) -> GenerationRequest:
    """`request` with local files standing as URLs, for checks (they are uploaded later)."""
    given = request.image_urls or ()
    changes: dict[str, Any] = {}
    if any(isinstance(u, os.PathLike) for u in given):
        changes["image_urls"] = [LOCAL_STAND_IN if isinstance(u, os.PathLike) else u for u in given]
    if isinstance(request.mask_url, os.PathLike):
        changes["mask_url"] = LOCAL_STAND_IN
    return attrs.evolve(request, **changes) if changes else request


def _tidy(amount: Decimal) -> Decimal:
    """`5.0` as `5`, `2.50` as `2.5` (never `1E+1`)."""
    if amount == amount.to_integral_value():
        return amount.quantize(Decimal(1))
    return amount.normalize()


def _fields(request: GenerationRequest) -> Mapping[str, Any]:
    fields: dict[str, Any] = {"size": request.size} if request.size else {}
    return {**fields, **(request.params or {}), **(request.extra_body or {})}


def _multiplier(price: ModelPrice, fields: Mapping[str, Any]) -> tuple[Decimal, Decimal, str]:
    factors = price.resolution_multipliers
    if not factors:
        return Decimal(1), Decimal(1), ""
    for name in RESOLUTION_FIELDS:
        value = fields.get(name)
        if isinstance(value, str) and value in factors:
            return factors[value], factors[value], f" x {factors[value]} ({value})"
    low, high = min(factors.values()), max(factors.values())
    return low, high, f" x {low}-{high} (resolution not given)"


def _seconds(
    request: GenerationRequest, fields: Mapping[str, Any]
) -> tuple[Decimal, Decimal, str] | None:
    given = read.number(fields.get("duration"))
    if given is not None and given > 0:
        return given, given, f"{given} s"
    spec = model_spec(request.model)
    schema = spec.params.properties.get("duration") if spec is not None else None
    if schema is None:
        return None
    default = read.number(schema.default)
    if default is not None and default > 0:
        return default, default, f"{default} s (the model's default)"
    options = [n for n in map(read.number, schema.enum or ()) if n is not None and n > 0]
    if options:
        return min(options), max(options), f"{min(options)}-{max(options)} s"
    low, high = read.number(schema.minimum), read.number(schema.maximum)
    if low is not None and high is not None and 0 < low <= high:
        return low, high, f"{low}-{high} s"
    return None
