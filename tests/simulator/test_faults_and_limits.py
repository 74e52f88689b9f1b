"""Each fault knob does what it says, deterministically; and the rate limits."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from _sim_support import CREATE, api, create, create_id

from evolink.testing import TASK_ERROR_CODES, Faults, Fixed, Simulator, VirtualClock

pytestmark = pytest.mark.anyio
IDEMPOTENT = {"Idempotency-Key": "lost-0123456789abcdef"}
BODY = {"model": "gpt-4o-image", "prompt": "a fox"}


async def test_rate_limit_storm(clock: VirtualClock) -> None:
    """`rate_limit=1` answers every API request 429 with the configured Retry-After."""
    sim = Simulator(clock=clock, faults=Faults(rate_limit=1.0), retry_after=2)
    async with api(sim) as client:
        created = await create(client)
        read = await client.get("/v1/tasks/task-unified-1-x")
        credits = await client.get("/v1/credits")
    assert [429, 429, 429] == [created.status_code, read.status_code, credits.status_code]
    assert "2" == created.headers["retry-after"]
    assert ("rate_limit_exceeded", "rate_limit_error") == (
        created.json()["error"]["code"],
        created.json()["error"]["type"],
    )
    assert "evo_api_error" == read.json()["error"]["type"]
    assert 429 == credits.json()["error"]["code"]
    assert {"rate_limit"} == {r.fault for r in sim.requests}
    assert {} == dict(sim.tasks)


async def test_rate_limit_storm_window(clock: VirtualClock) -> None:
    """A storm with a window blows only between its start and end."""
    sim = Simulator(clock=clock, faults=Faults(rate_limit=1.0, rate_limit_window=(10, 20)))
    statuses = []
    async with api(sim) as client:
        for _ in range(3):
            statuses.append((await client.get("/v1/models")).status_code)
            clock.advance(10)
    assert [200, 429, 200] == statuses


async def test_rate_limit_fraction_is_seeded(clock: VirtualClock) -> None:
    """A partial storm refuses about its fraction, the same requests for the same seed."""

    async def run() -> list[int]:
        sim = Simulator(clock=VirtualClock(), seed=4, faults=Faults(rate_limit=0.5))
        async with api(sim) as client:
            return [(await client.get("/v1/models")).status_code for _ in range(200)]

    first, second = await run(), await run()
    assert first == second
    assert 70 < first.count(429) < 130


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_create_errors(clock: VirtualClock, status: int) -> None:
    """`create_errors` answers creates with a 5xx and makes no task; reads are untouched."""
    sim = Simulator(
        clock=clock, faults=Faults(create_errors=1.0, error_statuses=(status,)), retry_after=1
    )
    async with api(sim) as client:
        response = await create(client)
        listed = await client.get("/v1/tasks")
    assert (status, 200) == (response.status_code, listed.status_code)
    assert ("retry-after" in response.headers) is (status == 503)
    assert {} == dict(sim.tasks)
    assert Decimal(0) == sim.ledger.reserved


async def test_read_errors(clock: VirtualClock) -> None:
    """`read_errors` answers task reads (single, batch, list) with 5xx; creates work."""
    sim = Simulator(clock=clock, faults=Faults(read_errors=1.0, error_statuses=(502,)))
    async with api(sim) as client:
        task_id = await create_id(client)
        single = await client.get(f"/v1/tasks/{task_id}")
        batch = await client.post("/v1/tasks/batch", json={"task_ids": [task_id]})
        listed = await client.get("/v1/tasks")
    assert [502, 502, 502] == [single.status_code, batch.status_code, listed.status_code]
    assert ("upstream_error", "upstream_error") == (
        single.json()["error"]["code"],
        single.json()["error"]["type"],
    )


async def test_lost_create_response(clock: VirtualClock) -> None:
    """A lost answer: the task exists and is reserved, the client sees a protocol error,
    and a retry with the same Idempotency-Key replays the task instead of making another."""
    sim = Simulator(clock=clock, faults=Faults(lost_create_response=1.0))
    async with api(sim) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(CREATE, json=BODY, headers=IDEMPOTENT)
        assert 1 == len(sim.tasks)
        assert Decimal("2.5") == sim.ledger.outstanding
        replay = await client.post(CREATE, json=BODY, headers=IDEMPOTENT)
    assert 200 == replay.status_code
    assert [*sim.tasks] == [replay.json()["id"]]
    assert ["lost_response", None] == [r.fault for r in sim.requests]


async def test_slow_response_past_the_timeout(clock: VirtualClock) -> None:
    """A slow answer past the read timeout raises ReadTimeout; the create still happened."""
    sim = Simulator(clock=clock, faults=Faults(slow_response=1.0, slow_delay=30))
    async with clock.running(), api(sim) as client:
        started = clock.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await client.post(CREATE, json=BODY, timeout=5)
        waited = clock.monotonic() - started
    assert 5 == waited
    assert 1 == len(sim.tasks)
    assert "slow" == sim.requests[0].fault


async def test_slow_response_within_the_timeout(clock: VirtualClock) -> None:
    """A slow answer within the timeout arrives, `slow_delay` seconds of clock later."""
    sim = Simulator(clock=clock, faults=Faults(slow_response=1.0, slow_delay=3))
    async with clock.running(), api(sim) as client:
        started = clock.monotonic()
        response = await client.get("/v1/models", timeout=5)
        waited = clock.monotonic() - started
    assert (200, 3) == (response.status_code, waited)


async def test_malformed_json(clock: VirtualClock) -> None:
    """`malformed_json` cuts a successful body short; the create behind it happened."""
    sim = Simulator(clock=clock, faults=Faults(malformed_json=1.0))
    async with api(sim) as client:
        response = await create(client)
    assert 200 == response.status_code
    with pytest.raises(ValueError, match=r"Expecting|Unterminated|Extra|Invalid"):
        response.json()
    assert 1 == len(sim.tasks)


@pytest.mark.parametrize("code", TASK_ERROR_CODES)
async def test_task_failure_codes(clock: VirtualClock, code: str) -> None:
    """A failing task ends `failed` with the chosen documented code, part-way through."""
    sim = Simulator(
        clock=clock, durations=Fixed(20), faults=Faults(task_failure=1.0, failure_codes=(code,))
    )
    async with api(sim) as client:
        task_id = await create_id(client)
        truth = sim.task(task_id)
        clock.advance(truth.duration)
        body = (await client.get(f"/v1/tasks/{task_id}")).json()
    assert 2 <= truth.duration <= 20
    assert ("failed", code, "task_error") == (
        body["status"],
        body["error"]["code"],
        body["error"]["type"],
    )
    assert body["error"]["message"]
    assert body["progress"] < 100


async def test_cancellation(clock: VirtualClock) -> None:
    """`cancellation` ends tasks `cancelled` (undocumented status), nothing charged."""
    sim = Simulator(clock=clock, durations=Fixed(20), faults=Faults(cancellation=1.0))
    async with api(sim) as client:
        task_id = await create_id(client)
        clock.advance(20)
        body = (await client.get(f"/v1/tasks/{task_id}")).json()
    assert ("cancelled", False) == (body["status"], body["task_info"]["can_cancel"])


async def test_partial_completion_needs_n_above_one(clock: VirtualClock) -> None:
    """`partial_completion` never takes the only image of an n=1 task."""
    sim = Simulator(clock=clock, faults=Faults(partial_completion=1.0))
    async with api(sim) as client:
        task_id = await create_id(client, n=1)
    assert 1 == sim.task(task_id).images


async def test_fates_mix_by_probability(clock: VirtualClock) -> None:
    """Failure and cancellation rates come out near their probabilities."""
    sim = Simulator(clock=clock, seed=9, faults=Faults(task_failure=0.2, cancellation=0.1))
    async with api(sim) as client:
        for _ in range(300):
            await create(client)
    fates = [t.final_status.value for t in sim.tasks.values()]
    assert 40 < fates.count("failed") < 80
    assert 15 < fates.count("cancelled") < 50


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"rate_limit": 1.5}, "probability", id="probability"),
        pytest.param({"slow_delay": -1}, ">= 0", id="negative-delay"),
        pytest.param({"error_statuses": (404,)}, "5xx", id="not-5xx"),
        pytest.param({"failure_codes": ()}, "at least one", id="no-codes"),
        pytest.param({"rate_limit_window": (5, 1)}, "start", id="window"),
        pytest.param({"task_failure": 0.7, "cancellation": 0.5}, "exceed", id="fates-over-1"),
    ],
)
def test_faults_refuse_nonsense(kwargs: dict[str, object], match: str) -> None:
    """Fault knobs are checked when made."""
    with pytest.raises(ValueError, match=match):
        Faults(**kwargs)  # type: ignore[arg-type]


async def test_max_concurrent_tasks(clock: VirtualClock) -> None:
    """Past `max_concurrent_tasks` unfinished tasks per key, creates answer 429."""
    sim = Simulator(clock=clock, durations=Fixed(10), max_concurrent_tasks=2, retry_after=1.5)
    async with api(sim) as client, api(sim, key="sk-evo-another-key-0002") as other:
        statuses = [(await create(client)).status_code for _ in range(3)]
        refused = await create(client)
        elsewhere = await create(other)
        clock.advance(10)
        again = await create(client)
    assert [200, 200, 429] == statuses
    assert ("rate_limit_exceeded", "1.5") == (
        refused.json()["error"]["code"],
        refused.headers["retry-after"],
    )
    assert (200, 200) == (elsewhere.status_code, again.status_code)


async def test_max_requests_per_second(clock: VirtualClock) -> None:
    """A token bucket of `max_requests_per_second` per key refuses the excess with 429."""
    sim = Simulator(clock=clock, max_requests_per_second=2)
    async with api(sim) as client:
        burst = [(await client.get("/v1/models")).status_code for _ in range(3)]
        clock.advance(0.5)
        refilled = (await client.get("/v1/models")).status_code
        empty = (await client.get("/v1/models")).status_code
    assert [200, 200, 429, 200, 429] == [*burst, refilled, empty]
