"""Matching a create never answered to a task of the listing: by model, type and time, one
to one or not at all."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evolink import EntryStatus, JournalEntry, Task, TaskStatus, TaskType
from evolink._resume import Listing
from evolink._task_recovery import EARLY, LATE, Unanswered, match

SENT = 1_767_225_600.0  # 2026-01-01, on the client's clock
KEY = "key-0123456789abcdef"


def _task(task_id: str, at: float, model: str = "gpt-image-2", kind: str = "image") -> Task:
    return Task(
        id=task_id,
        status=TaskStatus.PROCESSING,
        created=datetime.fromtimestamp(at, timezone.utc),
        model=model,
        type=TaskType(kind),
    )


def _pending(index: int, sent_at: float = SENT, model: str = "gpt-image-2") -> Unanswered:
    return Unanswered(index=index, model=model, kind="image", sent_at=sent_at)


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        pytest.param(_task("t", SENT + 0.9), True, id="same-second"),
        pytest.param(_task("t", SENT - EARLY), True, id="server-clock-behind"),
        pytest.param(_task("t", SENT + LATE), True, id="late-retry"),
        pytest.param(_task("t", SENT - EARLY - 1), False, id="before-the-send"),
        pytest.param(_task("t", SENT + LATE + 1), False, id="long-after"),
        pytest.param(_task("t", SENT, model="gpt-image-1.5"), False, id="other-model"),
        pytest.param(_task("t", SENT, kind="video"), False, id="other-type"),
        pytest.param(
            Task(id="t", status=TaskStatus.PENDING, model="gpt-image-2"), False, id="no-time"
        ),
        pytest.param(
            Task(id="t", status=TaskStatus.PENDING, created=_task("t", SENT).created),
            False,
            id="no-model",
        ),
    ],
)
def test_what_a_create_could_have_made(task: Task, expected: bool):
    """Its model and type, created from a little before the send to `LATE` after it."""
    assert expected == _pending(0).could_be(task)


def test_an_alias_names_the_same_model():
    """A task listed under the model an alias names is the alias's create's."""
    assert _pending(0, model="gpt-4o-image").could_be(_task("t", SENT, model="gpt-4o-image-beta"))
    assert not _pending(0, model="gpt-4o-image").could_be(_task("t", SENT, model="sora-2"))


def test_only_a_one_to_one_match_is_taken():
    """Input 0 has one candidate no one else could claim: found. Inputs 1 and 2 were sent
    together and two tasks could be either's: neither is given one. Input 3 has none."""
    pending = [_pending(0), _pending(1, SENT + 600), _pending(2, SENT + 600.2), _pending(3, 0.0)]
    listed = [_task("a", SENT + 1), _task("b", SENT + 600), _task("c", SENT + 601)]

    found = match(pending, listed)

    assert Listing(task_id="a") == found[0]
    assert Listing(candidates=("b", "c")) == found[1] == found[2]
    assert Listing() == found[3]


def test_a_shared_single_candidate_is_nobodys():
    """One task two inputs could have made: it is either's, so neither is given it."""
    found = match([_pending(0), _pending(1, SENT + 1)], [_task("a", SENT + 1)])
    assert {0: Listing(candidates=("a",)), 1: Listing(candidates=("a",))} == found


def test_a_task_the_run_holds_is_no_candidate():
    """A task another input of the run recorded is its, not a lost create's."""
    listed = [_task("mine", SENT), _task("lost", SENT)]
    assert {0: Listing(task_id="lost")} == match([_pending(0)], listed, held={"mine"})


@given(
    sends=st.lists(st.floats(0, 3600), min_size=1, max_size=6),
    created=st.lists(st.floats(-60, 3700), max_size=8),
)
def test_a_found_task_is_always_ones_own_and_no_one_elses(sends, created):
    """Whatever the times: a task is found for at most one input, and only where it was
    that input's only candidate."""
    pending = [_pending(i, SENT + at) for i, at in enumerate(sends)]
    listed = [_task(f"t{i}", SENT + at) for i, at in enumerate(created)]
    found = match(pending, listed)
    given_ids = [f.task_id for f in found.values() if f.task_id is not None]
    assert len(given_ids) == len(set(given_ids))
    for item in pending:
        listing = found[item.index]
        if listing.task_id is not None:
            [task] = [t for t in listed if t.id == listing.task_id]
            assert item.could_be(task)
            assert [item] == [p for p in pending if p.could_be(task)]
            assert [task] == [t for t in listed if item.could_be(t)]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(
            JournalEntry(
                run="r",
                index=4,
                status=EntryStatus.UNCERTAIN,
                idempotency_key=KEY,
                model="sora-2",
                endpoint="/v1/videos/generations",
                sent_at=SENT,
            ),
            Unanswered(index=4, model="sora-2", kind="video", sent_at=SENT),
            id="uncertain",
        ),
        pytest.param(
            JournalEntry(run="r", index=0, status=EntryStatus.CREATING, idempotency_key=KEY),
            None,
            id="no-send-time",
        ),
        pytest.param(
            JournalEntry(
                run="r",
                index=2,
                status=EntryStatus.CREATING,
                idempotency_key=KEY,
                model="m",
                endpoint="/v2/other",
                sent_at=SENT,
            ),
            Unanswered(index=2, model="m", kind=None, sent_at=SENT),
            id="unknown-endpoint",
        ),
        pytest.param(
            JournalEntry(
                run="r",
                index=3,
                status=EntryStatus.CREATING,
                idempotency_key=KEY,
                model="m",
                sent_at=SENT,
            ),
            Unanswered(index=3, model="m", kind=None, sent_at=SENT),
            id="no-endpoint",
        ),
        pytest.param(
            JournalEntry(
                run="r",
                index=0,
                status=EntryStatus.CREATED,
                idempotency_key=KEY,
                task_id="t",
                model="m",
                sent_at=SENT,
            ),
            None,
            id="answered",
        ),
        pytest.param(
            JournalEntry(
                run="r",
                index=0,
                status=EntryStatus.COMPLETED,
                idempotency_key=KEY,
                model="m",
                sent_at=SENT,
            ),
            None,
            id="ended",
        ),
    ],
)
def test_which_records_are_looked_for(entry: JournalEntry, expected: Unanswered | None):
    """Only a create sent, never answered, with its send time recorded."""
    assert expected == Unanswered.of(entry)
