"""A run's credits and 429 brake shared in PostgreSQL: atomic holds, one per input, and
one brake for every worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import anyio
import httpx
import pytest

from _postgres import fresh_database
from evolink import AsyncEvolink, OutcomeKind, PostgresJournal, SkipReason
from evolink._budget import Verdict
from evolink._limits_postgres import PostgresBrake, PostgresCredits
from evolink._pacer import SharedBackoff
from evolink._postgres import open_pool
from evolink.testing import TEST_API_KEY, Fixed, Simulator, VirtualClock

pytest.importorskip("psycopg")
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """psycopg's async connections run on asyncio only."""
    return "asyncio"


@pytest.fixture
async def pools(postgres_url: str) -> AsyncIterator[list]:
    """Two connection pools on one fresh database: two workers' views of it."""
    url = fresh_database(postgres_url)
    opened = [await open_pool(url, max_size=8), await open_pool(url, max_size=8)]
    yield opened
    for pool in opened:
        await pool.close()


async def test_reservations_hold_the_budget_under_concurrency(pools) -> None:
    """200 inputs reserving 3 credits each at once, from two pools, against 100: exactly
    33 are held, the run's total is 99, and the others wait (holds are open)."""
    sides = [await PostgresCredits.open(pool, "r", Decimal(100)) for pool in pools]
    verdicts: dict[int, Verdict] = {}

    async def reserve(index: int) -> None:
        verdicts[index] = await sides[index % 2].reserve(index, Decimal(3))

    async with anyio.create_task_group() as tg:
        for index in range(200):
            tg.start_soon(reserve, index)
    held = [i for i, v in verdicts.items() if v is Verdict.FITS]
    assert 33 == len(held)
    assert {Verdict.WAIT} == {v for v in verdicts.values() if v is not Verdict.FITS}
    assert (Decimal(99), Decimal(100)) == await sides[0].committed()


async def test_an_input_holds_once(pools) -> None:
    """A worker taking over an input finds its hold and adds nothing; settling sets it to
    the reservation, then the charge; a final hold taken again is held anew."""
    credits = await PostgresCredits.open(pools[0], "r", Decimal(10))
    other = PostgresCredits(pools[1], "r")
    assert Verdict.FITS == await credits.reserve(0, Decimal(3))
    assert Verdict.FITS == await other.reserve(0, Decimal(3))  # taken over: already held
    assert Decimal(3) == (await credits.committed())[0]
    credits.settle(0, Decimal("2.5"), final=False)
    credits.settle(0, Decimal(2), final=True)
    await credits.drain()
    assert Decimal(2) == (await credits.committed())[0]
    assert Verdict.FITS == await other.reserve(0, Decimal(3))  # a new create of it
    assert Decimal(5) == (await credits.committed())[0]


async def test_nothing_held_and_no_room_is_never(pools) -> None:
    """A create that cannot fit while nothing is held anywhere never will."""
    credits = await PostgresCredits.open(pools[0], "r", Decimal(2))
    assert Verdict.NEVER == await credits.reserve(0, Decimal(3))
    assert Verdict.FITS == await credits.reserve(1, Decimal(2))
    assert Verdict.WAIT == await credits.reserve(2, Decimal(1))
    assert Verdict.WAIT == await credits.reserve(3, Decimal(0))  # full: no probe either
    assert (Decimal(2), Decimal(2)) == await credits.committed()


async def test_one_probe_at_a_time_across_the_run(pools) -> None:
    """Creates of a price not yet known (held at 0) go out one at a time, whichever worker
    sends them: the run passes its budget by one reservation at most."""
    credits = await PostgresCredits.open(pools[0], "r", Decimal(5))
    other = PostgresCredits(pools[1], "r")
    assert Verdict.FITS == await credits.reserve(0, Decimal(0))
    assert Verdict.WAIT == await other.reserve(1, Decimal(0))  # the probe is unanswered
    assert Verdict.FITS == await other.reserve(2, Decimal(2))  # a known price is no probe
    credits.settle(0, Decimal("2.5"), final=False)
    await credits.drain()
    assert Verdict.FITS == await other.reserve(1, Decimal(0))  # answered; 4.5 of 5 held
    assert Verdict.WAIT == await credits.reserve(3, Decimal(0))  # the next probe is out
    other.settle(1, Decimal("2.5"), final=False)
    await other.drain()
    assert Verdict.WAIT == await credits.reserve(3, Decimal(0))  # 7 held: full, may shrink
    for index, amount in ((0, "2.5"), (1, "2.5"), (2, "2")):
        credits.settle(index, Decimal(amount), final=True)
    await credits.drain()
    assert Verdict.NEVER == await credits.reserve(3, Decimal(0))


async def test_a_kept_hold_is_waited_for_by_nothing(pools) -> None:
    """A hold kept for good (its create may have made a task) still counts, but no create
    waits for it to shrink; the input taken over again finds it held."""
    credits = await PostgresCredits.open(pools[0], "r", Decimal(4))
    assert Verdict.FITS == await credits.reserve(0, Decimal(3))
    assert Verdict.WAIT == await credits.reserve(1, Decimal(3))
    credits.keep(0)
    await credits.drain()
    assert Verdict.NEVER == await credits.reserve(1, Decimal(3))
    assert (Decimal(3), Decimal(4)) == await credits.committed()
    assert Verdict.FITS == await PostgresCredits(pools[1], "r").reserve(0, Decimal(3))
    assert Decimal(3) == (await credits.committed())[0]


