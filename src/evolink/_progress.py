"""What a progress bar or a web page needs to know about a running batch."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import attrs

from evolink._serialization import Serializable


@attrs.frozen
class BatchProgress(Serializable):
    """A snapshot of a batch; `to_json()` is ready for a web page (credits as decimal strings).

    Attributes:
        total: inputs the batch will get, when known (a list's length), else None.
        submitted: inputs handed to the batch so far.
        creating: creates sent and not yet answered.
        in_flight: tasks created and not yet ended.
        completed / failed / cancelled / rejected / skipped / uncertain / abandoned:
            inputs that ended each way.
        reserved / charged / released: credit totals so far.
        max_credits: the budget, if any.
        elapsed: seconds since the batch started.
        eta: seconds until the last known input is likely done, when it can be guessed.
    """

    total: int | None
    submitted: int
    creating: int
    in_flight: int
    completed: int
    failed: int
    cancelled: int
    rejected: int
    skipped: int
    uncertain: int
    abandoned: int
    reserved: Decimal
    charged: Decimal
    released: Decimal
    max_credits: Decimal | None
    elapsed: float
    eta: float | None

    @property
    def finished(self) -> int:
        """Inputs that have their outcome."""
        return (
            self.completed
            + self.failed
            + self.cancelled
            + self.rejected
            + self.skipped
            + self.uncertain
            + self.abandoned
        )

    @property
    def waiting(self) -> int | None:
        """Inputs not yet handed to the batch, when the total is known."""
        return None if self.total is None else max(0, self.total - self.submitted)


ProgressHook = Callable[[BatchProgress], None]
