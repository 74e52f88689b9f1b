"""How each input of a batch ended, and the batch's report."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal

import attrs

from evolink._ledger import ZERO, TaskCredits
from evolink._models import GenerationRequest, Task
from evolink._serialization import Serializable


class OutcomeKind(str, enum.Enum):
    """The one way an input ended."""

    #: The task completed; its images are in `task.results`.
    COMPLETED = "completed"
    #: The task failed (see `error_code`, `retryable`), or the server refused the create.
    FAILED = "failed"
    #: The task was cancelled.
    CANCELLED = "cancelled"
    #: Invalid input, caught before any request: no credit spent.
    REJECTED = "rejected"
    #: Never started: the budget, a 402, or the batch stopping first (see `reason`).
    SKIPPED = "skipped"
    #: A create whose result is unknown after safe retries (see `idempotency_key`).
    UNCERTAIN = "uncertain"
    #: Created, but the batch stopped watching it before it ended (see `task`).
    ABANDONED = "abandoned"

    def __str__(self) -> str:
        return self.value


class SkipReason(str, enum.Enum):
    """Why an input was never started."""

    BUDGET = "budget"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    UNAUTHORIZED = "unauthorized"
    STOPPED = "stopped"
    #: The server refused the input's model (retired, unknown, or not for this key).
    MODEL_REFUSED = "model_refused"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Outcome(Serializable):
    """How one input of a batch ended.

    Attributes:
        index: the input's position (0-based) in the order it was given.
        request: the request, as validated (None if it could not even be read).
        kind: how it ended.
        task: the last task read, where one was created.
        error_code: the task's or the server's error code, or the validation rule broken.
        error_message: a human explanation of a failure.
        retryable: whether the same request may succeed as a new task.
        reason: why a skipped input was skipped.
        idempotency_key: the key of the last create sent for it.
        attempts: tasks created for it (more than 1 with `retry_failed`).
        credits: the credits of its last task.
        elapsed: seconds from its create's answer to its end.
        tag: what the caller passed with it (`submit(..., tag=...)`), as it was.
        resumed: taken from the journal of an earlier run (`batch(journal=...)`): it
            ended then, and nothing was sent for it now.
        possible_duplicate: its create was resent after an attempt whose fate was
            unknown, and answered with a new task before the server had shown that it
            honours idempotency keys: if it does not, that attempt made a second task,
            which this batch cannot see (the budget holds its predicted price). Kept by
            the journal, so a resumed run reports it too. Cleared in the batch's report
            (and journal) if the server shows it replays keys before the batch ends; an
            outcome handed out earlier (`as_completed`, `on_outcome`) keeps it.
    """

    index: int
    request: GenerationRequest | None
    kind: OutcomeKind
    task: Task | None = None
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool = False
    reason: SkipReason | None = None
    idempotency_key: str | None = None
    attempts: int = 0
    credits: TaskCredits = attrs.field(factory=TaskCredits)
    elapsed: float | None = None
    tag: object = None
    resumed: bool = False
    possible_duplicate: bool = False

    def __repr__(self) -> str:
        # The task and the request are a screenful each: name them, do not print them.
        parts = [f"index={self.index}", f"kind={self.kind.value}"]
        if self.task is not None:
            parts.append(f"task_id={self.task.id!r}")
        if self.error_code is not None:
            parts.append(f"error_code={self.error_code!r}")
        if self.reason is not None:
            parts.append(f"reason={self.reason.value}")
        if self.credits.charged:
            parts.append(f"charged={self.credits.charged}")
        return f"Outcome({', '.join(parts)})"

    @property
    def results(self) -> tuple[str, ...]:
        """The image URLs, once completed."""
        return self.task.results if self.task is not None else ()

    @property
    def task_id(self) -> str | None:
        """The id of the last task created for this input."""
        return self.task.id if self.task is not None else None


@attrs.frozen
class BatchReport(Serializable):
    """Every input's outcome, in input order, with counts, credits and timings.

    Attributes:
        outcomes: one per input, `outcomes[i].index == i`.
        reserved / charged / released: the batch's credit totals.
        skipped_for_budget: inputs not started because of `max_credits`.
        stopped_reason: why submissions stopped early: the refusal, as its status and
            the server's code (`"402 insufficient_quota"`, `"401 invalid_api_key"`), or
            `"stopped by ..."` (an error in the caller's block, a hook); or why a model's
            inputs were skipped (`"model refused: ..."`); or None. Each input it kept from
            starting says why in its outcome's `reason` (`SkipReason.INSUFFICIENT_CREDITS`).
        resubmitted: extra tasks created by `retry_failed`.
        elapsed: seconds from the batch's start to its end.
        requests: HTTP requests the batch sent (creates and reads).
    """

    outcomes: Sequence[Outcome]
    reserved: Decimal = ZERO
    charged: Decimal = ZERO
    released: Decimal = ZERO
    stopped_reason: str | None = None
    resubmitted: int = 0
    elapsed: float = 0.0
    requests: int = 0

    def __repr__(self) -> str:
        # A report may hold thousands of outcomes: show what they add up to.
        counts = "".join(f", {kind.value}={n}" for kind, n in self.counts.items() if n)
        return (
            f"BatchReport(outcomes={len(self.outcomes)}{counts}, reserved={self.reserved}, "
            f"charged={self.charged}, released={self.released}, elapsed={self.elapsed:.1f}s)"
        )

    @property
    def counts(self) -> Mapping[OutcomeKind, int]:
        """How many inputs ended each way (every kind present, zeros included)."""
        seen = Counter(o.kind for o in self.outcomes)
        return {kind: seen.get(kind, 0) for kind in OutcomeKind}

    @property
    def completed(self) -> list[Outcome]:
        """The completed outcomes, in input order."""
        return [o for o in self.outcomes if o.kind is OutcomeKind.COMPLETED]

    @property
    def skipped_for_budget(self) -> int:
        """Inputs not started because they could take the batch over `max_credits`."""
        return sum(1 for o in self.outcomes if o.reason is SkipReason.BUDGET)

    @property
    def ok(self) -> bool:
        """Whether every input completed."""
        return all(o.kind is OutcomeKind.COMPLETED for o in self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)