async def test_an_uncertain_create_does_not_hold_the_batch_forever(pools) -> None:
    """The first create's answer is lost (no retries): its credits stay held for good, the
    second completes, and the third, which cannot fit, is skipped rather than waited for."""
    sim = Simulator(seed=4, durations=Fixed(0.2))
    lost = {"left": 1}

    class LoseFirstAnswer(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await sim.transport().handle_async_request(request)
            if request.method == "POST" and lost["left"]:
                lost["left"] -= 1
                raise httpx.ReadError("connection reset", request=request)
            return response

    credits = await PostgresCredits.open(pools[0], "lost", Decimal(5))
    async with AsyncEvolink(
        api_key=TEST_API_KEY, transport=LoseFirstAnswer(), max_retries=0
    ) as client:
        with anyio.fail_after(30):
            report = await client.images.generate_many(
                [f"a gull over a pier, {i}" for i in range(3)],
                model="gpt-image-2",
                max_in_flight=1,
                price_hints={"gpt-image-2": 2.5},
                shared_credits=credits,
            )
    kinds = [o.kind for o in report.outcomes]
    assert [OutcomeKind.UNCERTAIN, OutcomeKind.COMPLETED, OutcomeKind.SKIPPED] == kinds
    assert SkipReason.BUDGET == report.outcomes[2].reason


async def test_a_batch_never_takes_the_run_over_its_budget(pools) -> None:
    """Two batches (two workers) on one journaled run of 25 credits, 12 inputs of 2.5
    each: ten complete, two are skipped for the budget, the server reserved 25 at most."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=2, durations=Fixed(5))
    prompts = [f"a kite over a dune, {i}" for i in range(12)]
    outcomes = []

    async def worker(pool, indexes: range) -> None:
        credits = await PostgresCredits.open(pool, "kites", Decimal(25))
        client = AsyncEvolink(
            api_key=TEST_API_KEY,
            base_url="https://sim.test",
            transport=sim.transport(),
            clock=clock,
        )
        async with (
            client,
            client.batch(
                max_in_flight=4,
                price_hints={"gpt-image-2": 2.5},
                shared_credits=credits,
                model="gpt-image-2",
                journal=PostgresJournal(pool, "unused"),
                run="kites",
            ) as batch,
        ):
            for index in indexes:
                await batch.submit(prompts[index], journal_index=index)
        outcomes.extend(batch.report().outcomes)

    async with clock.running(), anyio.create_task_group() as tg:
        tg.start_soon(worker, pools[0], range(6))
        tg.start_soon(worker, pools[1], range(6, 12))
    kinds = [o.kind for o in outcomes]
    assert 10 == kinds.count(OutcomeKind.COMPLETED)
    assert [SkipReason.BUDGET] * 2 == [o.reason for o in outcomes if o.kind is OutcomeKind.SKIPPED]
    outstanding = Decimal(0)
    peak = Decimal(0)
    for entry in sim.ledger.entries:
        outstanding += entry.amount if entry.kind.value == "reserve" else 0
        outstanding -= entry.amount if entry.kind.value == "release" else 0
        peak = max(peak, outstanding)
    assert peak <= 25


async def test_a_429_brakes_every_worker(pools) -> None:
    """A brake put on by one worker holds another for as long, read from the database."""
    clock = VirtualClock()
    one = PostgresBrake(pools[0], "r", clock=clock, refresh=0)
    two = PostgresBrake(pools[1], "r", clock=clock, refresh=0)
    assert 0 == await two.remaining()
    one.rate_limited(30)
    assert 30 == pytest.approx(await one.remaining())
    assert 30 == pytest.approx(await two.remaining())
    clock.advance(10)
    assert 20 == pytest.approx(await two.remaining())
    assert 1 == await two.hits()


async def test_the_batch_brake_waits_for_the_shared_one(pools) -> None:
    """A batch's brake (`SharedBackoff`) waits out a brake another worker put on."""
    clock = VirtualClock()
    other = PostgresBrake(pools[0], "r", clock=clock, refresh=0)
    mine = SharedBackoff(clock, shared=PostgresBrake(pools[1], "r", clock=clock, refresh=0))
    other.rate_limited(12)
    await other.remaining()  # published
    start = clock.monotonic()
    async with clock.running():
        await mine.before_attempt()
    assert clock.monotonic() - start >= 12
    mine.rate_limited(5)
    assert mine.shared is not None
    await mine.shared.remaining()  # what the next attempt, waiting out the 429, does
    assert 5 == pytest.approx(await other.remaining())


async def test_an_unreachable_brake_fails_no_request(postgres_url: str) -> None:
    """A brake whose database is gone answers from what it knew, and says so in the log."""
    pool = await open_pool(fresh_database(postgres_url), max_size=1)
    brake = PostgresBrake(pool, "r", refresh=0)
    brake.rate_limited(30)
    await pool.close()
    assert 29 < await brake.remaining() <= 30
