"""In-process attacks: the PostgreSQL journal's resume, the shared credits and brake, secrets."""

from __future__ import annotations

import collections
from decimal import Decimal

import anyio
import anyio.lowlevel
import httpx
import psycopg
import pytest

from evolink import (
    AsyncEvolink,
    JournalError,
    OutcomeKind,
    PostgresBrake,
    PostgresCredits,
    PostgresJournal,
)
from evolink._shared_limits import Verdict
from evolink.testing import TEST_API_KEY, Fixed, Simulator

pytestmark = pytest.mark.anyio

PASSWORD = "Pw-" + "x7Q9zLm2Vb"


class DropAnswers(httpx.AsyncBaseTransport):
    """Forwards to the simulator; for the first `drop` creates, the task is made and the
    answer is lost (a connection reset after the server acted)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, drop: int) -> None:
        self.inner = inner
        self.drop = drop

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and "/generations" in request.url.path and self.drop > 0:
            self.drop -= 1
            await response.aread()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


class NoListing(httpx.AsyncBaseTransport):
    """Forwards to the simulator, but the account's task listing cannot be read (a server or
    proxy without `GET /v1/tasks`): a resume then resends its lost creates under their keys."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.rstrip("/") == "/v1/tasks":
            return httpx.Response(404, json={"error": {"code": "not_found"}}, request=request)
        return await self.inner.handle_async_request(request)


def _creates_by_prompt(sim: Simulator) -> collections.Counter[str]:
    made: collections.Counter[str] = collections.Counter()
    for r in sim.requests:
        if r.method == "POST" and r.path.endswith("/generations") and r.status == 200:  # noqa: SIM102
            if not r.replayed and r.body is not None:
                made[r.body["prompt"]] += 1
    return made


async def test_postgres_journal_resume_resends_under_recorded_key(db: str) -> None:
    """Promise (docs/how-to/resume.md, 'a create sent, its answer lost | resends it under the
    same idempotency key', when the listing cannot be read; issue 17 part 1: the PostgreSQL
    journal implements the same protocol): a run whose create answers were all lost, resumed
    on the same PostgreSQL journal and run, creates every prompt exactly once on the server
    and completes all. (With a listing, eight creates lost in one second are told apart by
    nothing there: `test_postgres_journal_resume_same_second_ends_uncertain`.)"""
    sim = Simulator(durations=Fixed(0.3), seed=3)
    prompts = [f"a heron at dawn, {i}" for i in range(8)]
    async with AsyncEvolink(
        api_key=TEST_API_KEY, transport=DropAnswers(sim.transport(), drop=10**6), max_retries=0
    ) as client:
        first = await client.images.generate_many(prompts, max_in_flight=4, journal=db, run="r1")
    assert all(o.kind is not OutcomeKind.COMPLETED for o in first.outcomes)
    assert len(first) == len(prompts)
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=NoListing(sim.transport())) as client:
        second = await client.images.generate_many(prompts, max_in_flight=4, journal=db, run="r1")
    assert [o.kind for o in second.outcomes] == [OutcomeKind.COMPLETED] * len(prompts)
    made = _creates_by_prompt(sim)
    assert made == collections.Counter(prompts), made
    # A third run on the same journal and run sends nothing at all.
    before = len(sim.requests)
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport()) as client:
        third = await client.images.generate_many(prompts, max_in_flight=4, journal=db, run="r1")
    assert all(o.resumed for o in third.outcomes)
    assert not [r for r in sim.requests[before:] if r.method == "POST"]


