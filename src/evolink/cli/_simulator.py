"""`evolink simulator`'s options, built from the one definition `python -m evolink.testing` uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import click

from evolink.testing._serve import SERVE_OPTIONS, ServeOption, simulator_knobs

F = TypeVar("F", bound=Callable[..., Any])

#: Where the command's defaults differ from `python -m evolink.testing`'s: it prints its
#: own banner, so uvicorn's request log would only be noise.
_DEFAULTS = {"log_level": "warning"}


@attrs.frozen
class SimulatorSettings:
    """Where to serve, and the `Simulator`'s keyword arguments."""

    host: str
    port: int
    log_level: str
    knobs: Mapping[str, Any]


def _click_option(option: ServeOption) -> Callable[[F], F]:
    if option.kind is None:
        return click.option(option.flag, option.name, is_flag=True, help=option.help)
    default = _DEFAULTS.get(option.name, option.default)
    return click.option(
        option.flag,
        option.name,
        type=click.IntRange(0, 65535) if option.name == "port" else option.kind,
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
    return SimulatorSettings(
        host=values["host"],
        port=values["port"],
        log_level=values["log_level"],
        knobs=simulator_knobs(values),
    )
