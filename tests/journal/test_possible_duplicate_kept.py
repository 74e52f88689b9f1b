"""A possible duplicate stays flagged across runs of a journal: the outcome a resumed run
adopts (or reaches again) still says the input may have been paid twice."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from test_resume_listing import PROMPTS, _client, _LosingAnswers, _two_runs

from evolink import AsyncEvolink, OutcomeKind, SQLiteJournal
from evolink.testing import TEST_API_KEY, Fixed, Simulator, VirtualClock

pytestmark = pytest.mark.anyio


async def test_a_flagged_input_adopted_by_a_later_run_stays_flagged(tmp_path: Path):
    """The probe of a key-ignoring server made a second task (run 2, flagged): run 3
    adopts it without sending anything and reports it flagged still, as the journal
    keeps it (input 2, left uncertain in run 2, is run 3's own probe)."""
    sim, _, second = await _two_runs(tmp_path, lose={1, 2})
    assert second[1].possible_duplicate
    clock = VirtualClock()
    async with clock.running(), _client(sim.transport(), clock) as client:
        third = await client.images.generate_many(
            PROMPTS, max_in_flight=1, journal=tmp_path / "runs.sqlite3", run="r"
        )
    adopted = third.outcomes[1]
    assert (OutcomeKind.COMPLETED, True, True) == (
        adopted.kind,
        adopted.resumed,
        adopted.possible_duplicate,
    )
    assert adopted.task_id == second[1].task_id
    assert not any(o.possible_duplicate for o in third.outcomes if o.index not in (1, 2))
    async with SQLiteJournal.open(tmp_path / "runs.sqlite3") as store:
        entries = await store.entries("r")
    assert entries[1].possible_duplicate


async def test_a_run_killed_after_a_flagged_resend_leaves_the_flag(tmp_path: Path):
    """Within a run, a create's answer is lost and resent (retries on) to a server that
    ignores keys: the flag is journaled as the resend leaves, so a run killed before the
    input ends still hands it to the resume, whose outcome is flagged."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=5, idempotency=False, durations=Fixed(300))
    journal = tmp_path / "runs.sqlite3"

    def client(transport) -> AsyncEvolink:  # type: ignore[no-untyped-def]
        return AsyncEvolink(
            api_key=TEST_API_KEY,
            base_url="https://sim.test",
            transport=transport,
            clock=clock,
            max_retries=2,
        )

    async with clock.running():
        async with client(_LosingAnswers(sim, {0})) as first:
            with anyio.move_on_after(60):
                await first.images.generate_many(PROMPTS[:2], journal=journal, run="r")
        async with SQLiteJournal.open(journal) as store:
            killed = await store.entries("r")
        async with client(sim.transport()) as second:
            resumed = await second.images.generate_many(PROMPTS[:2], journal=journal, run="r")
    assert (True, False) == (killed[0].possible_duplicate, killed[1].possible_duplicate)
    assert [OutcomeKind.COMPLETED] * 2 == [o.kind for o in resumed.outcomes]
    assert [True, False] == [o.possible_duplicate for o in resumed.outcomes]
    made = [t for t in sim.tasks.values() if t.prompt == PROMPTS[0]]
    assert 2 == len(made)  # what the flag warns of
