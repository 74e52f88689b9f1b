"""What a simulated task reports as `task_info.estimated_time`.

One uniform draw per task (always, whichever knobs are on, so an estimate knob never
shifts durations or fates) becomes the estimate's error: uniform within `± error`, or
lognormal with `noise` as sigma. The result is biased by `factor`, rounded to `step`
seconds, and left out altogether with `missing`.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import attrs

_STANDARD_NORMAL = NormalDist()
# Keep the inverse CDF finite for a draw of exactly 0.
_TINY = 1e-12


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def _error(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError(f"{attribute.name} is a fraction in [0, 1), got {value!r}")


def _whole_seconds(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a whole number of seconds >= 1, got {value!r}")


@attrs.frozen(kw_only=True)
class Estimates:
    """How `estimated_time` relates to a task's true (full) duration.

    The default is today's honest estimate: the true duration times `1 ± up to 15%`,
    whole seconds, at least 1.

    Attributes:
        factor: bias: estimates are this many times the truth (`2.0`: twice as long).
        error: uniform error, a fraction: the truth times `1 ± up to error`.
        noise: sigma of lognormal multiplicative noise (the truth times `exp(noise x Z)`,
            Z standard normal); when above 0 it replaces `error`. `0.5` puts one estimate
            in twenty outside `x0.37`-`x2.7`.
        step: the estimate is rounded to a multiple of this many seconds (at least one
            step): `step=10` reports 10, 20, 30, ...
        missing: send no `estimated_time` at all (the field is optional in the schema).
    """

    factor: float = attrs.field(default=1.0, validator=_positive)
    error: float = attrs.field(default=0.15, validator=_error)
    noise: float = attrs.field(default=0.0, validator=_non_negative)
    step: int = attrs.field(default=1, validator=_whole_seconds)
    missing: bool = False

    def estimate(self, duration: float, draw: float) -> int | None:
        """The estimate for a task of `duration` seconds, from a uniform `draw` in [0, 1)."""
        if self.missing:
            return None
        if self.noise > 0:
            z = _STANDARD_NORMAL.inv_cdf(min(max(draw, _TINY), 1 - _TINY))
            multiplier = math.exp(self.noise * z)
        else:
            # As `random.uniform(-error, error)` computes it: the same numbers as before.
            multiplier = 1 + (-self.error + 2 * self.error * draw)
        seconds = duration * self.factor * multiplier
        return max(self.step, round(seconds / self.step) * self.step)
