"""`client.models`: the platform's live model catalog, its lifecycles, and its fallback.

The control plane's `GET /v1/catalog/models` says which models exist, under which aliases,
and where each is in its life (preview, active, deprecated, retired). It is cached and
revalidated (`_revalidate`); when the service cannot be reached at all, the offline catalog
generated into the package (`catalog.json`) answers instead: archived models show as
deprecated there, with no date.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from evolink import _lenient as read
from evolink._catalog import all_models
from evolink._errors import (
    APIConnectionError,
    APIError,
    ModelDeprecatedWarning,
    ModelRetiredError,
    ResponseDecodeError,
    ValidationError,
)
from evolink._models import _OpenEnum
from evolink._revalidate import Revalidating

if TYPE_CHECKING:
    from evolink._client import AsyncEvolink
    from evolink._prices import PriceTable
    from evolink._transport import Pacer, RequestCount, Transport

KINDS = ("image", "video", "audio")


class Lifecycle(_OpenEnum):
    """Where a model is in its life on the platform."""

    PREVIEW = "preview"
    ACTIVE = "active"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


class CatalogSource(str, enum.Enum):
    """Where a catalog answer came from."""

    SERVICE = "service"
    STALE = "stale"  # the service's last copy, served because a refresh failed
    OFFLINE = "offline"  # the catalog generated into this package


@attrs.frozen
class ModelInfo:
    """One model as the platform's catalog describes it.

    Attributes:
        name: the model's id, sent as `model`.
        kind: `"image"`, `"video"` or `"audio"` (None when the catalog does not say).
        lifecycle: preview, active, deprecated or retired.
        aliases: other names the platform maps to it.
        deprecates_at: the date it is (or was) deprecated, or retired after deprecation.
        retires_at: the date it stops being served, where the catalog says.
        replacement: the model to move to, where the catalog names one.
        display_name: its human name.
        provider: who makes it.
        price_from: the lowest published price, in credits per `price_unit`.
        price_unit: `"image"`, `"second"`, `"request"`, ...
    """

    name: str
    kind: str | None
    lifecycle: Lifecycle
    aliases: tuple[str, ...] = ()
    deprecates_at: date | None = None
    retires_at: date | None = None
    replacement: str | None = None
    display_name: str | None = None
    provider: str | None = None
    price_from: Decimal | None = None
    price_unit: str | None = None


@attrs.frozen
class ModelCatalogue:
    """A whole catalog: its models by name, aliases, and where it came from."""

    models: Mapping[str, ModelInfo]
    aliases: Mapping[str, str]
    source: CatalogSource
    version: str | None = None

    def find(self, name: str) -> ModelInfo | None:
        """The model called `name`, or by an alias of it; None if unknown."""
        return self.models.get(self.aliases.get(name, name))


class ModelCatalog:
    """The live model catalog. Reached as `client.models`."""

    def __init__(self, client: AsyncEvolink, transport: Transport) -> None:
        self._client = client
        self._document: Revalidating[ModelCatalogue] = Revalidating(
            transport, "/v1/catalog/models", parse_catalog
        )
        self._last: ModelCatalogue | None = None
        self._warned: set[str] = set()

    async def catalogue(
        self, *, counts: Sequence[RequestCount] = (), pacer: Pacer | None = None
    ) -> ModelCatalogue:
        """The catalog: from the service (cached 5 minutes, stale up to 24 hours on failure),
        else the offline one. A request it sends is added to `counts` (a batch's)."""
        try:
            found = await self._document.get(counts=counts, pacer=pacer)
        except (APIError, APIConnectionError):
            return offline_catalogue()
        if self._document.stale:
            found = attrs.evolve(found, source=CatalogSource.STALE)
        self._last = found
        return found

    async def list(
        self, *, kind: str | None = None, lifecycle: Lifecycle | str | None = None
    ) -> tuple[ModelInfo, ...]:
        """Every model (of `kind`, in `lifecycle`), sorted by name, with its lowest price.

        Raises:
            ValidationError: `kind` is not image, video or audio (nothing sent).
        """
        if kind is not None and kind not in KINDS:
            raise ValidationError("kind", "one_of", f"{kind!r} is not one of {', '.join(KINDS)}")
        wanted = None if lifecycle is None else Lifecycle(lifecycle)
        catalogue = await self.catalogue()
        prices = await self._client.prices.table()
        models = [
            with_price(info, prices)
            for info in catalogue.models.values()
            if (kind is None or info.kind == kind) and (wanted is None or info.lifecycle == wanted)
        ]
        return tuple(sorted(models, key=lambda info: info.name))

    async def get(self, name: str) -> ModelInfo | None:
        """The model called `name` (or by an alias), with its lowest price; None if unknown."""
        info = (await self.catalogue()).find(name)
        return None if info is None else with_price(info, await self._client.prices.table())

    async def check(
        self, name: str, *, counts: Sequence[RequestCount] = (), pacer: Pacer | None = None
    ) -> ModelInfo | None:
        """Refuse a retired model; warn (once per model) about a deprecated one (a catalog
        read it sends is added to `counts`, after waiting out `pacer`).

        Raises:
            ModelRetiredError: the catalog says `name` is retired (naming its replacement).
        """
        catalogue = await self.catalogue(counts=counts, pacer=pacer)
        info = catalogue.find(name)
        # The offline catalog knows no dates or retirements: it neither warns nor refuses.
        if catalogue.source is not CatalogSource.OFFLINE:
            self._judge(name, info)
        return info

    def check_cached(self, name: str) -> None:
        """`check` against the catalog already read, without any request (for single creates)."""
        if self._last is not None:
            self._judge(name, self._last.find(name))

    def _judge(self, name: str, info: ModelInfo | None) -> None:
        if info is None:
            return
        if info.lifecycle == Lifecycle.RETIRED:
            when = info.retires_at or info.deprecates_at
            raise ModelRetiredError(
                name,
                retired_at=None if when is None else when.isoformat(),
                replacement=info.replacement,
            )
        if info.lifecycle == Lifecycle.DEPRECATED and name not in self._warned:
            self._warned.add(name)
            if info.retires_at is not None:
                date_text = f"; it retires on {info.retires_at.isoformat()}"
            elif info.deprecates_at is not None:
                date_text = f" since {info.deprecates_at.isoformat()}"
            else:
                date_text = ""
            instead = f"; move to {info.replacement!r}" if info.replacement else ""
            warnings.warn(
                f"model {name!r} is deprecated{date_text}{instead}",
                ModelDeprecatedWarning,
                stacklevel=3,
            )


def with_price(info: ModelInfo, prices: PriceTable) -> ModelInfo:
    price = prices.get(info.name)
    if price is None or info.price_from is not None:
        return info
    return attrs.evolve(info, price_from=price.lowest, price_unit=price.unit)


def parse_catalog(body: Any) -> ModelCatalogue:
    """Read `{meta, models: [...]}` leniently: an entry without an id is skipped, unknown
    fields ignored; an answer with no `models` array at all is refused."""
    outer = read.mapping(body)
    data = outer.get("data")
    rows_value = outer.get("models", read.mapping(data).get("models") if data else None)
    if not isinstance(rows_value, list):
        raise ResponseDecodeError("catalog without a models array", status_code=200, body=body)
    meta = read.mapping(outer.get("meta"))
    offline = offline_catalogue()
    models: dict[str, ModelInfo] = {}
    aliases: dict[str, str] = {}
    for row in read.items(rows_value):
        name = read.text(row.get("model_id")) or read.text(row.get("id"))
        if name is None:
            continue
        known = offline.find(name)
        lifecycle = Lifecycle(read.text(row.get("lifecycle")) or "active")
        info = ModelInfo(
            name=name,
            kind=_kind(row) or (known.kind if known else None),
            lifecycle=lifecycle,
            aliases=read.texts(row.get("aliases")),
            deprecates_at=read.day(row.get("deprecates_at")),
            retires_at=read.day(row.get("retires_at")),
            replacement=read.text(row.get("replacement")) or read.text(row.get("replaced_by")),
            display_name=read.text(row.get("display_name")),
            provider=read.text(row.get("provider")),
        )
        models[name] = info
        aliases.update({alias: name for alias in info.aliases if alias != name})
    version = read.text(meta.get("catalog_version"))
    return ModelCatalogue(models, aliases, CatalogSource.SERVICE, version)


def _kind(row: Mapping[str, Any]) -> str | None:
    direct = read.text(row.get("kind")) or read.text(row.get("model_type"))
    if direct in KINDS:
        return direct
    for capability in read.texts(row.get("capabilities")):
        for kind in KINDS:
            if kind in capability:
                return kind
    return None


_OFFLINE: list[ModelCatalogue] = []


def offline_catalogue() -> ModelCatalogue:
    """The catalog generated into the package: archived models as deprecated, no dates."""
    if not _OFFLINE:
        models = {
            spec.name: ModelInfo(
                name=spec.name,
                kind=spec.kind,
                lifecycle=Lifecycle.DEPRECATED if spec.archived else Lifecycle.ACTIVE,
                aliases=spec.aliases,
            )
            for spec in all_models()
        }
        aliases = {alias: info.name for info in models.values() for alias in info.aliases}
        _OFFLINE.append(ModelCatalogue(models, aliases, CatalogSource.OFFLINE))
    return _OFFLINE[0]
