"""Fixtures for the simulator's tests."""

from __future__ import annotations

import pytest

from evolink.testing import VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()
