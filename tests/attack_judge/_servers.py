"""The servers this suite attacks with: each a function of a seed to a list of `Spec`s.

Durations are uniform in a range; progress is honest and linear unless said otherwise;
"no est" means the server sends no `estimated_time`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from tests.attack_judge._sim import (
    Spec,
    honest_estimate,
    linear,
    no_progress,
    noisy_linear,
    power,
    share_of,
    stepped,
    uniform_specs,
)

Server = Callable[[int], list[Spec]]


def noisy_estimate(rng: random.Random, duration: float) -> float:
    """Log-normal estimate noise, sigma 0.5, whole seconds."""
    return max(1, round(duration * math.exp(rng.gauss(0.0, 0.5))))


def stale_estimate(factor: float) -> Callable[[random.Random, float], float]:
    """An honest estimate times `factor`: a model that changed speed while its estimates
    stayed where they were."""

    def estimate(rng: random.Random, duration: float) -> float:
        return factor * honest_estimate(rng, duration)

    return estimate


def jittered(rng: random.Random) -> Callable[[float], int]:
    """Linear progress with +-3 points of noise at each read (it may go back)."""
    own = random.Random(rng.random())

    def percent(fraction: float) -> int:
        return max(0, min(99, math.floor(100 * fraction + own.uniform(-3.0, 3.0))))

    return percent


# Servers that never change -------------------------------------------------------------


def honest_linear(seed: int) -> list[Spec]:
    return uniform_specs(random.Random(seed), 1000, 2, 6)


def honest_with_estimates(seed: int) -> list[Spec]:
    return uniform_specs(random.Random(seed), 1000, 2, 6, estimate=honest_estimate)


def rate_noise(seed: int) -> list[Spec]:
    """Each task's progress runs at its own rate (sigma 0.1), honest on average."""
    rng = random.Random(seed)
    return uniform_specs(rng, 1000, 2, 6, progress=lambda r: noisy_linear(r, 0.1), per_task=True)


def read_noise(seed: int) -> list[Spec]:
    return uniform_specs(random.Random(seed), 1000, 2, 6, progress=jittered, per_task=True)


def coarse_steps(seed: int) -> list[Spec]:
    rng = random.Random(seed)
    return uniform_specs(rng, 1000, 2, 6, progress=stepped(25), estimate=honest_estimate)


def steps_of_ten(seed: int) -> list[Spec]:
    return uniform_specs(random.Random(seed), 1000, 2, 6, progress=stepped(10))


def slow_then_fast(seed: int) -> list[Spec]:
    return uniform_specs(random.Random(seed), 1000, 2, 6, progress=power(3))


def fast_then_slow(seed: int) -> list[Spec]:
    return uniform_specs(random.Random(seed), 1000, 2, 6, progress=power(1 / 3))


def noisy_estimates(seed: int) -> list[Spec]:
    return uniform_specs(random.Random(seed), 1000, 2, 6, estimate=noisy_estimate)


def minutes(seed: int) -> list[Spec]:
    """Tasks of 60-120 s with honest estimates (run on 30 slots)."""
    return uniform_specs(random.Random(seed), 300, 60, 120, estimate=honest_estimate)


def linear_20_60(seed: int) -> list[Spec]:
    """Tasks of 20-60 s, linear progress, no estimates."""
    return uniform_specs(random.Random(seed), 1000, 20, 60)


def shape_bursts(seed: int) -> list[Spec]:
    """Bursts of 100: linear, then `t^2`, in turn, 2-6 s, honest estimates."""
    rng = random.Random(seed)
    specs: list[Spec] = []
    for burst in range(10):
        curve = linear if burst % 2 == 0 else power(2)
        specs += uniform_specs(rng, 100, 2, 6, progress=curve, estimate=honest_estimate)
    return specs


def speed_bursts(seed: int) -> list[Spec]:
    """Bursts of 100: 2-6 s, then 20-40 s, in turn, linear, no estimates."""
    rng = random.Random(seed)
    specs: list[Spec] = []
    for burst in range(10):
        specs += (
            uniform_specs(rng, 100, 2, 6) if burst % 2 == 0 else uniform_specs(rng, 100, 20, 40)
        )
    return specs


def honest_mixture(seed: int) -> list[Spec]:
    """Half linear 2-6 s tasks, half `t^2` 20-60 s tasks, shuffled, honest estimates:
    two honest populations sharing the progress bands."""
    rng = random.Random(seed)
    specs: list[Spec] = []
    for _ in range(1000):
        if rng.random() < 0.5:
            specs += uniform_specs(rng, 1, 2, 6, estimate=honest_estimate)
        else:
            specs += uniform_specs(rng, 1, 20, 60, progress=power(2), estimate=honest_estimate)
    return specs


def many_models(seed: int) -> list[Spec]:
    """Ten models interleaved, 200 tasks each, of 2-6 s up to 20-60 s, every other one
    with honest estimates."""
    rng = random.Random(seed)
    specs: list[Spec] = []
    for i in range(2000):
        m = i % 10
        estimate = honest_estimate if m % 2 else None
        specs += uniform_specs(rng, 1, 2 * (1 + m), 6 * (1 + m), model=f"m{m}", estimate=estimate)
    return specs


