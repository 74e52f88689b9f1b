"""`batch(journal=..., run=...)` and `generate_many(..., journal=...)`: a run cut short and
resumed ends every input once, and never creates one twice."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path

import anyio
import pytest

from evolink import (
    AsyncEvolink,
    EntryStatus,
    InputRecord,
    JournalError,
    OutcomeKind,
    SQLiteJournal,
)
from evolink.testing import TEST_API_KEY, Faults, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

PROMPTS = [f"a lighthouse in a storm, take {i}" for i in range(24)]
CREATE = "/v1/images/generations"


def _client(sim: Simulator, clock: VirtualClock) -> AsyncEvolink:
    return AsyncEvolink(
        api_key=TEST_API_KEY, base_url="https://sim.test", transport=sim.transport(), clock=clock
    )


def _tasks_made(sim: Simulator) -> Counter[str]:
    """Tasks the simulator made, by prompt: each create it answered that was not a replay."""
    return Counter(
        r.body["prompt"]
        for r in sim.requests
        if r.method == "POST" and r.path == CREATE and r.status == 200 and not r.replayed
    )


@pytest.mark.parametrize(
    ("faults", "resends"),
    [
        pytest.param(Faults(), False, id="clean"),
        # Half the answers come late: cut short, some creates are sent and unanswered.
        pytest.param(Faults(slow_response=0.5, slow_delay=4.0), True, id="slow-answers"),
    ],
)
async def test_a_cancelled_run_resumes_without_creating_twice(
    tmp_path: Path, faults: Faults, resends: bool
):
    """Cancel a generate_many a second after its 10th create, run it again on the same
    journal: every input ends once, completed, and the simulator made one task per prompt
    (a create whose answer was lost is found in the listing, or resent under its key)."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=5, faults=faults)
    journal = tmp_path / "runs.sqlite3"
    async with clock.running(), _client(sim, clock) as client:
        async with anyio.create_task_group() as tg:
            sent = 0

            async def cancel_soon() -> None:
                await clock.sleep(1.0)
                tg.cancel_scope.cancel()

            def stop_after_ten(index: int, request: object, key: str) -> None:
                nonlocal sent
                sent += 1
                if sent == 10:
                    tg.start_soon(cancel_soon)

            first = client.images.generate_many(
                PROMPTS, max_in_flight=6, journal=journal, run="r", on_create=stop_after_ten
            )
            await first
        cut = first.report()
        second = await client.images.generate_many(
            PROMPTS, max_in_flight=6, journal=journal, run="r"
        )
    assert len(cut) < len(PROMPTS)
    assert list(range(len(PROMPTS))) == [o.index for o in second.outcomes]
    assert [OutcomeKind.COMPLETED] * len(PROMPTS) == [o.kind for o in second.outcomes]
    assert Counter(PROMPTS) == _tasks_made(sim)  # one task per prompt, over both runs
    done_before = {o.index for o in cut.outcomes if o.kind is OutcomeKind.COMPLETED}
    assert done_before == {o.index for o in second.outcomes if o.resumed}
    # A create cut short unanswered is found in the task listing (or else resent under
    # its key and answered by a replay): never a second task.
    uncertain = {o.idempotency_key for o in cut.outcomes if o.kind is OutcomeKind.UNCERTAIN}
    replayed = {r.idempotency_key for r in sim.requests if r.replayed}
    assert replayed <= uncertain
    assert resends == bool(uncertain)
    async with SQLiteJournal.open(journal) as store:
        entries = await store.entries("r")
    assert {EntryStatus.COMPLETED} == {e.status for e in entries.values()}
    assert len(PROMPTS) == len(entries)


async def test_a_third_run_sends_nothing(tmp_path: Path):
    """A run resumed after it finished reports every outcome from the journal."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1)
    journal = str(tmp_path / "runs.sqlite3")
    async with clock.running(), _client(sim, clock) as client:
        first = await client.images.generate_many(PROMPTS[:4], journal=journal)
        before = len(sim.requests)
        again = await client.images.generate_many(PROMPTS[:4], journal=journal)
    assert before == len(sim.requests)
    assert all(o.resumed for o in again.outcomes)
    assert [o.task_id for o in first.outcomes] == [o.task_id for o in again.outcomes]
    assert [o.results for o in first.outcomes] == [o.results for o in again.outcomes]
    assert first.charged == sum(o.credits.charged for o in again.outcomes)


async def test_runs_in_one_journal_are_separate(tmp_path: Path):
    """Two run names in one journal are two runs: the second creates its own tasks."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1)
    store = SQLiteJournal.open(tmp_path / "runs.sqlite3")
    async with clock.running(), _client(sim, clock) as client:
        for run in ("monday", "tuesday"):
            async with client.batch(journal=store, run=run) as batch:
                await batch.submit_all(PROMPTS[:3])
            assert not any(o.resumed for o in batch.report().outcomes)
    store.close()
    assert Counter(dict.fromkeys(PROMPTS[:3], 2)) == _tasks_made(sim)


