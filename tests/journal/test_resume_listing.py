"""A resumed run looks for the tasks of creates whose answers were lost in the task listing
before it resends anything: on a server that ignores idempotency keys, no prompt is made
twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from pathlib import Path

import httpx
import pytest

from evolink import AsyncEvolink, OutcomeKind, SQLiteJournal
from evolink.testing import TEST_API_KEY, Fixed, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

PROMPTS = [f"a kite over the dunes, take {i}" for i in range(8)]
CREATE = "/v1/images/generations"


class _LosingAnswers(httpx.AsyncBaseTransport):
    """The simulator's transport, but the answers of the creates numbered `lose` (from 0)
    are lost on the way back: the task is made, the client never hears of it."""

    def __init__(self, sim: Simulator, lose: Collection[int]) -> None:
        self.inner = sim.transport()
        self.lose = lose
        self.creates = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path == CREATE:
            number, self.creates = self.creates, self.creates + 1
            if number in self.lose:
                raise httpx.RemoteProtocolError("peer closed the connection", request=request)
        return answer


def _client(transport: httpx.AsyncBaseTransport, clock: VirtualClock) -> AsyncEvolink:
    return AsyncEvolink(
        api_key=TEST_API_KEY,
        base_url="https://sim.test",
        transport=transport,
        clock=clock,
        max_retries=0,
    )


def _made(sim: Simulator) -> Counter[str]:
    """Creates the simulator answered (each made a task: it replays none), by prompt."""
    return Counter(
        r.body["prompt"]
        for r in sim.requests
        if r.method == "POST" and r.path == CREATE and r.status == 200 and not r.replayed
    )


async def _two_runs(
    tmp_path: Path, lose: Collection[int], *, listing: bool = True
) -> tuple[Simulator, list, list]:
    """A run (one create at a time, 5-minute tasks) whose creates `lose` are never answered,
    then the same run resumed on its journal; the simulator and both runs' outcomes."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=3, idempotency=False, durations=Fixed(300))
    journal = tmp_path / "runs.sqlite3"
    async with clock.running():
        async with _client(_LosingAnswers(sim, lose), clock) as client:
            first = await client.images.generate_many(
                PROMPTS, max_in_flight=1, journal=journal, run="r"
            )
        if not listing:
            await clock.sleep(sim.task_ttl + 1)  # every task gone from the listing
        async with _client(sim.transport(), clock) as client:
            second = await client.images.generate_many(
                PROMPTS, max_in_flight=1, journal=journal, run="r"
            )
    return sim, list(first.outcomes), list(second.outcomes)


async def test_lost_answers_are_found_in_the_listing_not_created_again(tmp_path: Path):
    """Two creates' answers lost (a server that ignores keys would make each again on a
    resend): the resumed run reads the listing once, adopts both tasks, and every prompt
    ends completed with its own task, made once."""
    sim, first, second = await _two_runs(tmp_path, lose={1, 4})

    assert [1, 4] == [o.index for o in first if o.kind is OutcomeKind.UNCERTAIN]
    assert [OutcomeKind.COMPLETED] * len(PROMPTS) == [o.kind for o in second]
    assert Counter(PROMPTS) == _made(sim)
    assert all(sim.task(o.task_id).prompt == o.request.prompt for o in second)
    assert 1 == sim.count("GET", "/v1/tasks") - sim.count("GET", "/v1/tasks/")
    async with SQLiteJournal.open(tmp_path / "runs.sqlite3") as store:
        entries = await store.entries("r")
    assert all(e.task_id == o.task_id for e, o in zip(entries.values(), second, strict=True))


async def test_two_lost_at_the_same_moment_on_a_server_ignoring_keys(tmp_path: Path):
    """Creates 1 and 2 were sent at the same instant and both answers lost: the listing
    shows two tasks either could be. The first is resent under its key as the run's one
    probe; the server makes a new task (it ignores keys), so that input keeps it, flagged
    a possible duplicate, and the second is neither resent (a fourth task) nor given a task
    that may be the other's: it stays uncertain, naming the candidates."""
    sim, first, second = await _two_runs(tmp_path, lose={1, 2})

    assert [1, 2] == [o.index for o in first if o.kind is OutcomeKind.UNCERTAIN]
    probe, other = second[1], second[2]
    assert (OutcomeKind.COMPLETED, True) == (probe.kind, probe.possible_duplicate)
    assert sim.task(probe.task_id).prompt == PROMPTS[1]
    assert (OutcomeKind.UNCERTAIN, "ambiguous_listing") == (other.kind, other.error_code)
    made = [t for t in sim.tasks.values() if t.prompt in (PROMPTS[1], PROMPTS[2])]
    assert all(t.id in (other.error_message or "") for t in made if t.id != probe.task_id)
    assert [OutcomeKind.COMPLETED] * 6 == [o.kind for o in second if o.index not in (1, 2)]
    assert not any(o.possible_duplicate for o in second if o.index != 1)
    assert Counter(PROMPTS) + Counter([PROMPTS[1]]) == _made(sim)


