"""Serving a `Simulator` over HTTP with uvicorn (an optional dependency).

`SERVE_OPTIONS` is the one definition of the served simulator's command-line options:
`python -m evolink.testing` (argparse) and `evolink simulator` (click) are both built from
it, so neither can lack a switch the other has.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from evolink.testing._clock import ScaledClock
from evolink.testing._estimates import Estimates
from evolink.testing._faults import Faults
from evolink.testing._progress_models import (
    LinearProgress,
    NoProgress,
    PowerProgress,
    ProgressModel,
    ShareProgress,
    SteppedProgress,
)
from evolink.testing._simulator import Simulator
from evolink.testing._uvicorn import serve_app_in_thread, uvicorn_module

#: `--progress NAME`: the progress models a command line can name.
PROGRESS_MODELS: Mapping[str, ProgressModel] = {
    "linear": LinearProgress(),
    "steps": SteppedProgress(25),
    "none": NoProgress(),
    "slow-then-fast": PowerProgress(3),
    "fast-then-slow": PowerProgress(1 / 3),
    "half-told": ShareProgress(0.5),
}
#: `--estimates NAME`: the kinds of `estimated_time` a command line can name.
ESTIMATES: Mapping[str, Estimates] = {
    "honest": Estimates(),
    "double": Estimates(factor=2.0),
    "missing": Estimates(missing=True),
    "noisy": Estimates(noise=0.5),
}


@attrs.frozen(kw_only=True)
class ServeOption:
    """One command-line option of the served simulator.

    Attributes:
        name: the option's value name (`--max-concurrent-tasks` is `max_concurrent_tasks`).
        kind: the value's type; None for an on/off switch.
        nargs: values it takes (2 for `--durations LOW HIGH`).
        choices: the names it accepts, where it takes one of a few.
        group: "server" (where to listen), "simulator" (its knobs) or "faults".
    """

    name: str
    help: str
    kind: type[int | float | str] | None = None
    default: Any = None
    nargs: int = 1
    metavar: tuple[str, ...] | None = None
    choices: tuple[str, ...] | None = None
    group: str = "simulator"

    @property
    def flag(self) -> str:
        """`--max-concurrent-tasks`."""
        return "--" + self.name.replace("_", "-")


def _fault(name: str, help_text: str) -> ServeOption:
    return ServeOption(name=name, help=help_text, kind=float, default=0.0, group="faults")


SERVE_OPTIONS: tuple[ServeOption, ...] = (
    ServeOption(
        name="host", help="Address to listen on.", kind=str, default="127.0.0.1", group="server"
    ),
    ServeOption(name="port", help="Port to listen on.", kind=int, default=8000, group="server"),
    ServeOption(
        name="log_level", help="uvicorn's log level.", kind=str, default="info", group="server"
    ),
    ServeOption(
        name="record",
        help="When stopped, write what happened to FILE (JSON: requests, ledger, committed"
        " credits over time; see Simulator.record).",
        kind=str,
        metavar=("FILE",),
        group="server",
    ),
    ServeOption(name="seed", help="Seed for every random draw.", kind=int, default=0),
    ServeOption(
        name="balance",
        help="Credits on the account.",
        kind=str,
        default="10000",
        metavar=("CREDITS",),
    ),
    ServeOption(
        name="durations",
        help="Seconds a task takes, at least and at most.",
        kind=float,
        default=(8.0, 30.0),
        nargs=2,
        metavar=("LOW", "HIGH"),
    ),
    ServeOption(
        name="progress",
        help="How progress grows: linear, steps (of 25), none (0 until done),"
        " slow-then-fast (t^3), fast-then-slow (t^(1/3)) or half-told (half the"
        " truth, then done).",
        kind=str,
        default="linear",
        choices=tuple(PROGRESS_MODELS),
    ),
    ServeOption(
        name="estimates",
        help="What estimated_time says: honest (within 15 percent), double (twice the truth),"
        " missing (left out) or noisy (lognormal noise, sigma 0.5).",
        kind=str,
        default="honest",
        choices=tuple(ESTIMATES),
    ),
    ServeOption(
        name="speed",
        help="Run the clock this many times faster than real time (ScaledClock); give"
        " clients a ScaledClock of the same speed and --anchor.",
        kind=float,
        default=1.0,
    ),
    ServeOption(
        name="anchor",
        help="With --speed: the Unix time at which the clock agrees with real time"
        " (default: when the server starts).",
        kind=float,
        metavar=("UNIX_TIME",),
    ),
    ServeOption(
        name="max_concurrent_tasks", help="Unfinished tasks a key may have (429 past it).", kind=int
    ),
    ServeOption(
        name="max_requests_per_second", help="Requests a key may send a second.", kind=float
    ),
    ServeOption(name="retry_after", help="Seconds a 429 asks the client to wait.", kind=float),
    ServeOption(
        name="result_ttl",
        help="Seconds result images stay downloadable.",
        kind=float,
        default=86_400.0,
    ),
    ServeOption(name="no_batch_endpoint", help="Answer 404 to POST /v1/tasks/batch."),
    ServeOption(name="no_idempotency", help="Ignore Idempotency-Key headers."),
    ServeOption(
        name="no_published_prices",
        help="Serve an empty price list (clients learn prices from reservations).",
    ),
    ServeOption(
        name="allow_local_callbacks",
        help="Deliver callbacks to http:// and local addresses (for apps on this machine).",
    ),
    ServeOption(
        name="no_accept_retired",
        help="Refuse the retired models (gpt-4o-image, ...) with 403 model_access_denied.",
    ),
    _fault("rate_limit", "Share of requests answered 429."),
    _fault("create_errors", "Share of creates answered 5xx."),
    _fault("read_errors", "Share of task reads answered 5xx."),
    _fault("lost_create_response", "Share of creates made whose answer is lost."),
    _fault("slow_response", "Share of answers delayed by --slow-delay."),
    _fault("malformed_json", "Share of answers that are not valid JSON."),
    _fault("task_failure", "Share of tasks that fail."),
    _fault("cancellation", "Share of tasks cancelled."),
    _fault("partial_completion", "Share of completed tasks with fewer images than asked."),
    _fault("callback_drop", "Share of callbacks never sent."),
    _fault("callback_duplicate", "Share of callbacks sent twice."),
    _fault("callback_late", "Share of callbacks sent --callback-late-by s late."),
    _fault("callback_out_of_order", "Share of callbacks sent out of order."),
    ServeOption(
        name="slow_delay",
        help="Seconds a slow answer takes.",
        kind=float,
        default=30.0,
        group="faults",
    ),
    ServeOption(
        name="callback_late_by",
        help="Seconds a late callback is late.",
        kind=float,
        default=30.0,
        group="faults",
    ),
)


def simulator_knobs(values: Mapping[str, Any]) -> dict[str, Any]:
    """`Simulator` keyword arguments from parsed `SERVE_OPTIONS` values (by name).

    Raises:
        ValueError: a fault probability outside [0, 1], or another value out of range
            (a `speed` of 0 or less, ...).
    """
    fault_names = {field.name for field in attrs.fields(Faults)}
    faults = Faults(
        **{
            o.name: values[o.name]
            for o in SERVE_OPTIONS
            if o.group == "faults"
            if o.name in fault_names
        }
    )
    knobs: dict[str, Any] = {
        "seed": values["seed"],
        "balance": values["balance"],
        "durations": tuple(values["durations"]),
        "max_concurrent_tasks": values["max_concurrent_tasks"],
        "max_requests_per_second": values["max_requests_per_second"],
        "retry_after": values["retry_after"],
        "result_ttl": values["result_ttl"],
        "batch_endpoint": not values["no_batch_endpoint"],
        "idempotency": not values["no_idempotency"],
        "publish_prices": not values["no_published_prices"],
        "allow_local_callbacks": values["allow_local_callbacks"],
        "accept_retired": not values["no_accept_retired"],
        "progress": PROGRESS_MODELS[values["progress"]],
        "estimates": ESTIMATES[values["estimates"]],
        "faults": faults,
    }
    if values["speed"] != 1:
        # At speed 1 a scaled clock is the system clock, whatever its anchor. The default
        # anchor is a whole second, for clients to copy from the banner.
        anchor = values["anchor"]
        knobs["clock"] = ScaledClock(
            values["speed"], anchor=float(math.floor(time.time())) if anchor is None else anchor
        )
    return knobs


def clock_note(knobs: Mapping[str, Any]) -> str | None:
    """What a client needs to share a sped-up simulator's clock; None on real time."""
    clock = knobs.get("clock")
    if not isinstance(clock, ScaledClock):
        return None
    return (
        f"clock: {clock.speed:g}x real time; give clients"
        f" ScaledClock({clock.speed:g}, anchor={clock.anchor!r})"
    )


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    simulator: Simulator | None = None,
    log_level: str = "info",
    record: str | None = None,
    **knobs: Any,
) -> None:
    """Serve a simulator until interrupted (blocking).

    Args:
        host: address to listen on.
        port: port to listen on.
        simulator: the simulator to serve; by default a new one made with `knobs`.
        log_level: uvicorn's log level.
        record: a file to write `Simulator.record()` to, as JSON, once stopped (SIGINT
            or SIGTERM): what a test of served clients checks.
        **knobs: `Simulator` keyword arguments, when `simulator` is None.
    """
    uvicorn = uvicorn_module()
    if simulator is None:
        simulator = Simulator(**knobs)
    uvicorn.run(simulator.app, host=host, port=port, log_level=log_level, lifespan="on")
    if record is not None:
        Path(record).write_text(json.dumps(simulator.record()), encoding="utf-8")


@contextlib.contextmanager
def serve_in_thread(
    simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Serve `simulator` in a background thread; yield its base URL; stop on exit."""
    with serve_app_in_thread(simulator.app, host=host, port=port) as base_url:
        yield base_url
