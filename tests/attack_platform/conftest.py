"""Fixtures of issue 15's attack: a hostile server, a virtual clock, a client on both."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from attack15_server import SECRET, Hostile

from evolink import AsyncEvolink
from evolink.testing import VirtualClock


@pytest.fixture
def a15_clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def a15_server(a15_clock: VirtualClock) -> Hostile:
    return Hostile(now=a15_clock.time, sleep=a15_clock.sleep)


@pytest.fixture
async def a15_client(a15_server: Hostile, a15_clock: VirtualClock) -> AsyncIterator[AsyncEvolink]:
    async with AsyncEvolink(
        api_key=SECRET, transport=a15_server.transport(), clock=a15_clock, max_retries=2
    ) as client:
        yield client
