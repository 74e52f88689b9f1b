"""`EvolinkIntegration.start_batch(..., journal=...)`: an app restarted mid-batch resumes it."""

# No `from __future__ import annotations`: FastAPI reads handler annotations at runtime.

from collections import Counter
from pathlib import Path

import pytest
from fastapi import FastAPI

from evolink import AsyncEvolink, OutcomeKind
from evolink.fastapi import EvolinkIntegration
from evolink.testing import TEST_API_KEY, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

PROMPTS = [f"a paper boat on a canal, take {i}" for i in range(12)]


def _integration(sim: Simulator, clock: VirtualClock) -> EvolinkIntegration:
    # No secret given: each "process" has its own callback token, as after a restart.
    return EvolinkIntegration(
        public_url="https://my.app",
        client_factory=lambda: AsyncEvolink(
            api_key=TEST_API_KEY,
            base_url="https://sim.test",
            transport=sim.transport(),
            clock=clock,
        ),
    )


async def test_a_restarted_app_resumes_its_batch(tmp_path: Path):
    """The app stops mid-batch (its lifespan ends); the next one starts the same batch on
    the same journal: every input completes, and no prompt gets a second task."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=4)
    journal = tmp_path / "app-batches.sqlite3"
    first_app = _integration(sim, clock)
    async with clock.running():
        async with first_app.lifespan(FastAPI()):
            first = first_app.batch(
                first_app.start_batch(PROMPTS, max_in_flight=4, journal=journal, run="nightly")
            )
            while first.progress().completed < 3:
                await clock.sleep(0.5)
        assert not first.report().ok
        second_app = _integration(sim, clock)
        async with second_app.lifespan(FastAPI()):
            second = second_app.batch(
                second_app.start_batch(PROMPTS, max_in_flight=4, journal=journal, run="nightly")
            )
            while not second.finished:
                await clock.sleep(1)
    report = second.report()
    assert [OutcomeKind.COMPLETED] * len(PROMPTS) == [o.kind for o in report.outcomes]
    assert any(o.resumed for o in report.outcomes)
    made = Counter(
        r.body["prompt"]
        for r in sim.requests
        if r.path == "/v1/images/generations" and r.status == 200 and not r.replayed
    )
    assert Counter(PROMPTS) == made
