"""Distributions of simulated task durations, in seconds."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from statistics import NormalDist
from typing import Protocol, runtime_checkable

import attrs

_STANDARD_NORMAL = NormalDist()
# Keep inverse CDFs finite for a draw of exactly 0.
_TINY = 1e-12


@runtime_checkable
class Durations(Protocol):
    """Anything that draws a task duration (seconds, > 0) from a seeded RNG."""

    def sample(self, rng: random.Random) -> float:
        """One duration."""


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _optional_positive(
    _: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 or None, got {value!r}")


def _finite_positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


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


def _capped(seconds: float, cap: float | None) -> float:
    return seconds if cap is None else min(seconds, cap)


@attrs.frozen(kw_only=True)
class LogNormal:
    """Heavy-tailed durations: lognormal around `median` seconds, spread `sigma`.

    Most tasks take about `median`; a few take many times longer (`sigma=0.8`: one in a
    hundred past 6.4 x the median). `cap` (seconds, optional) bounds the tail. One draw per
    task, by the inverse CDF, so the seed gives the same durations every run.
    """

    median: float = attrs.field(validator=_finite_positive)
    sigma: float = attrs.field(validator=_finite_positive)
    cap: float | None = attrs.field(default=None, validator=_optional_positive)

    def sample(self, rng: random.Random) -> float:
        """One duration: `median x exp(sigma x Z)`, at most `cap`."""
        z = _STANDARD_NORMAL.inv_cdf(min(max(rng.random(), _TINY), 1 - _TINY))
        return _capped(self.median * math.exp(self.sigma * z), self.cap)


@attrs.frozen(kw_only=True)
class Pareto:
    """Heavy-tailed durations: at least `minimum` seconds, a power-law tail of index `alpha`.

    The smaller `alpha`, the heavier the tail (`alpha <= 2`: unbounded variance). `cap`
    (seconds, optional) bounds it. One draw per task.
    """

    minimum: float = attrs.field(validator=_finite_positive)
    alpha: float = attrs.field(validator=_finite_positive)
    cap: float | None = attrs.field(default=None, validator=_optional_positive)

    def __attrs_post_init__(self) -> None:
        if self.cap is not None and self.cap < self.minimum:
            raise ValueError(f"cap ({self.cap}) must be >= minimum ({self.minimum})")

    def sample(self, rng: random.Random) -> float:
        """One duration: `minimum / (1 - U) ** (1 / alpha)`, at most `cap`."""
        return _capped(self.minimum / (1.0 - rng.random()) ** (1.0 / self.alpha), self.cap)


DEFAULT_DURATIONS = Uniform(8.0, 30.0)
#: Without durations given, what other kinds take: videos minutes, audio under two.
DEFAULT_DURATIONS_BY_KIND: Mapping[str, Durations] = {
    "video": Uniform(60.0, 240.0),
    "audio": Uniform(20.0, 90.0),
}

DurationsLike = Durations | tuple[float, float] | float


def _by_model(
    value: Mapping[str, DurationsLike],
) -> tuple[tuple[str, Durations], ...]:
    return tuple((name, as_durations(item)) for name, item in value.items())


def _default_durations(value: DurationsLike) -> Durations:
    return as_durations(value)


@attrs.frozen
class ByModel:
    """Durations per model: `ByModel({"gpt-4o-image": (8, 30), "mj-v7": Uniform(30, 90)})`.

    A model not listed draws from `default`. Each entry may be a distribution, a
    `(low, high)` pair or a number of seconds. `Simulator(durations={...})` builds one.
    """

    models: tuple[tuple[str, Durations], ...] = attrs.field(converter=_by_model)
    default: Durations = attrs.field(
        default=DEFAULT_DURATIONS, kw_only=True, converter=_default_durations
    )

    def for_model(self, model: str) -> Durations:
        """The distribution `model`'s tasks draw from."""
        for name, durations in self.models:
            if name == model:
                return durations
        return self.default

    def sample(self, rng: random.Random) -> float:
        """One duration from `default` (a model-less draw)."""
        return self.default.sample(rng)


def durations_for(durations: Durations, model: str, *names: str) -> Durations:
    """The distribution a task of `model` draws from (or of another name it was asked by,
    such as an alias, where the mapping names that one)."""
    if not isinstance(durations, ByModel):
        return durations
    listed = {name for name, _ in durations.models}
    for name in names:
        if name in listed:
            return durations.for_model(name)
    return durations.for_model(model)


def as_durations(value: DurationsLike | Mapping[str, DurationsLike]) -> Durations:
    """Accept a distribution, a `(low, high)` pair, a fixed number of seconds, or a mapping
    of model to any of those (`ByModel`)."""
    if isinstance(value, Mapping):
        return ByModel(value)
    if isinstance(value, tuple):
        low, high = value
        return Uniform(float(low), float(high))
    if isinstance(value, (int, float)):
        return Fixed(float(value))
    if isinstance(value, Durations):
        return value
    raise TypeError(f"durations: expected a distribution, a (low, high) pair or seconds: {value!r}")