async def test_postgres_journal_resume_same_second_resolves_by_replay(db: str) -> None:
    """Promise (docs/how-to/resume.md, 'several tasks it could be'): eight creates lost in
    the same second, resumed on a PostgreSQL journal. One is resent under its key as a
    probe; the simulator (which honours keys) answers with the task it made, and the others
    are then resent under their keys too: each input ends with its own task, none is made
    twice, and a later run sends no create.

    (Written blind against the earlier promise, 'ends `uncertain` ... nothing is resent';
    changed with it: a key-honouring server now finishes the job.)"""
    sim = Simulator(durations=Fixed(0.3), seed=3)
    prompts = [f"a crane at dusk, {i}" for i in range(8)]
    async with AsyncEvolink(
        api_key=TEST_API_KEY, transport=DropAnswers(sim.transport(), drop=10**6), max_retries=0
    ) as client:
        await client.images.generate_many(prompts, max_in_flight=4, journal=db, run="r2")
    assert _creates_by_prompt(sim) == collections.Counter(prompts)
    made = {t.prompt: t.id for t in sim.tasks.values()}
    for later in (False, True):
        before = len(sim.requests)
        async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport()) as client:
            report = await client.images.generate_many(
                prompts, max_in_flight=4, journal=db, run="r2"
            )
        assert [OutcomeKind.COMPLETED] * len(prompts) == [o.kind for o in report.outcomes]
        assert [made[p] for p in prompts] == [o.task_id for o in report.outcomes]
        assert not any(o.possible_duplicate for o in report.outcomes)
        creates = [r for r in sim.requests[before:] if r.path == "/v1/images/generations"]
        assert (0 if later else len(prompts)) == len(creates)
        assert all(r.replayed for r in creates)
    assert len(sim.tasks) == len(prompts)


async def test_postgres_journal_adopts_recorded_task_ids(db: str) -> None:
    """Promise (docs/how-to/resume.md, 'a task id | reads that task and watches it, creates
    nothing'): a run cut short after its creates answered, resumed on a PostgreSQL journal,
    adopts each task and creates nothing again."""
    sim = Simulator(durations=Fixed(3), seed=4)
    prompts = [f"a fox in snow, {i}" for i in range(6)]
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport()) as client:
        with anyio.move_on_after(1.0):
            await client.images.generate_many(prompts, max_in_flight=6, journal=db, run="cut")
    assert len(_creates_by_prompt(sim)) == len(prompts)
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport()) as client:
        report = await client.images.generate_many(prompts, max_in_flight=6, journal=db, run="cut")
    assert [o.kind for o in report.outcomes] == [OutcomeKind.COMPLETED] * len(prompts)
    assert _creates_by_prompt(sim) == collections.Counter(prompts)