class _NoReplayHeader(httpx.AsyncBaseTransport):
    """The simulator's transport without the `Idempotency-Replayed` header: a server that
    replays keys without saying so."""

    def __init__(self, sim: Simulator) -> None:
        self.inner = sim.transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self.inner.handle_async_request(request)
        answer.headers.pop("Idempotency-Replayed", None)
        return answer


@pytest.mark.parametrize("says_so", [True, False], ids=["replay-header", "no-header"])
async def test_two_lost_at_the_same_moment_on_a_server_honouring_keys(
    tmp_path: Path, says_so: bool
):
    """The same, on a server that replays a key: the probe's resend is answered with the
    task its lost create made, which proves the server honours keys (whether or not it
    says so in a header), and the other is then resent under its own key too: every input
    completes with its own task, none made twice, and neither is flagged."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=3, durations=Fixed(300))
    journal = tmp_path / "runs.sqlite3"
    async with clock.running():
        async with _client(_LosingAnswers(sim, {1, 2}), clock) as client:
            await client.images.generate_many(PROMPTS, max_in_flight=1, journal=journal, run="r")
        made_before = {t.prompt: t.id for t in sim.tasks.values()}
        transport = sim.transport() if says_so else _NoReplayHeader(sim)
        async with _client(transport, clock) as client:
            report = await client.images.generate_many(
                PROMPTS, max_in_flight=1, journal=journal, run="r"
            )
            assert client.idempotency_confirmed
    second = list(report.outcomes)

    assert [OutcomeKind.COMPLETED] * len(PROMPTS) == [o.kind for o in second]
    assert [made_before[p] for p in PROMPTS] == [o.task_id for o in second]
    assert not any(o.possible_duplicate for o in second)
    assert Counter(PROMPTS) == _made(sim)
    replays = [r for r in sim.requests if r.method == "POST" and r.path == CREATE and r.replayed]
    assert [PROMPTS[1], PROMPTS[2]] == [r.body["prompt"] for r in replays]


async def test_a_create_the_listing_does_not_show_is_resent(tmp_path: Path):
    """The listing no longer shows the lost creates' tasks (they expired): the resumed
    run resends them under their keys, as it did before it read listings."""
    sim, _, second = await _two_runs(tmp_path, lose={1, 4}, listing=False)

    assert [OutcomeKind.COMPLETED] * len(PROMPTS) == [o.kind for o in second]
    assert Counter({p: 2 if p in (PROMPTS[1], PROMPTS[4]) else 1 for p in PROMPTS}) == _made(sim)


class _NoListing(httpx.AsyncBaseTransport):
    """The simulator's transport, but the task listing answers 503."""

    def __init__(self, sim: Simulator) -> None:
        self.inner = sim.transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/v1/tasks":
            return httpx.Response(503, json={"error": {"code": "service_unavailable"}})
        return await self.inner.handle_async_request(request)


async def test_a_listing_that_cannot_be_read_resends_as_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """The listing answers 503: the lost creates are resent under their keys (a server
    that honours them answers with the tasks made), and the log says why."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=3, durations=Fixed(300))
    journal = tmp_path / "runs.sqlite3"
    async with clock.running():
        async with _client(_LosingAnswers(sim, {1, 4}), clock) as client:
            await client.images.generate_many(PROMPTS, max_in_flight=1, journal=journal, run="r")
        async with _client(_NoListing(sim), clock) as client:
            second = await client.images.generate_many(
                PROMPTS, max_in_flight=1, journal=journal, run="r"
            )
    assert [OutcomeKind.COMPLETED] * len(PROMPTS) == [o.kind for o in second.outcomes]
    assert {PROMPTS[1], PROMPTS[4]} == {r.body["prompt"] for r in sim.requests if r.replayed}
    assert Counter(PROMPTS) == _made(sim)
    assert "task listing could not be read" in caplog.text


async def test_a_listing_read_not_far_enough_back_resends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The listing is read at most `MAX_LISTED` tasks back (here 2): a lost create older
    than that is not matched on half the evidence, it is resent as before (on a server
    that ignores keys, a second task)."""
    monkeypatch.setattr("evolink._task_recovery.MAX_LISTED", 2)
    sim, _, second = await _two_runs(tmp_path, lose={1})

    assert [OutcomeKind.COMPLETED] * len(PROMPTS) == [o.kind for o in second]
    assert 2 == _made(sim)[PROMPTS[1]]
