"""A batch's credit budget: what a create will reserve, and whether it may start.

Reservations are predicted from a price per image, learned from the answers (the most seen
for that model, size and model-specific fields, since a price may depend on any of them),
hinted by the caller per model, or estimated from the published prices before the first
answer (the upper end of the estimate; the server's reservations then take over). A
create of unknown price is a probe: one at a time.
The budget counts what the ledger has committed plus the predictions of creates not yet
answered, so it holds while answers are in flight.

With `SharedCredits` (`_shared_limits`), the budget is also held across the batches of
one run on several machines: each input holds its credits there, taken atomically before
its create and settled from the server's answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal

import attrs

from evolink._ledger import ZERO, CreditLedger
from evolink._models import GenerationRequest
from evolink._shared_limits import Verdict

__all__ = ["Budget", "Verdict"]


@attrs.define
class Budget:
    """Admission of creates against `max_credits` (None: no budget, everything fits)."""

    max_credits: Decimal | None
    ledger: CreditLedger
    hints: Mapping[str, Decimal] = attrs.field(factory=dict)
    #: The most a request may reserve, from the published prices (None: unknowable).
    estimator: Callable[[GenerationRequest], Decimal | None] | None = None
    _learned: dict[tuple[str, str, str], Decimal] = attrs.field(factory=dict)
    _probes: set[tuple[str, str, str]] = attrs.field(factory=set)  # price-telling creates out
    pending: Decimal = ZERO  # predicted reservations of creates not yet answered
    _uncertain: Decimal = ZERO  # predicted reservations of creates that may have made tasks
    _blind: set[tuple[str, str, str]] = attrs.field(factory=set)  # kinds whose cost is unknowable
    #: Predicted reservations of tasks whose create's answer named none, by task id: held
    #: until the task ends and its charge is known (the ledger counts them as 0 till then).
    _unstated: dict[str, Decimal] = attrs.field(factory=dict)
    _unstated_total: Decimal = ZERO

    def price(self, request: GenerationRequest) -> Decimal | None:
        """Credits per image: the most seen for such requests, else the hint, else the
        published prices' estimate, else None."""
        learned = self._learned.get(_kind(request), self.hints.get(request.model))
        if learned is not None or self.estimator is None:
            return learned
        estimated = self.estimator(request)
        return None if estimated is None else estimated / request.images

    def predict(self, request: GenerationRequest) -> Decimal:
        """The reservation `request` is expected to make (0 while its price is unknown)."""
        return (self.price(request) or ZERO) * request.images

    def verdict(self, request: GenerationRequest, *, can_wait: bool) -> Verdict:
        """May `request` start? `can_wait`: whether running work may still free credits."""
        if self.max_credits is None:
            return Verdict.FITS
        price = self.price(request)
        if price is None and _kind(request) in self._blind:
            return Verdict.NEVER  # what such a create costs cannot be known
        if price is None and self._probes:
            return Verdict.WAIT  # a probe is out: its answer tells what things cost
        committed = self.ledger.committed + self.pending + self._uncertain + self._unstated_total
        predicted = self.predict(request)
        fits = committed + predicted <= self.max_credits
        if fits and (price is not None or committed < self.max_credits):
            return Verdict.FITS
        return Verdict.WAIT if can_wait else Verdict.NEVER

    def start(self, request: GenerationRequest) -> Decimal:
        """Count `request`'s create as sent; return its predicted reservation."""
        if self.price(request) is None:
            self._probes.add(_kind(request))
        predicted = self.predict(request) if self.max_credits is not None else ZERO
        self.pending += predicted
        return predicted

    def answered(self, request: GenerationRequest, predicted: Decimal) -> None:
        """A create was answered (or gave up): its prediction is no longer pending."""
        self.pending -= predicted
        self._probes.discard(_kind(request))

    def uncertain(self, request: GenerationRequest) -> Decimal:
        """A create may have made a task we cannot see: count it as spent, for good;
        return what was held.

        If its price was not known, nothing tells what it cost: creates of its kind can no
        longer be known to fit, and none starts again.
        """
        if self.price(request) is None:
            self._blind.add(_kind(request))
            return ZERO
        held = self.predict(request)
        self._uncertain += held
        return held

    def unheld(self, amount: Decimal) -> None:
        """What `uncertain` held is known not to be spent after all."""
        self._uncertain -= amount

    def unstated(self, task_id: str, request: GenerationRequest) -> None:
        """Task `task_id` was made, its answer naming no reservation: hold the prediction."""
        if self.max_credits is not None and task_id not in self._unstated:
            predicted = self.predict(request)
            self._unstated[task_id] = predicted
            self._unstated_total += predicted

    def ended(self, task_id: str) -> None:
        """Task `task_id` ended: the ledger has its charge, its held prediction goes."""
        self._unstated_total -= self._unstated.pop(task_id, ZERO)

    def learn(self, request: GenerationRequest, reserved: Decimal) -> None:
        """Take the price a create's reservation tells."""
        if reserved > 0:
            kind = _kind(request)
            self._learned[kind] = max(self._learned.get(kind, ZERO), reserved / request.images)


def _kind(request: GenerationRequest) -> tuple[str, str, str]:
    """What a price may depend on: the model, the size, and the model-specific fields."""
    extra = {**(request.params or {}), **(request.extra_body or {})}
    fields = json.dumps(extra, sort_keys=True, default=str) if extra else ""
    return request.model, request.size or "", fields
