"""Duration knobs: heavy-tailed distributions and durations by model."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from _sim_support import api, create

from evolink.testing import (
    ByModel,
    Fixed,
    LogNormal,
    Pareto,
    Simulator,
    Uniform,
    VirtualClock,
)


def draws(distribution: LogNormal | Pareto, seed: int = 1, count: int = 4000) -> list[float]:
    rng = random.Random(seed)
    return [distribution.sample(rng) for _ in range(count)]


def test_lognormal_has_its_median_and_a_long_tail() -> None:
    """Half the draws fall below `median`; the top percent is several medians long."""
    sample = draws(LogNormal(median=4, sigma=0.8))
    assert 3.7 < statistics.median(sample) < 4.3
    assert statistics.quantiles(sample, n=100)[98] > 4 * 4


def test_pareto_starts_at_its_minimum() -> None:
    """No draw is below `minimum`; the mean is near `alpha x minimum / (alpha - 1)`."""
    sample = draws(Pareto(minimum=2, alpha=3))
    assert min(sample) >= 2
    assert 2.8 < statistics.fmean(sample) < 3.2


@pytest.mark.parametrize(
    "distribution",
    [
        pytest.param(LogNormal(median=4, sigma=2, cap=30), id="lognormal"),
        pytest.param(Pareto(minimum=2, alpha=0.8, cap=30), id="pareto"),
    ],
)
def test_cap_bounds_the_tail(distribution: LogNormal | Pareto) -> None:
    """With `cap`, no draw is longer, and some reach it."""
    sample = draws(distribution)
    assert max(sample) == 30


@pytest.mark.parametrize(
    "distribution",
    [
        pytest.param(LogNormal(median=4, sigma=0.8), id="lognormal"),
        pytest.param(Pareto(minimum=2, alpha=1.5), id="pareto"),
    ],
)
def test_draws_are_seeded(distribution: LogNormal | Pareto) -> None:
    """The same seed gives the same durations; one draw of the RNG per duration."""
    assert draws(distribution, seed=9, count=50) == draws(distribution, seed=9, count=50)
    assert draws(distribution, seed=9, count=50) != draws(distribution, seed=10, count=50)
    rng = random.Random(0)
    distribution.sample(rng)
    reference = random.Random(0)
    reference.random()
    assert reference.random() == rng.random()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: LogNormal(median=0, sigma=1), id="lognormal-median-0"),
        pytest.param(lambda: LogNormal(median=3, sigma=-1), id="lognormal-sigma-negative"),
        pytest.param(lambda: LogNormal(median=math.inf, sigma=1), id="lognormal-median-inf"),
        pytest.param(lambda: LogNormal(median=3, sigma=1, cap=0), id="lognormal-cap-0"),
        pytest.param(lambda: Pareto(minimum=0, alpha=2), id="pareto-minimum-0"),
        pytest.param(lambda: Pareto(minimum=2, alpha=0), id="pareto-alpha-0"),
        pytest.param(lambda: Pareto(minimum=2, alpha=2, cap=1), id="pareto-cap-below-minimum"),
    ],
)
def test_invalid_distributions_are_refused(make: object) -> None:
    """Non-positive or infinite parameters, and a cap below the minimum, raise ValueError."""
    with pytest.raises(ValueError, match="must be"):
        make()  # type: ignore[operator]


@pytest.mark.anyio
async def test_durations_by_model() -> None:
    """A mapping gives each model its own durations; other models draw from the default."""
    sim = Simulator(
        clock=VirtualClock(),
        durations={"gpt-4o-image": 5, "gpt-4o-image-beta": (40, 50)},
    )
    assert isinstance(sim.durations, ByModel)
    async with api(sim) as client:
        fast = (await create(client)).json()["id"]
        slow = (await create(client, model="gpt-4o-image-beta")).json()["id"]
        other = (await create(client, model="z-image-turbo")).json()["id"]
    assert 5 == sim.task(fast).duration
    assert 40 <= sim.task(slow).duration <= 50
    assert 8 <= sim.task(other).duration <= 30  # the default, Uniform(8, 30)


def test_by_model_takes_a_default_and_any_durations() -> None:
    """`ByModel` converts pairs and numbers, and falls back to its `default`."""
    by_model = ByModel({"a": (1, 2), "b": LogNormal(median=3, sigma=0.5)}, default=7)
    assert Uniform(1, 2) == by_model.for_model("a")
    assert LogNormal(median=3, sigma=0.5) == by_model.for_model("b")
    assert Fixed(7) == by_model.for_model("c")
    assert 7 == by_model.sample(random.Random(0))


@pytest.mark.anyio
async def test_without_durations_each_kind_takes_its_own_time() -> None:
    """By default videos take minutes, audio under two, images seconds."""
    sim = Simulator(clock=VirtualClock(), seed=3)
    async with api(sim) as client:
        image = (await create(client, model="gpt-image-2")).json()["id"]
        video = await client.post(
            "/v1/videos/generations",
            json={"model": "kling-v3-text-to-video", "prompt": "a fox", "duration": 5},
        )
        audio = await client.post(
            "/v1/audios/generations", json={"model": "doubao-seed-audio-1-0", "prompt": "hello"}
        )
    assert 8 <= sim.task(image).duration <= 30
    assert 60 <= sim.task(video.json()["id"]).duration <= 240
    assert 20 <= sim.task(audio.json()["id"]).duration <= 90
