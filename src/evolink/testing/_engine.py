"""The simulated service's state: tasks whose life is a function of the clock, and credits.

No loop runs per task: a task's status and progress are computed from its creation time,
its duration and the clock's time on every read. Settlement (charge or release) happens
lazily but deterministically: whenever time is observed, every task whose end has passed
is settled, in end-time order, with its end time on the ledger.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import json
import random
import string
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from evolink.testing._catalog import TASK_ERROR_MESSAGES, ModelSpec
from evolink.testing._durations import (
    DEFAULT_DURATIONS,
    DEFAULT_DURATIONS_BY_KIND,
    Durations,
    durations_for,
)
from evolink.testing._estimates import Estimates
from evolink.testing._faults import Faults
from evolink.testing._ledger import EntryKind, Ledger, LedgerEntry
from evolink.testing._media import Kind
from evolink.testing._per_model import EstimatesByModel, estimates_for, progress_for
from evolink.testing._progress_models import LINEAR_PROGRESS, ProgressModel
from evolink.testing._validation import Generation

#: A task is `pending` for this fraction of its duration (at most `pending_time` seconds).
PENDING_FRACTION = 0.05
_ID_ALPHABET = string.ascii_lowercase + string.digits


class FinalStatus(enum.Enum):
    """How a simulated task ends."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@attrs.frozen
class SimulatedTask:
    """The truth about one task, fixed when it is created.

    Attributes:
        id: `task-unified-<created>-<8 chars>`.
        key: the creating API key, redacted.
        created: exact simulator time of creation.
        duration: seconds from creation to the task's end, whatever the end.
        full_duration: seconds a full generation takes (progress runs at 100 / this);
            equals `duration` for completed tasks, more for failed or cancelled ones.
        final_status: completed, failed or cancelled.
        images: images made (`n`, fewer for a partial completion, 0 if not completed).
        error_code: the task error of a failed task.
        estimated_time: what the API reports (seconds, near `full_duration` unless
            the `Estimates` knob says otherwise), or None when it reports none.
        price: credits per image.
        origin: `scheme://host` the create came to (result URLs in callbacks use it).
        progress_model: the shape of the progress it reports (`LinearProgress` by default).
    """

    id: str
    key: str
    model: str
    prompt: str
    size: str | None
    n: int
    created: float
    duration: float
    full_duration: float
    pending_time: float
    final_status: FinalStatus
    images: int
    error_code: str | None
    estimated_time: int | None
    price: Decimal
    callback_url: str | None
    origin: str
    idempotency_key: str | None = None
    progress_model: ProgressModel = attrs.field(default=LINEAR_PROGRESS, repr=False)
    kind: Kind = Kind.IMAGE

    @property
    def ends_at(self) -> float:
        """Simulator time at which the task ends."""
        return self.created + self.duration

    @property
    def credits_reserved(self) -> Decimal:
        """Credits held at creation (price x n)."""
        return self.price * self.n

    @property
    def credits_charged(self) -> Decimal:
        """What the task costs once settled (price x images made)."""
        return self.price * self.images

    def is_finished(self, now: float) -> bool:
        """Whether the task has ended by `now`."""
        return now >= self.ends_at

    def status_at(self, now: float) -> str:
        """The API status at `now`."""
        if now >= self.ends_at:
            return self.final_status.value
        if now - self.created < self.pending_time:
            return "pending"
        return "processing"

    def progress_at(self, now: float) -> int:
        """Whole percent done at `now`, by the task's progress model (0-99 while it runs)."""
        if now >= self.ends_at:
            if self.final_status is FinalStatus.COMPLETED:
                return 100
            now = self.ends_at
        elapsed = now - self.created
        if elapsed < self.pending_time:
            return 0
        fraction = min(1.0, elapsed / self.full_duration)
        return max(0, min(99, self.progress_model.percent(fraction)))


class InsufficientCredits(Exception):  # noqa: N818 - a refusal, mapped to 402 by the app
    """The balance less outstanding reservations cannot cover a reservation."""


class TooManyTasks(Exception):  # noqa: N818 - a refusal, mapped to 429 by the app
    """The key has `max_concurrent_tasks` unfinished tasks."""


@attrs.frozen
class Remembered:
    """An idempotent create, kept to replay it."""

    fingerprint: str
    task_id: str
    response: bytes


