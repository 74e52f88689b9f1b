"""A normal distribution fitted to interval-censored values: each known only within `(low, high]`.

Where the model's tasks show no progress, the estimate's record plans every read of a task
(`_timing.Spread`), and the reads themselves are what censor the ends: each falls between
two reads of one schedule, and tasks read on one schedule share its points. Turnbull's
estimate cannot say where within those gaps the ends are, nor smooth what 16-160 ends of
one band say by chance; two numbers, a centre and a width, are learned from a few dozen
such intervals, and where they describe the ends as well, the schedule planned on them
spends its reads better (docs/explanation/waiting.md, "A fitted record").

Pure functions of the intervals: the maximum-likelihood fit by EM (each interval's value
replaced by its expectation under the current fit, truncated to the interval), and the
log-likelihood of intervals under a fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import NormalDist

#: EM rounds at most; it stops sooner once the fit moves by less than `SETTLED` (log
#: space: a hundredth of a percent of a duration).
ROUNDS = 40
SETTLED = 1e-4
#: The narrowest fit (log space): a point has no density.
MIN_SIGMA = 0.001
#: An interval's likelihood is at least this (a fit may give an outlier almost none; one
#: end far out should not decide between two records on its own).
FLOOR = 1e-3
#: The fitted record's levels: its CDF is cut there, and taken as 0 and 1 at the ends.
LEVELS = (0.001, *(k / 200 for k in range(1, 200)), 0.999)

_HALF_ROOT = math.sqrt(0.5)
_ROOT_TAU = 1.0 / math.sqrt(2.0 * math.pi)  # the standard normal's density at 0


def fit(intervals: Sequence[tuple[float, float]], start: NormalDist | None = None) -> NormalDist:
    """The normal distribution most likely to have given values within `intervals`
    (`low <= high`; equal ends: a value known exactly), by EM from `start` (a fit of
    much the same intervals: a record rebuilt) or else from their middles."""
    if not intervals:
        raise ValueError("no intervals to fit")
    if start is not None:
        mu, var = start.mean, max(start.variance, MIN_SIGMA**2)
    else:
        middles = [(low + high) / 2 for low, high in intervals]
        mu = sum(middles) / len(middles)
        var = max(sum((m - mu) ** 2 for m in middles) / len(middles), MIN_SIGMA**2)
    for _ in range(ROUNDS):
        first, second = _moments(intervals, mu, var)
        new_mu = first / len(intervals)
        new_var = max(second / len(intervals) - new_mu * new_mu, MIN_SIGMA**2)
        settled = abs(new_mu - mu) < SETTLED and abs(new_var - var) < SETTLED
        mu, var = new_mu, new_var
        if settled:
            break
    return NormalDist(mu, math.sqrt(var))


def _moments(
    intervals: Sequence[tuple[float, float]], mu: float, var: float
) -> tuple[float, float]:
    """The sums of each value's expectation, and of its square's, given its interval and
    the normal (`mu`, `var`): the truncated normal's first two moments."""
    sigma = math.sqrt(var)
    erf, exp = math.erf, math.exp
    first = second = 0.0
    for low, high in intervals:
        a, b = (low - mu) / sigma, (high - mu) / sigma
        mass = 0.5 * (erf(b * _HALF_ROOT) - erf(a * _HALF_ROOT))
        if b - a < 1e-9 or mass < 1e-12:
            # Known exactly, or so far out that the fit gives it nothing: its nearer end.
            value = (low + high) / 2 if b - a < 1e-9 else (low if a > 0 else high)
            first += value
            second += value * value
            continue
        pdf_a, pdf_b = exp(-a * a / 2) * _ROOT_TAU, exp(-b * b / 2) * _ROOT_TAU
        shift = (pdf_a - pdf_b) / mass
        spread = 1.0 + (a * pdf_a - b * pdf_b) / mass
        first += mu + sigma * shift
        second += mu * mu + 2.0 * mu * sigma * shift + var * spread
    return first, second


def log_likelihood(
    cdf: Callable[[float], float], intervals: Sequence[tuple[float, float]]
) -> float:
    """The log-likelihood of `intervals` under the distribution whose CDF is `cdf` (each
    interval's chance, at least `FLOOR`)."""
    return sum(math.log(max(cdf(high) - cdf(low), FLOOR)) for low, high in intervals)


def record(normal: NormalDist) -> tuple[list[float], list[float]]:
    """Knots and CDF of `normal`, as a `_timing.Spread` keeps them (cut at `LEVELS`)."""
    knots = [normal.inv_cdf(level) for level in LEVELS]
    cdf = [0.0, *LEVELS[1:-1], 1.0]
    return knots, cdf
