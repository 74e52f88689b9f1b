"""Limits a batch may share with the other batches of its run (workers on other machines).

Protocols only: the batch asks its run's credits before each create (`SharedCredits`)
and its 429 brake before each request (`SharedBrake`); without them, as for every user
who names no database, the batch's limits are its own (`_budget`, `_pacer`).
`_limits_postgres` implements both in PostgreSQL.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Protocol


class Verdict(enum.Enum):
    """Whether a create may start now."""

    FITS = "fits"
    #: Not now: a probe is out, or running tasks may free credits.
    WAIT = "wait"
    #: Not while nothing runs: it cannot fit.
    NEVER = "never"


class SharedCredits(Protocol):
    """A run's `max_credits`, held across every batch (worker) of the run.

    Each input of the run (by its index in the run) holds credits: taken before its create
    (`reserve`), then set to what its task reserved and, once it ends, to what it was
    charged (`settle`). An input holds at most once, whichever worker sends it.
    """

    async def reserve(self, index: int, amount: Decimal) -> Verdict:
        """Hold `amount` for input `index` if the run's total stays within the budget.

        FITS if held (or already held); WAIT if not now, while other holds may shrink;
        NEVER if nothing is held anywhere and it still does not fit. An `amount` of 0 is a
        create of a price not yet known (a probe): one at a time in the whole run.
        """
        ...

    def settle(self, index: int, amount: Decimal, *, final: bool) -> None:
        """Queue: input `index` now holds `amount` (`final`: its task ended)."""
        ...

    def keep(self, index: int) -> None:
        """Queue: input `index`'s create may have made a task nobody can see; its hold
        stays as it is, for good, and no other create waits for it to shrink."""
        ...

    async def run(self) -> None:
        """Write the queued settlements, in order, until cancelled."""
        ...

    async def drain(self) -> None:
        """Write what is still queued (when the batch ends)."""
        ...


class SharedBrake(Protocol):
    """A brake shared by several batches: published on a 429, consulted before requests."""

    def rate_limited(self, delay: float) -> None:
        """Publish: hold every batch for `delay` seconds from now (never shortening it)."""
        ...

    async def remaining(self) -> float:
        """Seconds the shared brake still holds (0 when off); publishes what is pending."""
        ...