def fingerprint(body: Any) -> str:
    """A canonical form of a JSON body, to tell "the same body" from "another body"."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@attrs.define
class Engine:
    """Tasks, credits and idempotency records; the HTTP layer sits on top.

    Hold `lock` around anything that reads or changes state: a served simulator is
    driven from uvicorn's thread while tests read it from theirs.
    """

    models: Mapping[str, ModelSpec]
    ledger: Ledger
    durations: Durations
    faults: Faults
    rng: random.Random
    estimates: Estimates | EstimatesByModel = attrs.field(factory=Estimates)
    progress: ProgressModel = LINEAR_PROGRESS
    pending_time: float = 1.0
    max_concurrent_tasks: int | None = None
    #: Called when a task with a callback URL is made (wakes the callback dispatcher).
    on_callback: Callable[[], None] | None = None
    lock: threading.RLock = attrs.field(factory=threading.RLock)
    tasks: dict[str, SimulatedTask] = attrs.field(factory=dict)
    _unsettled: list[tuple[float, int, str]] = attrs.field(factory=list)
    _unfinished_by_key: dict[str, set[str]] = attrs.field(factory=dict)
    _callbacks: list[tuple[float, int, str]] = attrs.field(factory=list)
    _remembered: dict[tuple[str, str], Remembered] = attrs.field(factory=dict)
    _seq: itertools.count[int] = attrs.field(factory=itertools.count)

    # -- time -----------------------------------------------------------------------------

    def settle(self, now: float) -> None:
        """Charge or release every task that ended by `now`, in end-time order."""
        while self._unsettled and self._unsettled[0][0] <= now:
            ends_at, _, task_id = heapq.heappop(self._unsettled)
            task = self.tasks[task_id]
            self._unfinished_by_key[task.key].discard(task_id)
            charge = task.credits_charged
            if charge:
                self.ledger.record(
                    LedgerEntry(task.id, EntryKind.CHARGE, charge, ends_at, task.key)
                )
            rest = task.credits_reserved - charge
            if rest:
                self.ledger.record(LedgerEntry(task.id, EntryKind.RELEASE, rest, ends_at, task.key))

    def unfinished(self, key: str) -> int:
        """Unfinished tasks of a (redacted) key, as of the last settlement."""
        return len(self._unfinished_by_key.get(key, ()))

    # -- create ---------------------------------------------------------------------------

    def create(
        self,
        generation: Generation,
        *,
        key: str,
        now: float,
        origin: str,
        idempotency_key: str | None = None,
    ) -> SimulatedTask:
        """Make a task and reserve its credits, or raise `TooManyTasks`/`InsufficientCredits`."""
        self.settle(now)
        if self.max_concurrent_tasks is not None and self.unfinished(key) >= (
            self.max_concurrent_tasks
        ):
            raise TooManyTasks
        spec = self.models[generation.model]
        if generation.price is not None:  # a per-task price: videos by the second, aliases
            spec = attrs.evolve(spec, price=generation.price)
        reserve = spec.price * generation.n
        if reserve > self.ledger.available:
            raise InsufficientCredits
        task = self._draw(generation, spec, key=key, now=now, origin=origin)
        task = attrs.evolve(task, idempotency_key=idempotency_key, kind=generation.kind)
        self.tasks[task.id] = task
        self.ledger.record(LedgerEntry(task.id, EntryKind.RESERVE, reserve, now, key))
        seq = next(self._seq)
        heapq.heappush(self._unsettled, (task.ends_at, seq, task.id))
        self._unfinished_by_key.setdefault(key, set()).add(task.id)
        if task.callback_url is not None:
            heapq.heappush(self._callbacks, (task.ends_at, seq, task.id))
            if self.on_callback is not None:
                self.on_callback()
        return task

    def _draw(
        self, generation: Generation, spec: ModelSpec, *, key: str, now: float, origin: str
    ) -> SimulatedTask:
        rng = self.rng
        # Always the same number of draws per task, so a knob changes fates, not durations.
        asked = (generation.asked,) if generation.asked else ()
        durations = self.durations
        if durations is DEFAULT_DURATIONS:  # none given: each kind takes its own time
            durations = DEFAULT_DURATIONS_BY_KIND.get(generation.kind.value, durations)
        full = max(0.01, durations_for(durations, generation.model, *asked).sample(rng))
        estimate_draw = rng.random()
        fate_draw, code_draw, end_draw, images_draw = (rng.random() for _ in range(4))
        suffix = "".join(rng.choice(_ID_ALPHABET) for _ in range(8))
        faults = self.faults
        status = FinalStatus.COMPLETED
        duration, images, code = full, generation.n, None
        if fate_draw < faults.task_failure:
            status, images = FinalStatus.FAILED, 0
            code = faults.failure_codes[int(code_draw * len(faults.failure_codes))]
        elif fate_draw < faults.task_failure + faults.cancellation:
            status, images = FinalStatus.CANCELLED, 0
        elif generation.n > 1 and images_draw < faults.partial_completion:
            images = 1 + int(end_draw * (generation.n - 1))
        if status is not FinalStatus.COMPLETED:
            # It ends part-way through what a full generation would take.
            duration = full * (0.1 + 0.9 * end_draw)
        task_id = f"task-unified-{int(now)}-{suffix}"
        while task_id in self.tasks:  # pragma: no cover - 36**8 ids a second
            task_id += rng.choice(_ID_ALPHABET)
        return SimulatedTask(
            id=task_id,
            key=key,
            model=generation.model,
            prompt=generation.prompt,
            size=generation.size,
            n=generation.n,
            created=now,
            duration=duration,
            full_duration=full,
            pending_time=min(self.pending_time, PENDING_FRACTION * full),
            final_status=status,
            images=images,
            error_code=code,
            estimated_time=estimates_for(self.estimates, generation.model, *asked).estimate(
                full, estimate_draw
            ),
            price=spec.price,
            callback_url=generation.callback_url,
            origin=origin,
            progress_model=progress_for(self.progress, generation.model, *asked),
        )

    # -- idempotency ----------------------------------------------------------------------

    def remembered(self, key: str, idempotency_key: str) -> Remembered | None:
        return self._remembered.get((key, idempotency_key))

    def remember(self, key: str, idempotency_key: str, record: Remembered) -> None:
        self._remembered[key, idempotency_key] = record

    # -- callbacks ------------------------------------------------------------------------

    def next_callback_at(self) -> float | None:
        """When the next task with a callback URL ends."""
        return self._callbacks[0][0] if self._callbacks else None

    def ended_with_callbacks(self, now: float) -> list[SimulatedTask]:
        """Tasks with a callback URL that ended by `now`, taken off the queue."""
        self.settle(now)
        ended = []
        while self._callbacks and self._callbacks[0][0] <= now:
            _, _, task_id = heapq.heappop(self._callbacks)
            ended.append(self.tasks[task_id])
        return ended


def task_view(task: SimulatedTask, now: float, origin: str) -> dict[str, Any]:
    """The task as `GET /v1/tasks/{id}` describes it at `now`."""
    status = task.status_at(now)
    unfinished = not task.is_finished(now)
    task_info: dict[str, Any] = {"can_cancel": unfinished}
    if unfinished and task.estimated_time is not None:
        task_info["estimated_time"] = task.estimated_time
    kind = task.kind
    usage: dict[str, Any] = {
        "billing_rule": kind.billing_rule,
        "credits_reserved": float(task.credits_reserved),
        "user_group": "default",
    }
    view: dict[str, Any] = {
        "created": int(task.created),
        "id": task.id,
        "model": task.model,
        "object": kind.task_object,
        "progress": task.progress_at(now),
        "status": status,
        "task_info": task_info,
        "type": kind.value,
        "usage": usage,
    }
    if unfinished:
        return view
    # Undocumented but seen: what the task really cost.
    usage["credits_used"] = float(task.credits_charged)
    if task.final_status is FinalStatus.COMPLETED:
        view["results"] = [
            f"{origin}/results/{task.id}/{index}.{kind.extension}" for index in range(task.images)
        ]
        view.update(kind.result_data(view["results"]))
    elif task.final_status is FinalStatus.FAILED:
        code = task.error_code or "unknown_error"
        view["error"] = {
            "code": code,
            "message": TASK_ERROR_MESSAGES.get(code, "The task failed."),
            "type": "task_error",
        }
    return view
