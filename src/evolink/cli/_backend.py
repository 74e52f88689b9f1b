"""Where the CLI's requests go: the real API, or the simulator in this process.

Two HTTP clients come out of `open_backend`: the SDK client (it carries the API key) and a
plain one for result images, which live on another host and must never see the key.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx

from evolink._client import AsyncEvolink
from evolink.cli._demo import DEMO_DURATIONS, SIMULATOR_KEY

#: Timeouts for image downloads: CDNs answer fast, images are a few MB.
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


@attrs.frozen(kw_only=True)
class Target:
    """What the user asked to talk to."""

    simulate: bool = False
    api_key: str | None = None
    base_url: str | None = None
    #: The simulator's task durations (seconds, at least and at most).
    durations: tuple[float, float] = DEMO_DURATIONS
    #: The share of simulated tasks that fail.
    failures: float = 0.0
    seed: int | None = None
    #: The client's `max_poll_interval`: the longest a running task goes unread.
    max_poll_interval: float | None = None


def make_simulator(*, durations: tuple[float, float], failures: float, seed: int | None) -> Any:
    """The in-process simulator, on the system clock, with tasks of `durations` seconds."""
    testing = importlib.import_module("evolink.testing")  # only when simulating
    faults = testing.Faults(task_failure=failures)
    return testing.Simulator(seed=seed, durations=durations, faults=faults)


@asynccontextmanager
async def open_backend(target: Target) -> AsyncIterator[tuple[AsyncEvolink, httpx.AsyncClient]]:
    """The SDK client and the image client for `target`.

    Raises:
        ConfigurationError: no API key (and not simulating).
    """
    if target.simulate:
        simulator = make_simulator(
            durations=target.durations, failures=target.failures, seed=target.seed
        )
        client = AsyncEvolink(
            api_key=SIMULATOR_KEY,
            transport=simulator.transport(),
            allow_local_callbacks=True,
            max_poll_interval=target.max_poll_interval,
        )
        images = httpx.AsyncClient(transport=simulator.transport(), timeout=DOWNLOAD_TIMEOUT)
    else:
        client = AsyncEvolink(
            api_key=target.api_key,
            base_url=target.base_url,
            max_poll_interval=target.max_poll_interval,
        )
        images = httpx.AsyncClient(timeout=DOWNLOAD_TIMEOUT, follow_redirects=True)
    async with client, images:
        yield client, images