# Servers that lie or change ------------------------------------------------------------


def slowdown_liar(seed: int, low: float = 2, high: float = 6) -> list[Spec]:
    """400 honest tasks, then 600 three times slower whose progress reports half the
    truth (no estimates): the change's own first claim."""
    rng = random.Random(seed)
    before = uniform_specs(rng, 400, low, high)
    after = [Spec(3 * s.duration, share_of(0.5)) for s in uniform_specs(rng, 600, low, high)]
    return before + after


def slow_lying_sixth(seed: int) -> list[Spec]:
    """A sixth of the tasks (15-30 s) report 40 % of the truth among honest 2-6 s ones:
    the change's second claim."""
    rng = random.Random(seed)
    specs: list[Spec] = []
    for _ in range(1000):
        if rng.random() < 1 / 6:
            specs += uniform_specs(rng, 1, 15, 30, progress=share_of(0.4))
        else:
            specs += uniform_specs(rng, 1, 2, 6)
    return specs


def lying_bursts(seed: int) -> list[Spec]:
    """A fifth of the tasks report half the truth, in bursts of 40 (2-6 s, no est)."""
    rng = random.Random(seed)
    specs: list[Spec] = []
    for burst in range(25):
        progress = share_of(0.5) if burst % 5 == 2 else linear
        specs += uniform_specs(rng, 40, 2, 6, progress=progress)
    return specs


def lies_then_honest(seed: int) -> list[Spec]:
    """300 honest, 400 reporting half the truth, 300 honest again (2-6 s, no est)."""
    rng = random.Random(seed)
    return (
        uniform_specs(rng, 300, 2, 6)
        + uniform_specs(rng, 400, 2, 6, progress=share_of(0.5))
        + uniform_specs(rng, 300, 2, 6)
    )


def late_bands_lie(seed: int) -> list[Spec]:
    """From task 400, past half-way progress runs at half speed (the upper bands lie)."""
    rng = random.Random(seed)

    def curve(fraction: float) -> int:
        return math.floor(100 * (fraction if fraction < 0.5 else 0.5 + (fraction - 0.5) / 2))

    return uniform_specs(rng, 400, 2, 6) + uniform_specs(rng, 600, 2, 6, progress=curve)


def early_bands_lie(seed: int) -> list[Spec]:
    """From task 400, progress runs at half speed until half-way, then jumps to the truth."""
    rng = random.Random(seed)

    def curve(fraction: float) -> int:
        return math.floor(100 * (fraction / 2 if fraction < 0.5 else fraction))

    return uniform_specs(rng, 400, 2, 6) + uniform_specs(rng, 600, 2, 6, progress=curve)


def faster_stale_estimates(seed: int) -> tuple[list[Spec], list[Spec]]:
    """400 tasks of 6-18 s with honest estimates, then 600 of 2-6 s (3x faster) whose
    estimates stayed at the old size (3x the truth); progress honest throughout."""
    rng = random.Random(seed)
    before = uniform_specs(rng, 400, 6, 18, estimate=honest_estimate)
    after = uniform_specs(rng, 600, 2, 6, estimate=stale_estimate(3.0))
    return before, after


def faster_no_estimates(seed: int) -> tuple[list[Spec], list[Spec]]:
    """400 tasks of 6-18 s, then 600 of 2-6 s (3x faster); honest linear progress, no
    estimates."""
    rng = random.Random(seed)
    return uniform_specs(rng, 400, 6, 18), uniform_specs(rng, 600, 2, 6)


def faster_blind(seed: int) -> tuple[list[Spec], list[Spec]]:
    """400 tasks of 2-6 s, then 600 of 0.5-1.5 s (4x faster); no progress, no estimates."""
    rng = random.Random(seed)
    before = uniform_specs(rng, 400, 2, 6, progress=no_progress)
    return before, uniform_specs(rng, 600, 0.5, 1.5, progress=no_progress)


def faster_stale_estimates_long(seed: int) -> tuple[list[Spec], list[Spec]]:
    """As `faster_stale_estimates`, 20-60 s tasks turning into 7-20 s ones."""
    rng = random.Random(seed)
    before = uniform_specs(rng, 400, 20, 60, estimate=honest_estimate)
    after = [
        Spec(s.duration / 3, linear, s.estimate)
        for s in uniform_specs(rng, 600, 20, 60, estimate=honest_estimate)
    ]
    return before, after


def comes_to_mean_less(seed: int, truth: float = 0.6) -> list[Spec]:
    """20-60 s tasks, no estimates: from task 400 on, progress reports `truth` of the
    real share (no change of speed)."""
    rng = random.Random(seed)
    return uniform_specs(rng, 400, 20, 60) + uniform_specs(
        rng, 600, 20, 60, progress=share_of(truth)
    )


def turns_cubic(seed: int) -> list[Spec]:
    """20-60 s tasks, no estimates: from task 400 on, progress along `t^3`."""
    rng = random.Random(seed)
    return uniform_specs(rng, 400, 20, 60) + uniform_specs(rng, 600, 20, 60, progress=power(3))
