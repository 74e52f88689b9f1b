"""How a simulated task reports `progress` while it runs: the shape of the curve.

A progress model maps the fraction of a full generation done (time since creation over
the task's full duration, in [0, 1)) to the whole percent the API reports. The engine
keeps it within 0-99 while the task runs (100 only once completed) and sends 0 while the
task is `pending`. Models are pure functions of that fraction: no randomness.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import attrs


@runtime_checkable
class ProgressModel(Protocol):
    """Anything that turns the fraction of a generation done into a percent."""

    def percent(self, fraction: float) -> int:
        """Whole percent for `fraction` (0 <= fraction < 1) of the duration elapsed."""


@attrs.frozen
class LinearProgress:
    """Progress in step with time, rounded down: read part-way, it predicts the end.

    The default, and what the simulator always did.
    """

    def percent(self, fraction: float) -> int:
        """`floor(100 x fraction)`."""
        return math.floor(100 * fraction)


def _step(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ValueError(f"{attribute.name} must be a whole percent in 1-100, got {value!r}")


@attrs.frozen
class SteppedProgress:
    """Progress in coarse steps: with `step=25` it reads 0, 25, 50, 75, then 100 when done.

    Linear progress rounded down to a multiple of `step` percent, as services that report
    stages (queued, started, half-way, finishing) do.
    """

    step: int = attrs.field(default=25, validator=_step)

    def percent(self, fraction: float) -> int:
        """The linear percent, rounded down to a multiple of `step`."""
        return math.floor(100 * fraction) // self.step * self.step


@attrs.frozen
class NoProgress:
    """Progress stays 0 until the task ends (then 100 if it completed)."""

    def percent(self, fraction: float) -> int:  # noqa: ARG002 - the protocol's signature
        """Always 0."""
        return 0


def _exponent(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


@attrs.frozen
class PowerProgress:
    """Progress along a power curve: `floor(100 x fraction ** exponent)`.

    `exponent > 1` is slow at first and fast at the end (`PowerProgress(3)` reads 12% half-way);
    `exponent < 1` is fast at first and slow at the end (`PowerProgress(1/3)` reads 79%
    half-way). Either way a reader that extrapolates linearly mispredicts the end.
    """

    exponent: float = attrs.field(default=3.0, converter=float, validator=_exponent)

    def percent(self, fraction: float) -> int:
        """`floor(100 x fraction ** exponent)`."""
        return math.floor(100 * math.pow(fraction, self.exponent))


def _share(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ValueError(f"{attribute.name} must be a share in (0, 1], got {value!r}")


@attrs.frozen
class ShareProgress:
    """Progress that reports a steady share of the truth, then jumps to done (a stage
    counter, or a service whose last stage is not counted): `floor(100 x share x fraction)`.

    Its readings agree with each other on an end `1 / share` times too late, so no reading
    alone shows the lie: only a task seen done early does. `ShareProgress(0.4)` reads 20%
    half-way and 39% just before the end.
    """

    share: float = attrs.field(default=0.5, converter=float, validator=_share)

    def percent(self, fraction: float) -> int:
        """`floor(100 x share x fraction)`."""
        return math.floor(100 * self.share * fraction)


LINEAR_PROGRESS: ProgressModel = LinearProgress()
