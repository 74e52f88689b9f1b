"""How a batch runs: its options, the hooks it calls, and the keywords that set them."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypedDict

import attrs

from evolink._errors import ValidationError
from evolink._journal import DEFAULT_RUN, JournalStore
from evolink._models import GenerationRequest, MediaKind, Task
from evolink._outcomes import Outcome
from evolink._progress import ProgressHook
from evolink._shared_limits import SharedBrake, SharedCredits

CreateHook = Callable[[int, GenerationRequest, str], None]
CreatedHook = Callable[[int, Task], None]
OutcomeHook = Callable[[Outcome], None]


class BatchKwargs(TypedDict, total=False):
    """The keyword options of `client.batch(...)` and `generate_many(...)` (see BatchOptions)."""

    max_in_flight: int
    max_connections: int | None
    max_credits: float | Decimal | str | None
    retry_failed: int
    on_progress: ProgressHook | None
    on_create: CreateHook | None
    on_created: CreatedHook | None
    on_outcome: OutcomeHook | None
    batch_reads: bool
    model: str | None
    params: Mapping[str, Any]
    kind: MediaKind
    size: str | None
    n: int | None
    callback_url: str | None
    price_hints: Mapping[str, float | Decimal | str]
    total: int | None
    task_deadline: float | None
    journal: JournalStore | str | os.PathLike[str] | None
    run: str
    resume_failed: bool
    shared_credits: SharedCredits | None
    shared_brake: SharedBrake | None


def _to_prices(value: Mapping[str, float | Decimal | str]) -> dict[str, Decimal]:
    return {model: Decimal(str(price)) for model, price in value.items()}


def _to_decimal(value: float | Decimal | str | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@attrs.frozen(kw_only=True)
class BatchOptions:
    """How a batch runs; see `AsyncEvolink.batch`.

    Attributes:
        max_in_flight: tasks created and not yet ended, at most (adapts down on 429).
        max_connections: HTTP requests the batch has in flight at once (default: the
            client's `max_connections`).
        max_credits: the budget: no task is started whose reservation could exceed it.
        retry_failed: resubmit a task that failed with a retryable code, up to this many
            times, as a new task.
        on_progress: called with a `BatchProgress` on every change.
        batch_reads: read many tasks per request where the server allows it.
        model / params / size / n: applied to inputs given as plain prompt strings (the
            model is required but for images, whose default is `gpt-image-2`; `params` are
            the model's own parameters, as `generate` takes them).
        kind: what the batch makes (`image`, `video`, `audio`): set by `client.videos.batch`
            and the like; it names the create endpoint.
        callback_url: where the server should POST each task when it ends (applied to every
            input without one of its own); feed those callbacks to `feed` to hear sooner.
        price_hints: credits per image, by model, to budget with before the first answer
            tells. Without one, the first create of a model whose price is unknown goes out
            alone and may take the batch over `max_credits` by up to its own reservation.
        total: how many inputs to expect (for progress); set from a list's length.
        on_create: called with (index, request, idempotency_key) just before each create is
            sent, so a journal can record it first (a crash then leaves the key to reconcile).
        on_created: called with (index, task) when a create answers.
        on_outcome: called with each input's `Outcome` as it ends.
        task_deadline: seconds a task may run before the batch stops waiting for it (its
            outcome is then `abandoned`, code `task_deadline`: it may still end on the
            server). Default: by what the task makes, 1 hour for images and audio, 4 hours
            for videos and anything else.
        journal: where the run is recorded, to resume it: a path (an SQLite file, made if
            missing) or any `JournalStore`. Each create is written before it is sent; a
            second batch on the same journal and `run` resumes it (see `evolink._resume`):
            inputs that ended are reported from the journal (`Outcome.resumed`), known
            tasks are read again, creates whose answer was lost are resent under their
            key, and only the rest are created.
        run: the run's name in the journal (one journal holds many runs).
        resume_failed: on resume, create again the inputs whose task failed (a new task).
        shared_credits: the run's credits, shared with its other batches (workers on other
            machines): each create holds its credits there first, so `max_credits` holds
            across all of them (`evolink worker` passes a PostgreSQL one).
        shared_brake: the run's 429 brake, shared with its other batches: a 429 any of
            them meets slows them all.
    """

    max_in_flight: int = 32
    max_connections: int | None = None
    max_credits: Decimal | None = attrs.field(default=None, converter=_to_decimal)
    retry_failed: int = 0
    on_progress: ProgressHook | None = None
    on_create: CreateHook | None = None
    on_created: CreatedHook | None = None
    on_outcome: OutcomeHook | None = None
    batch_reads: bool = True
    model: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)
    kind: MediaKind = "image"
    size: str | None = None
    n: int | None = None
    callback_url: str | None = None
    price_hints: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_to_prices)
    total: int | None = None
    task_deadline: float | None = None
    journal: JournalStore | str | os.PathLike[str] | None = None
    run: str = DEFAULT_RUN
    resume_failed: bool = False
    shared_credits: SharedCredits | None = None
    shared_brake: SharedBrake | None = None

    def __attrs_post_init__(self) -> None:
        if self.task_deadline is not None and not self.task_deadline > 0:
            raise ValidationError("task_deadline", "positive", "must be more than 0 seconds")
        if self.max_in_flight < 1:
            raise ValidationError("max_in_flight", "positive", "must be at least 1")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValidationError("max_connections", "positive", "must be at least 1")
        if self.max_credits is not None and self.max_credits < 0:
            raise ValidationError("max_credits", "not_negative", "must be 0 or more")
        if not self.run:
            raise ValidationError("run", "not_empty", "name the run")
        if self.retry_failed < 0:
            raise ValidationError("retry_failed", "not_negative", "must be 0 or more")
