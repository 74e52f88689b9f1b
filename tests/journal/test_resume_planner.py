"""The resume planner: what a resumed run does with each input, and what it never does."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evolink import EntryStatus, JournalEntry
from evolink._resume import Action, Listing, Step, plan, plan_input, same_request

BODY = {"model": "gpt-image-2", "prompt": "a fox"}
KEY = "key-0123456789abcdef"

entries = st.builds(
    JournalEntry,
    run=st.just("r"),
    index=st.integers(0, 20),
    status=st.sampled_from(EntryStatus),
    body=st.just(BODY),
    idempotency_key=st.none() | st.just(KEY),
    task_id=st.none() | st.just("task-unified-1"),
    charged=st.none() | st.just(Decimal(5)),
)


@given(entry=st.none() | entries, retry_failed=st.booleans())
def test_never_creates_what_may_exist(entry, retry_failed):
    """A new create (SUBMIT) is planned only when no task can exist for the input: nothing
    recorded, nothing sent, or (with retry_failed) a task that failed for sure."""
    step = plan_input(entry, BODY, retry_failed=retry_failed)
    if step.action is Action.SUBMIT and entry is not None:
        failed = entry.status is EntryStatus.FAILED and retry_failed
        assert failed or (entry.task_id is None and entry.idempotency_key is None)


@given(entry=entries, retry_failed=st.booleans())
def test_a_known_task_is_never_created_again(entry, retry_failed):
    """An input with a task id is adopted or re-read, unless it failed and retry_failed."""
    step = plan_input(entry, BODY, retry_failed=retry_failed)
    if entry.task_id is not None and not (retry_failed and entry.status is EntryStatus.FAILED):
        assert step.action in (Action.ADOPT, Action.REREAD)


@given(entry=entries)
def test_final_outcomes_are_adopted(entry):
    """Without retry_failed, an input that ended for good sends nothing (a rejected one
    sent nothing then: now valid, it is planned as if it had no outcome)."""
    step = plan_input(entry, BODY)
    adopted = entry.status.is_final and entry.status is not EntryStatus.REJECTED
    assert (step.action is Action.ADOPT) == adopted


@given(entry=entries, retry_failed=st.booleans())
def test_a_resend_uses_the_recorded_key(entry, retry_failed):
    """A RESEND always carries the key the journal recorded, and only a RESEND does."""
    step = plan_input(entry, BODY, retry_failed=retry_failed)
    if step.action is Action.RESEND:
        assert KEY == step.idempotency_key
        assert entry.task_id is None
    else:
        assert step.idempotency_key is None


@given(entry=entries, prompt=st.text(min_size=1, max_size=20))
def test_another_request_is_a_mismatch(entry, prompt):
    """A record of another request at the input's index sends nothing for it."""
    body = {**BODY, "prompt": prompt}
    step = plan_input(entry, body)
    assert (step.action is Action.MISMATCH) == (prompt != BODY["prompt"])


@given(entry=entries, retry_failed=st.booleans())
def test_without_a_body_nothing_is_a_mismatch(entry, retry_failed):
    """A caller that checked its input itself (body None) never gets MISMATCH."""
    assert Action.MISMATCH is not plan_input(entry, None, retry_failed=retry_failed).action


@pytest.mark.parametrize(
    ("status", "task_id", "key", "expected"),
    [
        pytest.param(EntryStatus.CREATING, None, KEY, Action.RESEND, id="sent-unanswered"),
        pytest.param(EntryStatus.UNCERTAIN, None, KEY, Action.RESEND, id="uncertain"),
        pytest.param(EntryStatus.CREATED, "t", KEY, Action.REREAD, id="created"),
        pytest.param(EntryStatus.ABANDONED, "t", KEY, Action.REREAD, id="abandoned"),
        pytest.param(EntryStatus.DOWNLOAD_FAILED, "t", KEY, Action.REREAD, id="download-failed"),
        pytest.param(EntryStatus.SKIPPED, None, None, Action.SUBMIT, id="skipped"),
        pytest.param(EntryStatus.COMPLETED, "t", KEY, Action.ADOPT, id="completed"),
        pytest.param(EntryStatus.REJECTED, None, None, Action.SUBMIT, id="rejected-now-valid"),
        pytest.param(EntryStatus.REJECTED, "t", KEY, Action.REREAD, id="rejected-over-a-task"),
    ],
)
def test_each_status(status, task_id, key, expected):
    """What each recorded status plans to, on a plain resume."""
    entry = JournalEntry(
        run="r", index=0, status=status, body=BODY, idempotency_key=key, task_id=task_id
    )
    assert expected == plan_input(entry, BODY).action


