"""End to end, through the public client against the SDK's simulator (`evolink.testing`)
on a virtual clock, with hostile progress models (anything with `percent(fraction)`):
the band price run with the code as it is and with it undone; a cohort of tasks whose
progress lies steadily held to the 1 s loop."""

from __future__ import annotations

import contextlib
import math
import random

import anyio
import attrs
import pytest

from evolink import AsyncEvolink, _watcher
from evolink.testing import TEST_API_KEY, Estimates, LogNormal, Simulator, Uniform, VirtualClock

from . import _sim as harness


@attrs.frozen
class LyingProgress:
    """Reports `share` of the truth (agreeing with itself on an end 1 / share too late),
    then jumps to done."""

    share: float = 0.4

    def percent(self, fraction: float) -> int:
        return math.floor(100 * self.share * fraction)


@attrs.define
class JitteryProgress:
    """Linear progress times lognormal noise at each read (its own seeded draws)."""

    sigma: float = 0.1
    rng: random.Random = attrs.field(factory=lambda: random.Random(5))

    def percent(self, fraction: float) -> int:
        return min(99, math.floor(100 * fraction * math.exp(self.rng.gauss(0.0, self.sigma))))


@attrs.frozen
class Figures:
    elapsed: float
    oracle: float
    loop: float
    requests: float
    delay: float
    worst: float

    def __str__(self) -> str:
        return (
            f"elapsed {self.elapsed:.2f} s (oracle {self.oracle:.2f}, 1 s loop {self.loop:.0f}), "
            f"{self.requests:.2f} requests a task, delay {self.delay:.2f} s, "
            f"worst {self.worst:.2f} s"
        )


async def _batch(sim: Simulator, clock: VirtualClock, n: int, in_flight: int):
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport(), clock=clock) as c:
        async with clock.running():
            return await c.images.generate_many(
                [f"p{i}" for i in range(n)], max_in_flight=in_flight, batch_reads=False
            )


def _run(*, seed: int, n: int, in_flight: int, undone: bool = False, **knobs) -> Figures:
    """The batch; `undone`: with the band price undone."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=seed, batch_endpoint=False, **knobs)
    with contextlib.ExitStack() as stack:
        if undone:
            stack.enter_context(_patched(_watcher, "GET_COSTS", harness.OLD_GET_COSTS))
        report = anyio.run(_batch, sim, clock, n, in_flight)
    outcomes = report.outcomes
    assert all(o.kind.value == "completed" for o in outcomes)
    durations = [sim.task(o.task.id).duration for o in outcomes]
    delays = [o.elapsed - d for o, d in zip(outcomes, durations, strict=True)]
    return Figures(
        elapsed=report.elapsed,
        oracle=max(durations) if n == in_flight else math.nan,
        loop=max(math.ceil(d) for d in durations) if n == in_flight else math.nan,
        requests=report.requests / n,
        delay=sum(delays) / n,
        worst=max(delays),
    )


@contextlib.contextmanager
def _patched(module, name, value):
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


COHORT = {
    "durations": LogNormal(median=20, sigma=0.5, cap=300),
    "progress": LyingProgress(0.4),
    "estimates": Estimates(missing=True),
}


@pytest.mark.parametrize(
    "seed",
    [
        1,
        2,
        pytest.param(
            3,
            marks=[
                pytest.mark.soak,
                pytest.mark.xfail(
                    strict=True,
                    reason=(
                        "known limit, before any change attacked here: on a fresh client no "
                        "record judges the lying readings, which are trusted while they agree "
                        "(63.32 s against the loop's 62 s, mean delay 15.2 s)"
                    ),
                ),
            ],
        ),
    ],
)
def test_cohort_of_liars_never_slower_than_the_loop(seed: int) -> None:
    """A hundred tasks created at once, progress reporting 0.4 of the truth, no
    estimates: the batch ends no later than a 1 s loop's would (ceil of the longest).
    (A change that read such tasks where their agreeing readings put the end took all
    three seeds to 94.29 s against the loop's 79, 75 and 62 s: reverted.)"""
    new = _run(seed=seed, n=100, in_flight=100, **COHORT)
    assert new.elapsed <= new.loop + 0.5, str(new)


JITTER = {
    "durations": Uniform(2, 6),
    "estimates": Estimates(missing=True),
}


def test_noisy_progress_band_price() -> None:
    """300 tasks of 2-6 s, 50 in flight, progress x lognormal(0.1) noise, no estimates:
    the band price loses at most 1 % of elapsed (priced on every band: 26.76 s against
    26.44 s, at 4.24 requests a task against 4.63; held to narrow bands, where noisy
    progress's are not, the two spend within a few hundredths of a request)."""
    new = _run(seed=4, n=300, in_flight=50, progress=JitteryProgress(), **JITTER)
    old = _run(seed=4, n=300, in_flight=50, undone=True, progress=JitteryProgress(), **JITTER)
    assert new.elapsed <= 1.01 * old.elapsed, f"new: {new}\nold: {old}"
