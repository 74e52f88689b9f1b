"""Hostile behaviours for the simulator: progress curves and scripted durations."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import attrs


@attrs.frozen
class StuckAt:
    """Linear progress reaching `level` % at `reach` of the duration, then stuck there."""

    level: int = 99
    reach: float = 0.2

    def percent(self, fraction: float) -> int:
        return min(self.level, math.floor(100 * fraction / self.reach * self.level / 100))


@attrs.frozen
class JumpsBack:
    """Linear, then at `at` of the duration it falls back by `drop` percent points."""

    at: float = 0.9
    drop: int = 60

    def percent(self, fraction: float) -> int:
        p = math.floor(100 * fraction)
        return p - self.drop if fraction >= self.at else p


@attrs.frozen
class Sawtooth:
    """Linear progress that restarts from 0 every `period` of the duration (0-99 each time)."""

    period: float = 0.25

    def percent(self, fraction: float) -> int:
        return min(99, math.floor(100 * (fraction % self.period) / self.period))


@attrs.define
class Scripted:
    """Durations drawn in order from a list (then repeating its last), one per task."""

    values: Sequence[float]
    i: int = 0

    def sample(self, rng: random.Random) -> float:
        rng.random()
        v = self.values[min(self.i, len(self.values) - 1)]
        self.i += 1
        return float(v)


@attrs.define
class Switch:
    """A progress model whose curve the test changes between batches (same model)."""

    current: object = attrs.field(factory=lambda: _Linear())  # noqa: PLW0108 (defined below)

    def percent(self, fraction: float) -> int:
        return self.current.percent(fraction)  # type: ignore[attr-defined]


@attrs.frozen
class _Linear:
    def percent(self, fraction: float) -> int:
        return math.floor(100 * fraction)


@attrs.define
class SwitchDurations:
    """Durations from whichever distribution the test set last."""

    current: object

    def sample(self, rng: random.Random) -> float:
        return float(self.current.sample(rng))  # type: ignore[attr-defined]