def test_retry_failed_submits_a_failed_input_under_a_new_key():
    """With retry_failed, a failed task's input is a new create (no key carried over)."""
    entry = JournalEntry(
        run="r", index=0, status=EntryStatus.FAILED, body=BODY, idempotency_key=KEY, task_id="t"
    )
    step = plan_input(entry, BODY, retry_failed=True)
    assert (Action.SUBMIT, None) == (step.action, step.idempotency_key)


def test_callback_url_does_not_make_another_request():
    """A callback URL (its token changes per process) is not part of what a request is."""
    assert same_request({**BODY, "callback_url": "https://a/1"}, {**BODY, "callback_url": "b"})
    assert not same_request({**BODY, "n": 1}, {**BODY, "n": 2})


def test_a_field_only_one_body_names_is_no_difference():
    """A default one SDK version writes and another leaves out does not refuse a resume."""
    assert same_request({"prompt": "a fox"}, BODY)
    assert not same_request({"prompt": "an owl"}, BODY)


def test_plan_covers_every_input():
    """`plan` gives a step per input, unrecorded ones SUBMIT."""
    entry = JournalEntry(run="r", index=1, status=EntryStatus.COMPLETED, body=BODY)
    steps = plan({1: entry}, {0: BODY, 1: BODY})
    assert {0: Step(Action.SUBMIT), 1: Step(Action.ADOPT, entry)} == steps


listings = st.builds(
    Listing,
    task_id=st.none() | st.just("task-unified-listed"),
    candidates=st.lists(st.sampled_from(["t1", "t2", "t3"]), max_size=3, unique=True).map(tuple),
)


@given(entry=entries, listing=listings, retry_failed=st.booleans())
def test_the_listing_decides_only_unanswered_creates(entry, listing, retry_failed):
    """The listing changes the plan of an input planned RESEND only: its one task is read
    (never created again), several candidates send nothing, none resends."""
    without = plan_input(entry, BODY, retry_failed=retry_failed)
    step = plan_input(entry, BODY, retry_failed=retry_failed, listing=listing)
    if without.action is not Action.RESEND:
        assert without == step
    elif listing.task_id is not None:
        assert (Action.REREAD, "task-unified-listed") == (step.action, step.task_id)
    elif listing.candidates:
        assert (Action.AMBIGUOUS, None, None) == (step.action, step.task_id, step.idempotency_key)
    else:
        assert without == step


def test_an_upload_url_stands_for_its_content():
    """Two upload URLs of one file are one request; of two files, two; a URL no upload
    made is compared as written."""
    aliases = {"https://f/1.png": "aa", "https://f/1-again.png": "aa", "https://f/2.png": "bb"}
    recorded = {**BODY, "image_urls": ["https://f/1.png", "https://x/y.png"]}

    assert same_request(
        recorded, {**BODY, "image_urls": ["https://f/1-again.png", "https://x/y.png"]}, aliases
    )
    assert not same_request(
        recorded, {**BODY, "image_urls": ["https://f/2.png", "https://x/y.png"]}, aliases
    )
    assert not same_request(
        recorded, {**BODY, "image_urls": ["https://f/1-again.png", "https://x/z.png"]}, aliases
    )
    assert not same_request(recorded, {**BODY, "image_urls": ["https://f/1-again.png"]})
    nested = {**BODY, "reference": {"image": "https://f/1.png", "weight": 0.5}}
    assert same_request(
        nested, {**BODY, "reference": {"image": "https://f/1-again.png", "weight": 0.5}}, aliases
    )
    assert not same_request(
        nested, {**BODY, "reference": {"image": "https://f/1-again.png", "weight": 1}}, aliases
    )
    assert (
        Action.MISMATCH
        is not plan_input(
            JournalEntry(run="r", index=0, status=EntryStatus.COMPLETED, body=recorded),
            {**BODY, "image_urls": ["https://f/1-again.png", "https://x/y.png"]},
            aliases=aliases,
        ).action
    )
