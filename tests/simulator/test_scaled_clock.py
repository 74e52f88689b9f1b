"""`ScaledClock`: real time run faster, for benchmarks against a served simulator."""

from __future__ import annotations

import math
import time

import anyio
import pytest

from evolink.testing import ScaledClock


def test_time_runs_speed_times_faster_from_the_anchor() -> None:
    """At the anchor clock time equals real time; after it, it runs `speed` times faster."""
    anchor = time.time() - 10
    clock = ScaledClock(4, anchor=anchor)
    assert pytest.approx(anchor + 40, abs=1) == clock.time()
    assert pytest.approx(time.monotonic() * 4, abs=0.5) == clock.monotonic()


def test_two_clocks_with_one_anchor_agree() -> None:
    """Clocks made apart (as in two processes) with the same speed and anchor agree."""
    anchor = time.time()
    assert (
        pytest.approx(ScaledClock(3, anchor=anchor).time(), abs=0.1)
        == ScaledClock(3, anchor=anchor).time()
    )


@pytest.mark.anyio
async def test_sleep_takes_a_fraction_of_real_time() -> None:
    """`sleep(1)` at speed 10 takes about 0.1 real seconds; negative sleeps checkpoint."""
    clock = ScaledClock(10)
    start = time.monotonic()
    await clock.sleep(1)
    await clock.sleep(-5)
    elapsed = time.monotonic() - start
    assert 0.09 <= elapsed < 0.5
    with anyio.move_on_after(1):
        await clock.sleep(0)


@pytest.mark.parametrize("speed", [0, -1, math.inf, math.nan])
def test_speed_must_be_positive_and_finite(speed: float) -> None:
    """A speed of 0, below 0, infinite or NaN raises ValueError."""
    with pytest.raises(ValueError, match="must be"):
        ScaledClock(speed)