async def test_credit_reservations_racing_never_exceed_budget(db: str) -> None:
    """Promise (issue 17 part 3; docs/explanation/guarantees.md 'The budget at every moment'):
    'max_credits holds across all workers of a run at every moment (reservations taken
    atomically in the database)' -- 'no two workers take the last credits at once'."""
    journals = [await PostgresJournal.open(db, max_connections=8) for _ in range(4)]
    try:
        await PostgresCredits.open(journals[0].pool, "race", Decimal(10))
        credits = [PostgresCredits(j.pool, "race") for j in journals]
        verdicts: list[Verdict] = []
        peaks: list[Decimal] = []
        stop = anyio.Event()

        async def sample() -> None:
            while not stop.is_set():
                committed, _ = await credits[0].committed()
                peaks.append(committed)
                await anyio.lowlevel.checkpoint()

        async def take(i: int) -> None:
            verdicts.append(await credits[i % 4].reserve(i, Decimal(3)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(sample)
            async with anyio.create_task_group() as racers:
                for i in range(40):
                    racers.start_soon(take, i)
            stop.set()
        assert verdicts.count(Verdict.FITS) == 3
        committed, budget = await credits[0].committed()
        assert committed == Decimal(9) and budget == Decimal(10)  # noqa: PT018
        assert max(peaks) <= Decimal(10)
        # The same input reserved again (a worker taking it over) takes nothing more.
        assert await credits[1].reserve(0 if verdicts[0] is Verdict.FITS else 39, Decimal(3)) in (
            Verdict.FITS,
            Verdict.WAIT,
        )
        assert (await credits[0].committed())[0] == Decimal(9)
    finally:
        for j in journals:
            await j.aclose()


async def test_brake_from_one_worker_holds_another(db: str) -> None:
    """Promise (issue 17 part 3; docs/how-to/many-machines.md 'One budget, one brake'): 'A 429
    one worker meets holds every worker of the run for its Retry-After ... read by each worker
    at most every quarter second.'"""
    a_journal = await PostgresJournal.open(db)
    b_journal = await PostgresJournal.open(db)
    try:
        a = PostgresBrake(a_journal.pool, "nightly")
        b = PostgresBrake(b_journal.pool, "nightly")
        other_run = PostgresBrake(b_journal.pool, "another")
        assert await b.remaining() == 0
        a.rate_limited(5.0)
        assert await a.remaining() > 4
        await anyio.sleep(0.4)
        assert await b.remaining() > 3.5
        assert await other_run.remaining() == 0
        assert await b.hits() == 1
    finally:
        await a_journal.aclose()
        await b_journal.aclose()


class Storm(httpx.AsyncBaseTransport):
    """Answers 429 (Retry-After: 3) to the first create it sees, then forwards; logs times."""

    def __init__(self, inner: httpx.AsyncBaseTransport, storm: bool) -> None:
        self.inner = inner
        self.storm = storm
        self.times: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(anyio.current_time())
        if self.storm and request.method == "POST":
            self.storm = False
            return httpx.Response(
                429,
                headers={"Retry-After": "3"},
                json={
                    "error": {
                        "code": "rate_limit_exceeded",
                        "message": "slow",
                        "type": "rate_limit_error",
                    }
                },
            )
        return await self.inner.handle_async_request(request)


async def test_429_in_one_batch_slows_another_batch_of_the_run(db: str) -> None:
    """Promise (issue 17 part 3): 'a 429 seen by one worker slows all of them (a shared brake
    with its end time)'. Two batches of one run share `PostgresBrake`; the first meets a 429
    with Retry-After 3 on its first create: the second sends nothing for most of those 3 s."""
    sim = Simulator(durations=Fixed(0.3), seed=5)
    ja = await PostgresJournal.open(db)
    jb = await PostgresJournal.open(db)
    ta = Storm(sim.transport(), storm=True)
    tb = Storm(sim.transport(), storm=False)
    hit_at: list[float] = []
    try:
        async with (
            AsyncEvolink(api_key=TEST_API_KEY, transport=ta) as ca,
            AsyncEvolink(api_key=TEST_API_KEY, transport=tb) as cb,
        ):

            async def run_a() -> None:
                async with ca.batch(
                    max_in_flight=2, shared_brake=PostgresBrake(ja.pool, "storm")
                ) as batch:
                    await batch.submit("a lighthouse, a")
                    hit_at.append(anyio.current_time())

            async def run_b() -> None:
                await anyio.sleep(0.8)  # well after A's 429 and a brake refresh
                async with cb.batch(
                    max_in_flight=2, shared_brake=PostgresBrake(jb.pool, "storm")
                ) as batch:
                    for i in range(3):
                        await batch.submit(f"a lighthouse, b{i}")

            start = anyio.current_time()
            async with anyio.create_task_group() as tg:
                tg.start_soon(run_a)
                tg.start_soon(run_b)
    finally:
        await ja.aclose()
        await jb.aclose()
    first_429 = ta.times[0]
    assert tb.times, "B sent nothing"
    # B started at ~0.8 s; the brake runs until ~first_429 + 3 s.
    early = [t for t in tb.times if t < first_429 + 2.5]
    assert not early, (
        f"B sent {len(early)} request(s) during A's brake: {[round(t - start, 2) for t in early]}"
    )


async def test_journal_errors_and_repr_never_show_the_password(db: str) -> None:
    """Promise (docs/how-to/app-replicas.md): 'never the API key, the token or the database
    password, and neither do the log lines and errors (the database URL's password is shown
    as ***)'. libpq URLs also carry the password as `?password=`."""
    host = db.split("@", 1)[1]
    # trust authentication: any password connects, so the opened journal can be inspected.
    with_password = f"postgresql://evolink:{PASSWORD}@{host}"
    async with await PostgresJournal.open(with_password) as journal:
        assert PASSWORD not in repr(journal)
    unreachable = [
        f"postgresql://evolink:{PASSWORD}@127.0.0.1:1/nowhere",
        f"postgresql://evolink:{PASSWORD}@127.0.0.1:1/nowhere?connect_timeout=2",
    ]
    for url in unreachable:
        with pytest.raises(JournalError) as caught:
            await PostgresJournal.open(url)
        text = str(caught.value) + repr(caught.value)
        assert PASSWORD not in text, text


async def test_journal_with_query_password_repr_hides_it(db: str) -> None:
    """Promise (docs/how-to/app-replicas.md): 'the database URL's password is shown as ***'
    -- a libpq URL's password given as `?password=` is a password all the same."""
    url = f"{db}?password={PASSWORD}"
    async with await PostgresJournal.open(url) as journal:
        assert PASSWORD not in repr(journal)
    with pytest.raises(JournalError) as caught:
        await PostgresJournal.open(
            f"postgresql://127.0.0.1:1/nowhere?user=evolink&password={PASSWORD}"
        )
    assert PASSWORD not in str(caught.value), str(caught.value)


async def test_schema_tables_hold_no_api_key(db: str) -> None:
    """Promise (src docstring of the PostgreSQL journal; docs/how-to/app-replicas.md): the API
    key is never written to the database."""
    sim = Simulator(durations=Fixed(0.2), seed=6)
    key = "sk-evo-" + "Zq8" * 12
    async with AsyncEvolink(api_key=key, transport=sim.transport()) as client:
        report = await client.images.generate_many(
            [f"an owl {i}" for i in range(3)], journal=db, run="keys"
        )
    assert report.ok
    with psycopg.connect(db) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema='public'"
            )
        ]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608
                assert key not in repr(row), table
                assert key[-8:] not in repr(row), table


