"""The batch's credit ledger: reserved on create, charged on completion, released otherwise.

Amounts are `Decimal`s, so the ledger agrees with the server's to the cent.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import attrs

from evolink._models import Task, TaskStatus
from evolink._serialization import Serializable

ZERO = Decimal(0)


@attrs.frozen
class TaskCredits(Serializable):
    """One task's credits: what was held, what was charged, what went back.

    `to_dict()` / `to_json()` / `from_dict()` as every model (amounts as decimal strings).
    """

    reserved: Decimal = ZERO
    charged: Decimal = ZERO
    released: Decimal = ZERO
    settled: bool = False

    @property
    def outstanding(self) -> Decimal:
        """Still held: the reservation until the task ends, nothing after."""
        return ZERO if self.settled else self.reserved


def settle(task: Task, reserved: Decimal, *, images_asked: int | None) -> TaskCredits:
    """What a terminal task cost: the server's `credits_used` where it says, else pro rata.

    Where the server reports `credits_used`, that is the charge, whatever the status (a
    reservation is an estimate: the charge may exceed it). Otherwise a completed task is
    charged for the images it made (a share of the reservation) and the rest is released;
    a failed or cancelled task releases it all.
    """
    used = task.usage.credits_used if task.usage is not None else None
    if used is None:
        if task.status is not TaskStatus.COMPLETED:
            return TaskCredits(reserved=reserved, released=reserved, settled=True)
        made = len(task.results)
        asked = images_asked
        used = reserved if asked is None or made >= asked else reserved * made / asked
    released = max(ZERO, reserved - used)
    return TaskCredits(reserved=reserved, charged=used, released=released, settled=True)


@attrs.define
class CreditLedger:
    """Credits per task and in total, for one batch.

    Attributes:
        reserved: held by every create so far.
        charged: taken for completed tasks.
        released: returned for failed, cancelled or partly made tasks.
    """

    _tasks: dict[str, TaskCredits] = attrs.field(factory=dict)
    _images: dict[str, int] = attrs.field(factory=dict)
    reserved: Decimal = ZERO
    charged: Decimal = ZERO
    released: Decimal = ZERO
    _open: Decimal = ZERO  # reservations of tasks not yet ended

    @property
    def outstanding(self) -> Decimal:
        """Held for tasks still running.

        `reserved == charged + released + outstanding`, except where the server charged a
        task more than its reservation (an estimate): then `charged` says what was taken.
        """
        return self._open

    @property
    def committed(self) -> Decimal:
        """Charged plus still held: what counts against a budget."""
        return self.charged + self.outstanding

    @property
    def tasks(self) -> Mapping[str, TaskCredits]:
        """Each task's credits, by task id."""
        return self._tasks

    def reserve(self, task_id: str, amount: Decimal, *, images: int | None = None) -> None:
        """Record a create's reservation for `images` images (once per task)."""
        if task_id in self._tasks:
            return  # a replayed create: the server held nothing new
        self._tasks[task_id] = TaskCredits(reserved=amount)
        if images is not None:
            self._images[task_id] = images
        self.reserved += amount
        self._open += amount

    def adopt(self, task_id: str, spent: TaskCredits) -> None:
        """Record a task an earlier run of the same journal settled (once per task)."""
        if task_id in self._tasks:
            return
        self._tasks[task_id] = spent
        self.reserved += spent.reserved
        self.charged += spent.charged
        self.released += spent.released

    def settle(self, task: Task) -> TaskCredits:
        """Record a terminal task's charge and release; return its credits."""
        entry = self._tasks.get(task.id, TaskCredits())
        if entry.settled:
            return entry  # a duplicate update
        done = settle(task, entry.reserved, images_asked=self._images.get(task.id))
        self._tasks[task.id] = done
        self.charged += done.charged
        self.released += done.released
        self._open -= entry.reserved
        return done
