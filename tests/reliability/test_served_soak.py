"""Soak over real sockets: the served simulator, a FastAPI app receiving its callbacks.

Every fault at once, callbacks delivered twice or late, a batch run by the app's
`EvolinkIntegration.start_batch`. 200 prompts in CI; `nox -s soak` runs 2,000.
"""

# No `from __future__ import annotations`: FastAPI reads annotations at runtime.

import os
import socket
import threading
import time
from collections import Counter
from decimal import Decimal

import httpx
import pytest
import uvicorn
from _figures import record
from fastapi import FastAPI

from evolink import AsyncEvolink, OutcomeKind, RetryPolicy
from evolink.fastapi import EvolinkIntegration
from evolink.testing import TEST_API_KEY, Faults, Simulator

PROMPTS = int(os.environ.get("EVOLINK_SOAK_PROMPTS", "200"))

FAULTS = Faults(
    rate_limit=0.10,
    read_errors=0.05,
    create_errors=0.03,
    lost_create_response=0.02,
    task_failure=0.05,
    callback_duplicate=0.3,
    callback_late=0.2,
    callback_late_by=1.0,
    callback_drop=0.05,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_served_soak_with_callbacks():
    """Over sockets, with callbacks: one outcome per input, one task per input, equal ledgers."""
    sim = Simulator(
        seed=11,
        durations=(0.3, 1.2),
        faults=FAULTS,
        retry_after=0.2,
        allow_local_callbacks=True,
        balance=Decimal(PROMPTS * 10),
    )
    port = free_port()
    with sim.serve_in_thread() as base_url:
        integration = EvolinkIntegration(
            public_url=f"http://127.0.0.1:{port}",
            client_factory=lambda: AsyncEvolink(
                api_key=TEST_API_KEY,
                base_url=base_url,
                allow_local_callbacks=True,
                retry_policy=RetryPolicy(max_retries=3, max_delay=1.0),
            ),
        )
        app = FastAPI(lifespan=integration.lifespan)
        app.include_router(integration.callback_router)

        @app.post("/start")
        async def start(count: int) -> dict:
            prompts = [f"served soak {i}" for i in range(count)]
            return {"id": integration.start_batch(prompts, max_in_flight=64, retry_failed=1)}

        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while not server.started:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            answer = httpx.post(f"http://127.0.0.1:{port}/start", params={"count": PROMPTS})
            batch = integration.batch(answer.json()["id"])
            deadline = time.monotonic() + 60 + PROMPTS * 0.1
            while not batch.finished:
                assert time.monotonic() < deadline, batch.progress()
                time.sleep(0.1)
            report = batch.report()
            time.sleep(1.5)  # late callbacks land
        finally:
            server.should_exit = True
            thread.join(timeout=10)

    assert PROMPTS == len(report.outcomes)
    assert 0 == report.counts[OutcomeKind.UNCERTAIN]
    per_prompt = Counter(task.prompt for task in sim.tasks.values())
    assert PROMPTS + report.resubmitted == sum(per_prompt.values())
    assert sim.ledger.reserved == report.reserved
    assert sim.ledger.charged == report.charged
    assert sim.ledger.released == report.released
    delivered = sum(1 for attempt in sim.callbacks if attempt.delivered)
    assert delivered > 0
    assert integration.deliveries > 0
    faults = Counter(r.fault for r in sim.requests if r.fault)
    record(
        "served_soak",
        {
            "prompts": PROMPTS,
            "requests": len(sim.requests),
            "faults": sum(faults.values()),
            "callbacks_delivered": delivered,
            "callback_deliveries_received": integration.deliveries,
            "lost": 0,
            "duplicated": 0,
        },
    )
