"""`evolink simulator`'s options, built from the one definition `python -m evolink.testing` uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import click

from evolink.testing._serve import SERVE_OPTIONS, ServeOption, clock_note, simulator_knobs

F = TypeVar("F", bound=Callable[..., Any])

#: Where the command's defaults differ from `python -m evolink.testing`'s: it prints its
#: own banner, so uvicorn's request log would only be noise.
_DEFAULTS = {"log_level": "warning"}


@attrs.frozen
class SimulatorSettings:
    """Where to serve, the `Simulator`'s keyword arguments, and what clients must know."""

    host: str
    port: int
    log_level: str
    knobs: Mapping[str, Any]
    #: The clock a client must share, when the simulator runs on a sped-up one.
    clock_note: str | None = None
    #: Where to write the simulator's record once stopped.
    record: str | None = None


def _click_option(option: ServeOption) -> Callable[[F], F]:
    if option.kind is None:
        return click.option(option.flag, option.name, is_flag=True, help=option.help)
    default = _DEFAULTS.get(option.name, option.default)
    kind: Any = option.kind
    if option.choices is not None:
        kind = click.Choice(option.choices)
    elif option.name == "port":
        kind = click.IntRange(0, 65535)
    return click.option(
        option.flag,
        option.name,
        type=kind,
        default=default,
        nargs=option.nargs,
        metavar=" ".join(option.metavar) if option.metavar else None,
        show_default=default is not None,
        help=option.help,
    )


def simulator_options(function: F) -> F:
    """Every option of `SERVE_OPTIONS` as a click option, in its order."""
    for option in reversed(SERVE_OPTIONS):
        function = _click_option(option)(function)
    return function


def simulator_settings(values: Mapping[str, Any]) -> SimulatorSettings:
    """The parsed options as serve arguments and knobs.

    Raises:
        ValueError: a value the simulator refuses (a probability over 1, ...).
    """
    knobs = simulator_knobs(values)
    return SimulatorSettings(
        host=values["host"],
        port=values["port"],
        log_level=values["log_level"],
        knobs=knobs,
        clock_note=clock_note(knobs),
        record=values.get("record"),
    )
