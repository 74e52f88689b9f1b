"""Fixtures for the core client's tests: a respx router behind the client's transport."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from _core_support import API_KEY, BASE_URL, FAST_RETRIES

from evolink import AsyncEvolink
from evolink.testing import VirtualClock


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """A respx router; every request must match a route."""
    mock = respx.MockRouter(base_url=BASE_URL, assert_all_called=False)
    yield mock
    mock.reset()


@pytest.fixture
def make_client(router: respx.MockRouter) -> Any:
    """Build clients that talk to `router` (no network)."""

    def make(**kwargs: Any) -> AsyncEvolink:
        kwargs.setdefault("api_key", API_KEY)
        kwargs.setdefault("base_url", BASE_URL)
        kwargs.setdefault("retry_policy", FAST_RETRIES)
        if "http_client" not in kwargs:
            kwargs.setdefault("transport", httpx.MockTransport(router.handler))
        return AsyncEvolink(**kwargs)

    return make


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock: backoff and polling sleeps take no real time."""
    return VirtualClock()
