"""Distributions of simulated task durations, in seconds."""

from __future__ import annotations

import random
from typing import Protocol, runtime_checkable

import attrs


@runtime_checkable
class Durations(Protocol):
    """Anything that draws a task duration (seconds, > 0) from a seeded RNG."""

    def sample(self, rng: random.Random) -> float:
        """One duration."""


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class Uniform:
    """Durations spread evenly between `low` and `high` seconds."""

    low: float = attrs.field(validator=_positive)
    high: float = attrs.field(validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")

    def sample(self, rng: random.Random) -> float:
        """One duration, uniform in [low, high]."""
        return rng.uniform(self.low, self.high)


@attrs.frozen
class Fixed:
    """Every task takes exactly `seconds`."""

    seconds: float = attrs.field(validator=_positive)

    def sample(self, rng: random.Random) -> float:  # noqa: ARG002 - the protocol's signature
        """Always `seconds`."""
        return self.seconds


DEFAULT_DURATIONS = Uniform(8.0, 30.0)


def as_durations(value: Durations | tuple[float, float] | float) -> Durations:
    """Accept a distribution, a `(low, high)` pair or a fixed number of seconds."""
    if isinstance(value, tuple):
        low, high = value
        return Uniform(float(low), float(high))
    if isinstance(value, (int, float)):
        return Fixed(float(value))
    if isinstance(value, Durations):
        return value
    raise TypeError(f"durations: expected a distribution, a (low, high) pair or seconds: {value!r}")
