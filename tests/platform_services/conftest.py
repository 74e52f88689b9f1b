"""Fixtures for the platform services' tests: a simulator on a virtual clock, a client into it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from _platform_support import client_for

from evolink import AsyncEvolink
from evolink.testing import Simulator, VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def sim(clock: VirtualClock) -> Simulator:
    return Simulator(clock=clock, seed=7)


@pytest.fixture
async def client(sim: Simulator, clock: VirtualClock) -> AsyncIterator[AsyncEvolink]:
    async with clock.running(), client_for(sim) as made:
        yield made