async def test_postgres_journal_rejects_other_inputs_at_same_index(db: str) -> None:
    """Promise (docs/how-to/resume.md: 'another request at this index | rejects the input
    (journal_mismatch) and sends nothing'), kept by the PostgreSQL journal as by SQLite."""
    sim = Simulator(durations=Fixed(0.2), seed=13)
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport()) as client:
        first = await client.images.generate_many(["a yak", "a gnu"], journal=db, run="m")
        assert first.ok
        before = len([r for r in sim.requests if r.method == "POST"])
        second = await client.images.generate_many(["a yak", "a kudu"], journal=db, run="m")
    kinds = [o.kind for o in second.outcomes]
    assert kinds[0] is OutcomeKind.COMPLETED and second.outcomes[0].resumed  # noqa: PT018
    assert kinds[1] is OutcomeKind.REJECTED, second.outcomes[1]
    assert len([r for r in sim.requests if r.method == "POST"]) == before


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_postgres_journal_on_trio_is_a_typed_error_before_sending(db: str) -> None:
    """Promise (docs/how-to/many-machines.md: 'PostgreSQL stores run on asyncio ..., not on
    trio'; docs/reference/errors.md: JournalError raised by `batch(journal=...)` on entry):
    on trio a PostgreSQL journal is a JournalError, and nothing is sent."""
    sim = Simulator(durations=Fixed(0.2), seed=14)
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport()) as client:
        with pytest.raises(JournalError):
            await client.images.generate_many(["a yak"], journal=db, run="t")
    assert not [r for r in sim.requests if r.method == "POST"]


async def test_unknown_price_probe_goes_out_once_per_run(db: str) -> None:
    """Promise (docs/explanation/guarantees.md, 'The budget at every moment', Not guaranteed):
    'Until a model's price is known, one create of it goes out alone and may take the run over
    the budget by its own reservation, in one process as on many. Workers learn prices from
    the run's earlier reservations.' Four batches (four workers) of one run share its
    PostgreSQL credits, budget 5 (two images at 2.5): at most one create beyond the budget,
    so at most three images are reserved on the server."""
    sim = Simulator(durations=Fixed(1.0), seed=15, publish_prices=False)
    journals = [await PostgresJournal.open(db) for _ in range(4)]
    try:
        await PostgresCredits.open(journals[0].pool, "probe", Decimal(5))

        async def worker(w: int) -> None:
            async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport()) as client:
                async with client.batch(
                    max_in_flight=3,
                    journal=journals[w],
                    run="probe",
                    max_credits=5,
                    shared_credits=PostgresCredits(journals[w].pool, "probe"),
                    shared_brake=PostgresBrake(journals[w].pool, "probe"),
                ) as batch:
                    for k in range(3):
                        await batch.submit(f"a wren {w}-{k}", journal_index=w * 3 + k)

        async with anyio.create_task_group() as tg:
            for w in range(4):
                tg.start_soon(worker, w)
    finally:
        for j in journals:
            await j.aclose()
    made = sum(_creates_by_prompt(sim).values())
    peak = max(c for _, c in sim.ledger.committed_over_time())
    assert made <= 3, f"{made} creates with a budget of 5"
    assert peak <= Decimal("7.5"), f"peak committed {peak} of a budget of 5"
