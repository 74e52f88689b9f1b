"""The time model (status and progress from the clock) and the credit bookkeeping."""

from __future__ import annotations

from decimal import Decimal

import pytest
from _sim_support import api, create, create_id

from evolink.testing import (
    EntryKind,
    Faults,
    FinalStatus,
    Fixed,
    Simulator,
    Uniform,
    VirtualClock,
)

pytestmark = pytest.mark.anyio


async def test_pending_processing_completed(clock: VirtualClock) -> None:
    """A task is pending briefly, processing with rising progress, completed at its end."""
    sim = Simulator(clock=clock, durations=Fixed(40), pending_time=1.0)
    seen: list[tuple[str, int]] = []
    async with api(sim) as client:
        task_id = await create_id(client)
        for _ in range(45):
            body = (await client.get(f"/v1/tasks/{task_id}")).json()
            seen.append((body["status"], body["progress"]))
            clock.advance(1)
    statuses = [status for status, _ in seen]
    assert ["pending"] == statuses[:1]
    assert {"processing"} == set(statuses[1:40])
    assert {"completed"} == set(statuses[40:])
    progress = [p for _, p in seen]
    assert progress == sorted(progress)
    assert [0, 2, 50, 97, 100] == [progress[i] for i in (0, 1, 20, 39, 40)]


async def test_progress_predicts_the_end(clock: VirtualClock) -> None:
    """Progress is linear from creation: elapsed * 100 / (p + 0.5) is near the duration."""
    sim = Simulator(clock=clock, durations=Uniform(5, 60), seed=3)
    async with api(sim) as client:
        task_id = await create_id(client)
        truth = sim.task(task_id).duration
        clock.advance(truth * 0.37)
        progress = (await client.get(f"/v1/tasks/{task_id}")).json()["progress"]
    assert pytest.approx(truth, rel=0.03) == truth * 0.37 * 100 / (progress + 0.5)


async def test_estimated_time_is_close_not_exact(clock: VirtualClock) -> None:
    """`estimated_time` is a whole number within ±15% of the true duration (+ rounding)."""
    sim = Simulator(clock=clock, durations=Uniform(2, 100), seed=7)
    errors = []
    async with api(sim) as client:
        for _ in range(200):
            body = (await create(client)).json()
            estimate = body["task_info"]["estimated_time"]
            truth = sim.task(body["id"]).duration
            assert isinstance(estimate, int)
            assert estimate >= 1
            assert abs(estimate - truth) <= 0.15 * truth + 0.5
            errors.append(estimate - truth)
    assert any(abs(e) > 0.5 for e in errors), "estimates should not all be exact"


async def test_estimated_time_only_while_unfinished(clock: VirtualClock) -> None:
    """Reads of an unfinished task carry `estimated_time`; finished ones do not."""
    sim = Simulator(clock=clock, durations=Fixed(10))
    async with api(sim) as client:
        task_id = await create_id(client)
        clock.advance(5)
        running = (await client.get(f"/v1/tasks/{task_id}")).json()
        clock.advance(5)
        done = (await client.get(f"/v1/tasks/{task_id}")).json()
    assert "estimated_time" in running["task_info"]
    assert "estimated_time" not in done["task_info"]


async def test_seed_makes_runs_repeatable(clock: VirtualClock) -> None:
    """The same seed and requests give the same ids, durations and fates."""

    async def run(seed: int) -> list[tuple[str, float, FinalStatus]]:
        sim = Simulator(clock=VirtualClock(), seed=seed, faults=Faults(task_failure=0.3))
        async with api(sim) as client:
            for _ in range(10):
                await create(client)
        return [(t.id, t.duration, t.final_status) for t in sim.tasks.values()]

    assert await run(1) == await run(1)
    assert await run(1) != await run(2)


async def test_fault_knobs_do_not_shift_durations() -> None:
    """Turning on a fault leaves task durations as they were (separate random streams)."""

    async def durations(faults: Faults) -> list[float]:
        sim = Simulator(clock=VirtualClock(), seed=5, faults=faults)
        async with api(sim) as client:
            for _ in range(10):
                await create(client)
        return [t.full_duration for t in sim.tasks.values()]

    assert await durations(Faults()) == await durations(
        Faults(task_failure=0.5, slow_response=0.5, slow_delay=0.0)
    )


