"""Run the docs' examples against a real simulator, the way a user would.

A simulator is served over HTTP for the session, with tasks that take a fraction of a
second, and `EVOLINK_API_KEY` / `EVOLINK_BASE_URL` point at it: so `AsyncEvolink()` in an
example talks to it exactly as it would talk to the API after the tutorial's `export`s.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

#: Seconds a simulated task takes, at least and at most: short, so the examples are fast.
TASK_DURATIONS = (0.05, 0.25)
#: Any key works on the simulator.
DOCS_KEY = "sk-evo-docs-examples"


def _simulator_class() -> Any:
    try:
        from evolink.testing import Simulator  # noqa: PLC0415 - may not exist yet
    except ImportError:
        return None
    return Simulator


class _ServerClock:
    """The system clock, one second ahead: as a server's clock may be.

    The API stamps `created` in whole seconds, so a task's age as the client computes it
    can be up to a second too old; for the sub-second tasks used here, that would distort
    the read plan (real tasks take tens of seconds). A server ahead of the client makes the
    age negative instead, which the client clamps to zero.
    """

    def time(self) -> float:
        return time.time() + 1.0

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


def _make_simulator(simulator_class: Any) -> Any:
    # No rate limits and a large balance (the defaults): the examples show the SDK at work.
    return simulator_class(
        clock=_ServerClock(), seed=1, durations=TASK_DURATIONS, pending_time=0.02
    )


@pytest.fixture(scope="session")
def served_simulator() -> Iterator[str]:
    """The simulator served on a free loopback port for the session; yields its base URL."""
    simulator_class = _simulator_class()
    if simulator_class is None:
        pytest.skip("evolink.testing.Simulator is not available yet")
    import uvicorn  # noqa: PLC0415 - only when serving

    sim = _make_simulator(simulator_class)
    config = uvicorn.Config(
        sim.app,
        host="127.0.0.1",
        port=0,
        interface="asgi3",
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="docs-simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the simulator did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def docs_environment(
    served_simulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    """What a reader has after the tutorial's set-up: the variables set, a scratch folder."""
    monkeypatch.setenv("EVOLINK_API_KEY", DOCS_KEY)
    monkeypatch.setenv("EVOLINK_BASE_URL", served_simulator)
    monkeypatch.chdir(tmp_path)
    assert os.environ["EVOLINK_BASE_URL"] == served_simulator
    return tmp_path
