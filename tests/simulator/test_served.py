"""The simulator over a real socket, `python -m evolink.testing`, and the SDK against both."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from _sim_support import AUTH, CREATE

from evolink import AsyncEvolink
from evolink._clock import SYSTEM_CLOCK
from evolink.testing import TEST_API_KEY, Faults, Fixed, Simulator, VirtualClock, _serve
from evolink.testing import __main__ as cli

pytestmark = pytest.mark.anyio
BODY = {"model": "gpt-4o-image", "prompt": "a fox"}


async def test_served_endpoints() -> None:
    """Served by uvicorn in a thread, the simulator answers over HTTP like in-process."""
    sim = Simulator(clock=SYSTEM_CLOCK, durations=Fixed(0.05))
    with sim.serve_in_thread() as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as client:
            created = await client.post(CREATE, json=BODY)
            time.sleep(0.06)  # noqa: ASYNC251 - the server runs in another thread
            read = await client.get(f"/v1/tasks/{created.json()['id']}")
            image = await client.get(read.json()["results"][0])
    assert (200, "completed", 200) == (
        created.status_code,
        read.json()["status"],
        image.status_code,
    )
    assert read.json()["results"][0].startswith(base_url)
    assert created.headers["x-request-id"]


async def test_served_lost_response_drops_the_connection() -> None:
    """Served, a lost create answer is a connection closed mid-response; the task exists."""
    sim = Simulator(clock=SYSTEM_CLOCK, faults=Faults(lost_create_response=1.0))
    with sim.serve_in_thread() as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(CREATE, json=BODY)
    assert 1 == len(sim.tasks)


async def test_served_slow_response_times_out() -> None:
    """Served, a slow answer past the client's timeout is a real ReadTimeout."""
    sim = Simulator(clock=SYSTEM_CLOCK, faults=Faults(slow_response=1.0, slow_delay=0.5))
    with sim.serve_in_thread() as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=0.1) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get("/v1/models")


async def test_client_example_in_process(clock: VirtualClock) -> None:
    """The SDK's own flow (create, wait, credits) runs on the in-process transport."""
    sim = Simulator(clock=clock, durations=Fixed(100))
    async with (
        clock.running(),
        AsyncEvolink(
            api_key=TEST_API_KEY,
            transport=sim.transport(),
            clock=clock,
            base_url="http://simulator.evolink.invalid",
        ) as client,
    ):
        task = await client.images.generate("a lighthouse at dusk", n=2)
        done = await client.tasks.wait(task.id)
        credits = await client.credits()
    assert ("completed", 2) == (done.status.value, len(done.results))
    assert Decimal(5) == done.usage.credits_used if done.usage else None
    assert credits.user is not None
    assert Decimal(9995) == credits.user.remaining_credits
    assert 100 <= clock.monotonic() < 105


async def test_client_example_served() -> None:
    """The SDK's own flow runs against the served simulator through `base_url`."""
    sim = Simulator(durations=Fixed(0.2))
    with sim.serve_in_thread() as base_url:
        async with AsyncEvolink(api_key=TEST_API_KEY, base_url=base_url) as client:
            task = await client.images.generate("a koi pond in autumn")
            done = await client.tasks.wait(task.id, timeout=10)
    assert "completed" == done.status.value


def test_cli_knobs() -> None:
    """`python -m evolink.testing` options become Simulator knobs."""
    args, knobs = cli.knobs_from_args(
        [
            "--port",
            "0",
            "--seed",
            "3",
            "--durations",
            "2",
            "6",
            "--task-failure",
            "0.1",
            "--no-batch-endpoint",
            "--allow-local-callbacks",
            "--retry-after",
            "2",
        ]
    )
    assert (0, "127.0.0.1") == (args.port, args.host)
    sim = Simulator(**knobs)
    assert (3, (2.0, 6.0), 0.1) == (
        sim.seed,
        (sim.durations.low, sim.durations.high),
        sim.faults.task_failure,
    )  # type: ignore[attr-defined]
    assert (False, True, 2.0) == (sim.batch_endpoint, sim.allow_local_callbacks, sim.retry_after)


def test_cli_main_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    """`main` and `serve` hand uvicorn the simulator's app with the options given."""
    calls: list[tuple[Any, dict[str, Any]]] = []

    class FakeUvicorn:
        @staticmethod
        def run(app: Any, **options: Any) -> None:
            calls.append((app, options))

    monkeypatch.setattr(_serve, "uvicorn_module", lambda: FakeUvicorn)
    cli.main(["--port", "8123", "--host", "0.0.0.0", "--seed", "4"])  # noqa: S104
    sim = Simulator()
    _serve.serve(simulator=sim, port=9)
    assert {"host": "0.0.0.0", "port": 8123, "log_level": "info", "lifespan": "on"} == calls[0][1]  # noqa: S104
    assert isinstance(calls[0][0], type(sim.app))
    assert sim.app is calls[1][0]


def test_python_dash_m_serves() -> None:
    """`python -m evolink.testing --port 0` serves the simulator in its own process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "evolink.testing", "--port", "0", "--log-level", "info"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        # uvicorn says where it listens: "Uvicorn running on http://127.0.0.1:PORT ...".
        for line in process.stderr:
            found = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
            if found:
                break
        else:
            pytest.fail("the simulator did not start")
        response = httpx.get(f"http://127.0.0.1:{found[1]}/v1/models", headers=AUTH)
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert 200 == response.status_code


def test_serve_in_thread_reports_a_failed_start() -> None:
    """A server that cannot start (port taken) raises instead of hanging."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(RuntimeError, match="did not start"),
            Simulator().serve_in_thread(port=port),
        ):
            pass