async def test_credits_reserved_charged_released(clock: VirtualClock) -> None:
    """Reserve price x n at create; charge price x images at the end; release the rest."""
    sim = Simulator(
        clock=clock, durations=Fixed(10), balance=100, faults=Faults(partial_completion=1.0)
    )
    async with api(sim) as client:
        task_id = await create_id(client, n=4)
        ledger = sim.ledger
        assert (Decimal(10), Decimal(0), Decimal(10)) == (
            ledger.reserved,
            ledger.charged,
            ledger.outstanding,
        )
        assert Decimal(90) == ledger.available
        assert Decimal(100) == ledger.balance
        clock.advance(10)
        body = (await client.get(f"/v1/tasks/{task_id}")).json()
    made = sim.task(task_id).images
    assert 1 <= made < 4
    assert made == len(body["results"])
    assert float(Decimal("2.5") * made) == body["usage"]["credits_used"]
    ledger = sim.ledger
    assert [EntryKind.RESERVE, EntryKind.CHARGE, EntryKind.RELEASE] == [
        entry.kind for entry in ledger.for_task(task_id)
    ]
    assert Decimal("2.5") * made == ledger.charged
    assert Decimal("2.5") * (4 - made) == ledger.released
    assert Decimal(0) == ledger.outstanding
    assert Decimal(100) - Decimal("2.5") * made == ledger.balance == ledger.available
    assert sim.task(task_id).ends_at == ledger.for_task(task_id)[-1].time


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(Faults(task_failure=1.0), id="failed"),
        pytest.param(Faults(cancellation=1.0), id="cancelled"),
    ],
)
async def test_failed_and_cancelled_release_everything(clock: VirtualClock, faults: Faults) -> None:
    """A failed or cancelled task is charged nothing; its reservation comes back."""
    sim = Simulator(clock=clock, durations=Fixed(10), faults=faults)
    async with api(sim) as client:
        task_id = await create_id(client, n=2)
        clock.advance(10)
        body = (await client.get(f"/v1/tasks/{task_id}")).json()
    assert 0 == body["usage"]["credits_used"]
    assert "results" not in body
    ledger = sim.ledger
    assert (Decimal(0), Decimal(5), Decimal(0)) == (
        ledger.charged,
        ledger.released,
        ledger.outstanding,
    )


async def test_ledger_settles_without_requests(clock: VirtualClock) -> None:
    """Reading the ledger settles tasks whose end passed, even with no request since."""
    sim = Simulator(clock=clock, durations=Fixed(10))
    async with api(sim) as client:
        await create_id(client)
    clock.advance(30)
    assert (Decimal("2.5"), Decimal(0)) == (sim.ledger.charged, sim.ledger.outstanding)


async def test_insufficient_quota(clock: VirtualClock) -> None:
    """A reservation the balance less outstanding reservations cannot cover answers 402."""
    sim = Simulator(clock=clock, durations=Fixed(10), balance="7.5")
    async with api(sim) as client:
        first = await create(client, n=2)
        refused = await create(client, n=2)
        fits = await create(client, n=1)
        clock.advance(10)
        after = await create(client, n=1)
    assert (200, 402, 200, 402) == tuple(r.status_code for r in (first, refused, fits, after))
    assert ("insufficient_quota", "insufficient_quota") == (
        refused.json()["error"]["code"],
        refused.json()["error"]["type"],
    )
    assert 2 == len(sim.tasks)


async def test_credits_endpoint_reflects_the_ledger(clock: VirtualClock) -> None:
    """`GET /v1/credits` reports what is left (less reservations) and what was used."""
    sim = Simulator(clock=clock, durations=Fixed(10), balance="100.1")
    async with api(sim) as client, api(sim, key="sk-evo-second-key-0001") as other:
        await create_id(client, n=2)
        await create_id(other, n=1)
        during = (await client.get("/v1/credits")).json()
        clock.advance(10)
        after = (await client.get("/v1/credits")).json()
    assert {"success": True, "message": ""} == {k: during[k] for k in ("success", "message")}
    assert pytest.approx(92.6) == during["data"]["user"]["remaining_credits"]
    assert 0 == during["data"]["user"]["used_credits"]
    assert pytest.approx(92.6) == after["data"]["user"]["remaining_credits"]
    assert 7.5 == after["data"]["user"]["used_credits"]
    assert 5.0 == after["data"]["token"]["used_credits"]
    assert after["data"]["token"]["unlimited_credits"] is False


async def test_truth_for_oracles(clock: VirtualClock) -> None:
    """`sim.tasks` holds each task's creation time, duration, end, n and images made."""
    sim = Simulator(clock=clock, durations=Uniform(2, 6), seed=11)
    async with api(sim) as client:
        ids = [await create_id(client, n=2) for _ in range(5)]
    assert ids == list(sim.tasks)
    for task in sim.tasks.values():
        assert 2 <= task.duration <= 6
        assert task.created + task.duration == task.ends_at
        assert (2, 2, FinalStatus.COMPLETED) == (task.n, task.images, task.final_status)
    clock.advance(6)
    assert 0 == sim.unfinished()


def test_distribution_arguments() -> None:
    """Durations accept a distribution, a (low, high) pair or seconds, and refuse nonsense."""
    assert Uniform(2, 6) == Simulator(durations=(2, 6)).durations
    assert Fixed(3.0) == Simulator(durations=3).durations
    with pytest.raises(ValueError, match="high"):
        Uniform(5, 2)
    with pytest.raises(ValueError, match="> 0"):
        Fixed(0)
    with pytest.raises(TypeError, match="durations"):
        Simulator(durations="slow")  # type: ignore[arg-type]
