"""Helpers for the platform services' tests: a client into a simulator, small images."""

from __future__ import annotations

from typing import Any

from evolink import AsyncEvolink, RetryPolicy
from evolink.testing import TEST_API_KEY, Simulator, VirtualClock
from evolink.testing._png import render_png

BASE_URL = "http://simulator.evolink.invalid"
FAST_RETRIES = RetryPolicy(initial_delay=0.0, max_delay=0.0, max_retry_after=0.0)


def png(index: int = 0) -> bytes:
    """A small, valid PNG; a different `index` gives different bytes."""
    return render_png(f"reference {index}", 8, 8, index)


def client_for(sim: Simulator, **kwargs: Any) -> AsyncEvolink:
    """An async client into `sim`, on its clock, with instant retries."""
    kwargs.setdefault("api_key", TEST_API_KEY)
    kwargs.setdefault("base_url", BASE_URL)
    kwargs.setdefault("retry_policy", FAST_RETRIES)
    kwargs.setdefault("clock", sim.clock)
    return AsyncEvolink(transport=sim.transport(), **kwargs)


def simulator(**kwargs: Any) -> Simulator:
    kwargs.setdefault("clock", VirtualClock())
    return Simulator(**kwargs)
