"""Published prices: what a model costs per image, per second or per request, in credits.

Read from the control plane's `GET /v1/catalog/pricing` (cached and revalidated like the
catalog). Rows in another currency than credits are skipped: the budget counts credits.
Without the service there are no prices (the offline catalog carries none), and estimates
say so rather than guess.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from evolink import _lenient as read
from evolink._errors import APIConnectionError, APIError, ResponseDecodeError
from evolink._revalidate import Revalidating

if TYPE_CHECKING:
    from evolink._transport import Pacer, RequestCount, Transport

ONE = Decimal(1)


class PriceUnit(str, enum.Enum):
    """What a price is per."""

    IMAGE = "image"
    SECOND = "second"
    REQUEST = "request"
    #: Billed by tokens or another measure of use: not known before the task runs.
    USAGE = "usage"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class ModelPrice:
    """One model's published price, in credits.

    Attributes:
        model: the model's id.
        unit: what `price` is per.
        price: credits per unit, before any resolution multiplier (the lowest, where a
            model publishes several output prices: one per resolution, say).
        price_max: the highest of those prices (`price` where there is one).
        input_image: credits added per input (reference) image.
        resolution_multipliers: factors by size or resolution (`"1080p": 1.5`).
        min_charge: the least a task is charged, where published.
    """

    model: str
    unit: PriceUnit
    price: Decimal
    input_image: Decimal = Decimal(0)
    resolution_multipliers: Mapping[str, Decimal] = attrs.field(factory=dict)
    min_charge: Decimal | None = None
    price_max: Decimal = attrs.field()

    @price_max.default
    def _one_price(self) -> Decimal:
        return self.price

    @property
    def lowest(self) -> Decimal:
        """The cheapest unit price (the lowest multiplier applied)."""
        factors = self.resolution_multipliers.values()
        return self.price * min(factors, default=ONE)


@attrs.frozen
class PriceTable:
    """Prices by model; `source` is `"service"`, `"stale"` or `"none"`."""

    prices: Mapping[str, ModelPrice]
    source: str

    def get(self, model: str) -> ModelPrice | None:
        """`model`'s price, or None where none is published."""
        return self.prices.get(model)


class Prices:
    """The published prices, cached. Reached as `client.prices`."""

    def __init__(self, transport: Transport) -> None:
        self._document: Revalidating[PriceTable] = Revalidating(
            transport, "/v1/catalog/pricing", parse_prices
        )

    async def table(
        self, *, counts: Sequence[RequestCount] = (), pacer: Pacer | None = None
    ) -> PriceTable:
        """Every published price (an empty table when the service cannot be reached); a
        request it sends is added to `counts` (a batch's), after waiting out `pacer`."""
        try:
            table = await self._document.get(counts=counts, pacer=pacer)
        except (APIError, APIConnectionError):
            return PriceTable({}, "none")
        return attrs.evolve(table, source="stale") if self._document.stale else table

    async def get(self, model: str) -> ModelPrice | None:
        """`model`'s published price, or None where none is known."""
        return (await self.table()).get(model)


def _unit(value: str | None) -> PriceUnit | None:
    text = (value or "").lower().removeprefix("per_").removeprefix("per ")
    if text in ("image", "images", "picture"):
        return PriceUnit.IMAGE
    if text in ("second", "seconds", "sec", "s"):
        return PriceUnit.SECOND
    if text in ("request", "call", "task", "generation"):
        return PriceUnit.REQUEST
    if "token" in text or text in ("usage", "character", "characters"):
        return PriceUnit.USAGE
    return None


def _multipliers(value: Any) -> dict[str, Decimal]:
    found = {}
    for name, factor in read.mapping(value).items():
        number = read.number(factor)
        if number is not None and number > 0:
            found[str(name)] = number
    return found


def _merged(one: ModelPrice, other: ModelPrice) -> ModelPrice:
    """A model with several output prices (SKUs): the range they span, never the last row.
    Per different units, nothing can be said in advance."""
    if one.unit is not other.unit:
        return attrs.evolve(one, unit=PriceUnit.USAGE)
    factors = {**other.resolution_multipliers, **one.resolution_multipliers}
    charges = [c for c in (one.min_charge, other.min_charge) if c is not None]
    return attrs.evolve(
        one,
        price=min(one.price, other.price),
        price_max=max(one.price_max, other.price_max),
        resolution_multipliers=factors,
        min_charge=min(charges, default=None),
    )


def parse_prices(body: Any) -> PriceTable:
    """Read `{meta, prices: [...]}` leniently: rows without a model, a known unit or a
    credit price are skipped; an answer with no `prices` array is refused."""
    outer = read.mapping(body)
    rows = outer.get("prices", read.mapping(outer.get("data")).get("prices"))
    if not isinstance(rows, list):
        raise ResponseDecodeError("pricing without a prices array", status_code=200, body=body)
    bases: dict[str, ModelPrice] = {}
    addons: dict[str, Decimal] = {}
    for row in read.items(rows):
        model = read.text(row.get("model_id")) or read.text(row.get("model_name"))
        price = read.number(row.get("price"))
        currency = (read.text(row.get("currency")) or "credits").lower()
        if model is None or price is None or price < 0 or not currency.startswith("credit"):
            continue
        role = (read.text(row.get("role")) or "output").lower()
        if "input" in role:  # a per-input-image add-on
            addons[model] = addons.get(model, Decimal(0)) + price
            continue
        unit = _unit(read.text(row.get("unit")) or read.text(row.get("billing_rule")))
        if unit is None:
            continue
        found = ModelPrice(
            model=model,
            unit=unit,
            price=price,
            resolution_multipliers=_multipliers(row.get("resolution_multipliers")),
            min_charge=read.number(row.get("min_charge")),
        )
        before = bases.get(model)
        bases[model] = found if before is None else _merged(before, found)
    table = {
        model: attrs.evolve(price, input_image=addons.get(model, Decimal(0)))
        for model, price in bases.items()
    }
    return PriceTable(table, "service")
