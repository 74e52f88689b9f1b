"""What a batch learns from the platform before its first create of each model.

The catalog: a retired model is refused before anything is spent (its inputs skipped with
the reason and the replacement), a deprecated one warns with its date. The prices: with a
budget, each create is predicted from the published price from the very first one, so
`max_credits` holds from the start; the server's reservations correct it as they come.
Neither needs the service: without it the offline catalog and no prices apply, and the
budget probes one create at a time as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio
import attrs

from evolink._cost import predicted_max
from evolink._errors import ModelRetiredError

if TYPE_CHECKING:
    from evolink._budget import Budget
    from evolink._client import AsyncEvolink
    from evolink._transport import Pacer, RequestCount


#: Seconds between a batch's checks of a model it sends (the catalog's cache is 5 minutes).
RECHECK = 60.0


@attrs.define
class Preflight:
    """A batch's checks of each model, made once per model before its first create."""

    client: AsyncEvolink
    budget: Budget
    #: Where the catalog and price reads are counted (the batch's requests).
    counts: Sequence[RequestCount] = ()
    #: The batch's 429 brake, waited out before each read.
    pacer: Pacer | None = None
    #: Models refused before any create: name -> why.
    refused: dict[str, str] = attrs.field(factory=dict)
    _checked: dict[str, float] = attrs.field(factory=dict)  # model -> when (monotonic)
    _priced: bool = False
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock)

    async def check(self, model: str) -> str | None:
        """Why `model` may not be used (it is retired), else None. Asked before every
        create; the catalog is consulted again every `RECHECK` seconds (a request goes out
        only when its cached copy is stale), so a model retired mid-run is seen."""
        if model in self.refused or not self._due(model):
            return self.refused.get(model)
        async with self._lock:
            if model not in self.refused and self._due(model):
                await self._learn(model)
                self._checked[model] = self.client.clock.monotonic()
        return self.refused.get(model)

    def _due(self, model: str) -> bool:
        checked = self._checked.get(model)
        return checked is None or self.client.clock.monotonic() - checked >= RECHECK

    async def _learn(self, model: str) -> None:
        if self.budget.max_credits is not None and not self._priced:
            self._priced = True
            table = await self.client.prices.table(counts=self.counts, pacer=self.pacer)
            if table.prices:
                self.budget.estimator = lambda request: predicted_max(request, table)
        try:
            await self.client.models.check(model, counts=self.counts, pacer=self.pacer)
        except ModelRetiredError as exc:
            self.refused[model] = str(exc)
