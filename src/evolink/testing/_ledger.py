"""The simulator's credit ledger: every reservation, charge and release, exactly.

Amounts are `decimal.Decimal` (prices like 2.5 credits add up to the cent, never drift).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from decimal import Decimal

import attrs


class EntryKind(enum.Enum):
    """What a ledger entry did."""

    RESERVE = "reserve"
    CHARGE = "charge"
    RELEASE = "release"


@attrs.frozen
class LedgerEntry:
    """One movement of credits for one task.

    Attributes:
        task_id: the task.
        kind: reserve (at create), charge (images made) or release (the rest).
        amount: credits, >= 0.
        time: simulator clock time; settlements carry the task's end time, whenever
            the simulator noticed it.
        key: the API key that made the task, redacted.
    """

    task_id: str
    kind: EntryKind
    amount: Decimal
    time: float
    key: str


@attrs.define
class Ledger:
    """Credits held, spent and given back.

    `balance` is what the account holds (the initial balance less charges);
    `available` is what a new reservation may use (balance less outstanding reservations).
    """

    initial_balance: Decimal
    _entries: list[LedgerEntry] = attrs.field(factory=list)
    _totals: dict[EntryKind, Decimal] = attrs.field(
        factory=lambda: dict.fromkeys(EntryKind, Decimal(0))
    )
    _charged_by_key: dict[str, Decimal] = attrs.field(factory=dict)

    @property
    def entries(self) -> Sequence[LedgerEntry]:
        """Every entry, in time order."""
        return self._entries

    @property
    def reserved(self) -> Decimal:
        """Credits ever reserved."""
        return self._totals[EntryKind.RESERVE]

    @property
    def charged(self) -> Decimal:
        """Credits spent on images made."""
        return self._totals[EntryKind.CHARGE]

    @property
    def released(self) -> Decimal:
        """Reserved credits given back (failures, cancellations, images not made)."""
        return self._totals[EntryKind.RELEASE]

    @property
    def outstanding(self) -> Decimal:
        """Credits reserved by tasks not settled yet."""
        return self.reserved - self.charged - self.released

    @property
    def balance(self) -> Decimal:
        """The account's credits: the initial balance less charges."""
        return self.initial_balance - self.charged

    @property
    def available(self) -> Decimal:
        """What a new reservation may use: the balance less outstanding reservations."""
        return self.balance - self.outstanding

    def charged_by(self, key: str) -> Decimal:
        """Credits charged to tasks of one (redacted) key."""
        return self._charged_by_key.get(key, Decimal(0))

    def committed_over_time(self) -> list[tuple[float, Decimal]]:
        """After each entry, in order: its time and the credits committed then (reserved
        and not released: held by running tasks, or charged).

        A budget (`max_credits`) holds at every moment if no value here exceeds it.
        Settlements are recorded when the simulator notices a task's end, so the values
        never undercount what was held at that moment.
        """
        committed = Decimal(0)
        timeline = []
        for entry in self._entries:
            if entry.kind is EntryKind.RESERVE:
                committed += entry.amount
            elif entry.kind is EntryKind.RELEASE:
                committed -= entry.amount
            timeline.append((entry.time, committed))
        return timeline

    def for_task(self, task_id: str) -> list[LedgerEntry]:
        """The entries of one task, in order."""
        return [entry for entry in self._entries if entry.task_id == task_id]

    def record(self, entry: LedgerEntry) -> None:
        """Add an entry (the simulator's business; tests only read)."""
        if entry.amount < 0:
            raise ValueError("ledger amounts are never negative")
        self._entries.append(entry)
        self._totals[entry.kind] += entry.amount
        if entry.kind is EntryKind.CHARGE:
            self._charged_by_key[entry.key] = self.charged_by(entry.key) + entry.amount
