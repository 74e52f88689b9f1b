"""`Simulator`: the Evolink API, faithful and fault-injecting, in-process or served."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any

import anyio
import attrs
import httpx

from evolink._clock import SYSTEM_CLOCK, Clock
from evolink.testing._app import SimulatorApp
from evolink.testing._callbacks import CallbackAttempt, CallbackDispatcher
from evolink.testing._catalog import DEFAULT_MODELS, ModelSpec
from evolink.testing._durations import DEFAULT_DURATIONS, Durations, as_durations
from evolink.testing._engine import Engine, SimulatedTask
from evolink.testing._estimates import Estimates
from evolink.testing._faults import Faults
from evolink.testing._ledger import Ledger
from evolink.testing._per_model import EstimatesByModel, as_estimates, as_progress
from evolink.testing._platform import (
    DEFAULT_MAX_FILES,
    FILE_TTL,
    LifecycleChange,
    Platform,
    StoredFile,
)
from evolink.testing._progress_models import LINEAR_PROGRESS, ProgressModel
from evolink.testing._records import RecordedRequest
from evolink.testing._schemas import catalog
from evolink.testing._transport import SimulatorTransport
from evolink.testing._uvicorn import serve_app_in_thread
from evolink.testing._validation import require_jsonschema

#: A key the simulator accepts by default (any `sk-evo-...` key does); not a secret.
TEST_API_KEY = "sk-evo-test-0000000000000000"


def _decimal(value: Decimal | float | str) -> Decimal:
    # Through str, so 2.5 stays 2.5 and 0.1 stays 0.1 (not its binary approximation).
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _clock(value: Clock | None) -> Clock:
    return SYSTEM_CLOCK if value is None else value


def _keys(value: Collection[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


def _models(prices: Mapping[str, Decimal | float | str] | None) -> dict[str, ModelSpec]:
    models = dict(DEFAULT_MODELS)
    for name, price in (prices or {}).items():
        known = models.get(name)
        spec = ModelSpec(name, _decimal(price)) if known is None else known
        models[name] = attrs.evolve(spec, price=_decimal(price))
    return models


def _progress_model(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, ProgressModel):
        raise TypeError(
            f"{attribute.name}: expected a progress model (percent(fraction)): {value!r}"
        )


@attrs.define(kw_only=True, eq=False)
class Simulator:
    """A local Evolink API: tasks that take time, credits, limits and injected faults.

    Every knob is keyword-only; the defaults behave like a healthy service with a large
    balance. Use `transport()` for in-process clients, `app` to serve it, and `requests`,
    `ledger` and `tasks` to check what happened. Time comes from `clock`: hand the client
    the same `VirtualClock` and 100-second tasks finish in no real time.

    Args:
        clock: the clock tasks live on (default: the system clock).
        seed: seeds every random draw (durations, fates, faults); None for a fresh seed.
        api_keys: keys to accept; None accepts any `sk-evo-...` bearer token.
        balance: the account's credits.
        prices: credits by model (per image, per second of video, per audio call); merged
            over the defaults, which price every documented model (a name not known yet
            adds an image model without a schema). A model not listed answers 403
            `model_access_denied`.
        durations: task durations: a distribution (`Uniform`, `Fixed`, `LogNormal`,
            `Pareto`, or anything with `sample(rng)`), a `(low, high)` pair, a number of
            seconds, or a mapping of model to any of those (`ByModel`).
        estimate_error: `estimated_time` is the true duration times `1 ± up to this`,
            rounded to whole seconds (at least 1). Shorthand for
            `estimates=Estimates(error=...)`; ignored when `estimates` is given.
        estimates: how `estimated_time` relates to the truth: biased, noisy, coarse or
            missing (`Estimates`), or a mapping of model to `Estimates`
            (`EstimatesByModel`); None: `Estimates(error=estimate_error)`.
        progress: the shape of the `progress` tasks report: `LinearProgress()` (the
            default), `SteppedProgress(25)`, `NoProgress()`, `PowerProgress(3)`,
            anything with `percent(fraction) -> int`, or a mapping of model to any of
            those (`ProgressByModel`).
        pending_time: a task is `pending` for at most this long (and at most 5% of it).
        max_concurrent_tasks: unfinished tasks a key may have (429 beyond); None: no cap.
        max_requests_per_second: requests a key may make per second (a token bucket;
            429 beyond); None: no cap.
        retry_after: seconds to send in `Retry-After` with 429 and 503; None: no header.
        result_ttl: seconds result images stay downloadable after a task ends (then 410).
        task_ttl: seconds after creation a task can be read (then 404).
        batch_endpoint: serve the undocumented `POST /v1/tasks/batch` (else 404).
        idempotency: honour `Idempotency-Key` (else ignore the header).
        allow_local_callbacks: accept `http://` and internal callback URLs.
        accept_retired: accept the models taken off Evolink's docs (`gpt-4o-image`,
            `gpt-4o-image-beta`, `gpt-image-1`, `gpt-image-1.5-beta` and their aliases);
            False refuses them with 403 `model_access_denied` naming the retirement.
        callback_transport: an httpx transport for callbacks (e.g. to an ASGI app in
            the same process); None sends them over the network.
        faults: what to get wrong, and how often.
        publish_prices: serve every model's price at `GET /v1/catalog/pricing` (else an
            empty price list).
        max_files: files an account may store (the files API's quota).
        file_ttl: seconds an uploaded file lives (72 hours, as documented).
    """

    clock: Clock = attrs.field(default=None, converter=_clock)
    seed: int | None = 0
    api_keys: frozenset[str] | None = attrs.field(default=None, converter=_keys)
    balance: Decimal = attrs.field(default=Decimal(10_000), converter=_decimal)
    prices: dict[str, ModelSpec] = attrs.field(default=None, converter=_models, repr=False)
    durations: Durations = attrs.field(default=DEFAULT_DURATIONS, converter=as_durations)
    estimate_error: float = 0.15
    estimates: Estimates | EstimatesByModel | None = attrs.field(
        default=None, converter=as_estimates
    )
    progress: ProgressModel = attrs.field(
        default=LINEAR_PROGRESS, converter=as_progress, validator=_progress_model
    )
    pending_time: float = 1.0
    max_concurrent_tasks: int | None = None
    max_requests_per_second: float | None = None
    retry_after: float | None = None
    result_ttl: float = 86_400.0
    task_ttl: float = 259_200.0
    batch_endpoint: bool = True
    idempotency: bool = True
    allow_local_callbacks: bool = False
    accept_retired: bool = True
    callback_transport: httpx.AsyncBaseTransport | None = None
    faults: Faults = attrs.field(factory=Faults)
    publish_prices: bool = True
    max_files: int = DEFAULT_MAX_FILES
    file_ttl: float = FILE_TTL
    _engine: Engine = attrs.field(init=False)
    _app: SimulatorApp = attrs.field(init=False)
    _dispatcher: CallbackDispatcher = attrs.field(init=False)
    _exit_stack: contextlib.AsyncExitStack | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        # Said now, not as a 500 on the first create (which a client reads as "uncertain").
        require_jsonschema()
        seed = self.seed
        # Separate streams, so a fault knob never shifts durations or fates.
        rngs = [random.Random(None if seed is None else f"{name}:{seed}") for name in "tfc"]
        self._engine = Engine(
            models=self.prices,
            ledger=Ledger(self.balance),
            durations=self.durations,
            faults=self.faults,
            rng=rngs[0],
            estimates=(
                Estimates(error=self.estimate_error) if self.estimates is None else self.estimates
            ),
            progress=self.progress,
            pending_time=self.pending_time,
            max_concurrent_tasks=self.max_concurrent_tasks,
        )
        self._app = SimulatorApp(
            engine=self._engine,
            clock=self.clock,
            faults=self.faults,
            fault_rng=rngs[1],
            started_at=self.clock.time(),
            lifespan=self.running,
            api_keys=self.api_keys,
            batch_endpoint=self.batch_endpoint,
            idempotency=self.idempotency,
            allow_local_callbacks=self.allow_local_callbacks,
            accept_retired=self.accept_retired,
            retry_after=self.retry_after,
            max_requests_per_second=self.max_requests_per_second,
            result_ttl=self.result_ttl,
            task_ttl=self.task_ttl,
            platform=Platform(
                models=self.prices,
                docs=catalog(),
                accept_retired=self.accept_retired,
                publish_prices=self.publish_prices,
                max_files=self.max_files,
                file_ttl=self.file_ttl,
            ),
        )
        self._dispatcher = CallbackDispatcher(
            engine=self._engine,
            clock=self.clock,
            faults=self.faults,
            rng=rngs[2],
            transport=self.callback_transport,
        )

    # -- ways in --------------------------------------------------------------------------

    @property
    def app(self) -> SimulatorApp:
        """The ASGI application (its lifespan runs the callback dispatcher)."""
        return self._app

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport straight into `app`: no sockets, any base URL."""
        return SimulatorTransport(self._app)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Simulator]:
        """Deliver callbacks while inside (what `async with simulator:` does)."""
        async with anyio.create_task_group() as tg:
            self._engine.on_callback = self._dispatcher.wake
            tg.start_soon(self._dispatcher.run)
            try:
                yield self
            finally:
                self._engine.on_callback = None
                tg.cancel_scope.cancel()

    async def __aenter__(self) -> Simulator:
        if self._exit_stack is not None:
            raise RuntimeError("this Simulator is already running")
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(self.running())
        self._exit_stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._exit_stack = self._exit_stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    @contextlib.contextmanager
    def serve_in_thread(self, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve over HTTP with uvicorn in a background thread; yield the base URL.

        Port 0 picks a free port. Needs the `server` extra (uvicorn). Use the system
        clock: the server's event loop runs in its own thread.
        """
        with serve_app_in_thread(self.app, host=host, port=port) as base_url:
            yield base_url

    # -- what happened --------------------------------------------------------------------

    @property
    def requests(self) -> Sequence[RecordedRequest]:
        """Every request answered, in order (keys redacted)."""
        return self._app.records

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        """How many requests matched `method` (any if None) and a path prefix."""
        return sum(
            1
            for record in self._app.records
            if (method is None or record.method == method) and record.path.startswith(path_prefix)
        )

    @property
    def ledger(self) -> Ledger:
        """The credit ledger, settled up to the clock's present."""
        with self._engine.lock:
            self._engine.settle(self.clock.time())
        return self._engine.ledger

    @property
    def tasks(self) -> Mapping[str, SimulatedTask]:
        """Every task ever made, by id, in creation order: the truth for oracles."""
        return self._engine.tasks

    def task(self, task_id: str) -> SimulatedTask:
        """One task's truth (KeyError if there is none)."""
        return self._engine.tasks[task_id]

    @property
    def callbacks(self) -> Sequence[CallbackAttempt]:
        """Every callback POST attempted, in order."""
        return self._dispatcher.attempts

    @property
    def dropped_callbacks(self) -> Sequence[str]:
        """Ids of tasks whose callback was dropped on purpose."""
        return self._dispatcher.dropped

    def set_lifecycle(
        self,
        model: str,
        lifecycle: str,
        *,
        deprecates_at: str | None = None,
        retires_at: str | None = None,
        replacement: str | None = None,
    ) -> None:
        """Change what the catalog says of `model` from now on (`"deprecated"`, `"retired"`,
        ...); a retired model's creates are refused (403 `model_access_denied`)."""
        platform = self._app.platform
        assert platform is not None  # noqa: S101 - always made in __attrs_post_init__
        with self._engine.lock:
            platform.set_lifecycle(
                model, LifecycleChange(lifecycle, deprecates_at, retires_at, replacement)
            )

    @property
    def files(self) -> Mapping[str, StoredFile]:
        """Every uploaded file still stored, by id."""
        platform = self._app.platform
        return {} if platform is None else platform.files

    def record(self) -> dict[str, Any]:
        """What happened, as plain JSON values (what `serve(record=...)` writes).

        Keys: `requests` (each `RecordedRequest`: method, path, status, time,
        idempotency_key, replayed, fault, and the body's prompt), `ledger` (each entry:
        task_id, kind, amount as a string, time), `committed` (`[time, credits]` pairs from
        `Ledger.committed_over_time`), `peak_committed`, `charged`, and `tasks` (each
        task's id, prompt, final status and images).
        """
        ledger = self.ledger
        timeline = ledger.committed_over_time()
        return {
            "requests": [
                {
                    "method": r.method,
                    "path": r.path,
                    "status": r.status,
                    "time": r.time,
                    "idempotency_key": r.idempotency_key,
                    "replayed": r.replayed,
                    "fault": r.fault,
                    "prompt": r.body.get("prompt") if isinstance(r.body, dict) else None,
                }
                for r in self.requests
            ],
            "ledger": [
                {
                    "task_id": e.task_id,
                    "kind": e.kind.value,
                    "amount": str(e.amount),
                    "time": e.time,
                }
                for e in ledger.entries
            ],
            "committed": [[time, str(held)] for time, held in timeline],
            "peak_committed": str(max((c for _, c in timeline), default=Decimal(0))),
            "charged": str(ledger.charged),
            "tasks": [
                {
                    "id": t.id,
                    "prompt": t.prompt,
                    "final_status": str(t.final_status.value),
                    "images": t.images,
                }
                for t in self.tasks.values()
            ],
        }

    def unfinished(self) -> int:
        """Tasks not ended yet, at the clock's present."""
        now = self.clock.time()
        return sum(1 for task in self._engine.tasks.values() if not task.is_finished(now))
