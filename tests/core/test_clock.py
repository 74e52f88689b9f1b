"""The virtual clock the core tests rely on: time moves only when everything waits on it."""

from __future__ import annotations

import math

import anyio
import pytest

from evolink.testing import VirtualClock
from evolink.testing._clock import DEFAULT_START

pytestmark = pytest.mark.anyio


async def test_sleep_jumps_virtual_time():
    """A long sleep under running() takes no real time and moves the clock exactly."""
    clock = VirtualClock()

    with anyio.fail_after(5):
        async with clock.running():
            await clock.sleep(3600)

    assert 3600 == clock.monotonic()
    assert DEFAULT_START + 3600 == clock.time()


async def test_sleepers_wake_in_deadline_order():
    """Concurrent sleepers wake in order of their deadlines."""
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    async with clock.running(), anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "late", 20)
        tg.start_soon(sleeper, "early", 5)

    assert [("early", 5), ("late", 20)] == woke


@pytest.mark.parametrize(
    "seconds",
    [pytest.param(0, id="zero"), pytest.param(-1, id="negative"), pytest.param(math.nan, id="nan")],
)
async def test_non_positive_sleep_is_a_checkpoint(seconds):
    """sleep(0), a negative or a NaN sleep returns at once without moving time."""
    clock = VirtualClock()

    await clock.sleep(seconds)

    assert 0 == clock.monotonic()


async def test_advance_by_hand():
    """advance() moves time and wakes the sleepers that became due."""
    clock = VirtualClock()
    woke = anyio.Event()

    async def sleeper() -> None:
        await clock.sleep(10)
        woke.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper)
        await anyio.wait_all_tasks_blocked()
        clock.advance(4)
        await anyio.wait_all_tasks_blocked()
        assert not woke.is_set()
        clock.advance(6)
        await woke.wait()

    assert 10 == clock.monotonic()


def test_time_only_moves_forward():
    """advance() refuses a negative step."""
    with pytest.raises(ValueError, match="forward"):
        VirtualClock().advance(-1)


async def test_running_waits_for_real_work():
    """Work not sleeping on the clock (a thread here) does not make time jump."""
    clock = VirtualClock()

    async with clock.running():
        assert 42 == await anyio.to_thread.run_sync(lambda: 42)

    assert 0 == clock.monotonic()