async def test_a_known_task_is_read_not_created(tmp_path: Path):
    """An input whose task id the journal holds (its run stopped before it ended) is read
    again on resume: no create is sent for it."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=2)
    journal = tmp_path / "runs.sqlite3"
    async with clock.running(), _client(sim, clock) as client:
        with anyio.CancelScope() as scope:
            async with client.batch(journal=journal, on_created=lambda i, t: scope.cancel()) as b:
                await b.submit(PROMPTS[0])
        creates = sim.count("POST", CREATE)
        async with SQLiteJournal.open(journal) as store:
            [entry] = (await store.entries("default")).values()
        assert entry.task_id is not None
        async with client.batch(journal=journal) as batch:
            await batch.submit(PROMPTS[0])
    assert creates == sim.count("POST", CREATE) == 1
    [outcome] = batch.report().outcomes
    assert (OutcomeKind.COMPLETED, entry.task_id) == (outcome.kind, outcome.task_id)
    assert not outcome.resumed


async def test_another_input_at_an_index_is_refused(tmp_path: Path):
    """Resuming a run with other inputs rejects those (code journal_mismatch), sends nothing
    for them, and leaves the journal's record as it was."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1)
    journal = tmp_path / "runs.sqlite3"
    async with clock.running(), _client(sim, clock) as client:
        await client.images.generate_many(["a red fox"], journal=journal)
        report = await client.images.generate_many(["a blue whale"], journal=journal)
    [outcome] = report.outcomes
    assert (OutcomeKind.REJECTED, "journal_mismatch") == (outcome.kind, outcome.error_code)
    assert 1 == sim.count("POST", CREATE)
    async with SQLiteJournal.open(journal) as store:
        assert "a red fox" == (await store.entries("default"))[0].body["prompt"]


async def test_a_journal_that_cannot_write_stops_the_batch(tmp_path: Path):
    """A create the journal could not record is never sent; the batch raises the error."""

    class Broken:
        def __init__(self, store: SQLiteJournal) -> None:
            self._store = store

        def __getattr__(self, name: str) -> object:
            return getattr(self._store, name)

        async def record_create(self, *_: object) -> None:
            raise OSError("disk full")

    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1)
    store = SQLiteJournal.open(tmp_path / "runs.sqlite3")
    async with clock.running(), _client(sim, clock) as client:
        with pytest.raises(OSError, match="disk full"):
            await client.images.generate_many(PROMPTS[:3], journal=Broken(store))  # type: ignore[arg-type]
    store.close()
    assert 0 == sim.count("POST", CREATE)


def test_a_path_that_is_not_a_journal_is_refused(tmp_path: Path):
    """`journal=` naming a file that is not SQLite raises JournalError on entry."""
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\n" * 200)

    async def main() -> None:
        async with AsyncEvolink(api_key=TEST_API_KEY) as client:
            async with client.batch(journal=path):
                pass  # pragma: no cover - never entered

    with pytest.raises(JournalError):
        anyio.run(main)


def test_the_blocking_client_resumes_on_a_store_opened_outside_it(tmp_path: Path):
    """A store opened in the caller's thread serves the blocking client's loop thread, and
    generate_many on it twice creates each input once."""
    from evolink import Evolink  # noqa: PLC0415 - this test only

    sim = Simulator(seed=5, durations=0.2)
    with contextlib.closing(SQLiteJournal.open(tmp_path / "runs.sqlite3")) as store:
        with Evolink(api_key=TEST_API_KEY, transport=sim.transport()) as client:
            first = client.images.generate_many(PROMPTS[:3], journal=store)
            again = client.images.generate_many(PROMPTS[:3], journal=store)
    assert first.ok
    assert all(o.resumed for o in again.outcomes)
    assert 3 == sim.count("POST", CREATE)


async def test_a_resend_carries_the_callback_url_it_was_sent_with(tmp_path: Path):
    """A lost create is resent byte for byte, with the callback URL of the first process
    (a restarted app has another callback token; another body would be refused, 409)."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1)
    store = SQLiteJournal.open(tmp_path / "runs.sqlite3")
    body = {
        "model": "gpt-image-2",
        "prompt": PROMPTS[0],
        "callback_url": "https://my.app/evolink/callbacks/old-token",
    }
    await store.record_create(
        InputRecord(run="default", index=0, body=body), "key-lost-0123456789abcdef"
    )
    async with clock.running(), _client(sim, clock) as client:
        async with client.batch(
            journal=store, callback_url="https://my.app/evolink/callbacks/new-token"
        ) as batch:
            await batch.submit(PROMPTS[0])
    store.close()
    [create] = [r for r in sim.requests if r.path == CREATE]
    assert "key-lost-0123456789abcdef" == create.idempotency_key
    assert body["callback_url"] == create.body["callback_url"]
    assert batch.report().ok
