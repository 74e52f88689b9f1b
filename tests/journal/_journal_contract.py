"""The promises every `JournalStore` keeps, as a test class to subclass per store.

A store's test module subclasses `JournalStoreContract` and provides a `store` fixture
yielding a fresh, empty store (and a `reopen` fixture giving the same store after a close
and reopen, where the store has such a thing): see `test_journal_sqlite.py`. A PostgreSQL
store would reuse every test here unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

import anyio
import attrs
import pytest

from evolink import (
    EntryStatus,
    FileRecord,
    InputRecord,
    JournalStore,
    OutcomeRecord,
    UploadRecord,
)

Reopen = Callable[[JournalStore], Awaitable[JournalStore]]

RUN = "run-a"
KEY_A = "key-a-0123456789abcdef"
KEY_B = "key-b-0123456789abcdef"


def _input(
    index: int, prompt: str = "a fox", run: str = RUN, sent_at: float | None = None
) -> InputRecord:
    return InputRecord(
        run=run,
        index=index,
        body={"model": "gpt-image-2", "prompt": prompt},
        endpoint="/v1/images/generations",
        model="gpt-image-2",
        sent_at=sent_at,
    )


def _upload(file_id: str, sha256: str = "ab" * 32, expires_at: float | None = 2e9) -> UploadRecord:
    return UploadRecord(
        sha256=sha256,
        file_id=file_id,
        file_url=f"https://files.example/{file_id}.png",
        expires_at=expires_at,
        size=1234,
    )


class JournalStoreContract:
    """Subclass with `store` and `reopen` fixtures; every test is one promise."""

    pytestmark = pytest.mark.anyio

    async def test_is_a_journal_store(self, store: JournalStore) -> None:
        """The store satisfies the protocol (every method present)."""
        assert isinstance(store, JournalStore)

    async def test_empty_run_has_no_entries(self, store: JournalStore) -> None:
        """A run never written holds nothing."""
        assert {} == dict(await store.entries(RUN))
        assert {} == dict(await store.files(RUN))

    async def test_round_trip(self, store: JournalStore, reopen: Reopen) -> None:
        """Creates, task ids, outcomes and files come back as written, across a reopen."""
        await store.record_create(_input(0, "a"), KEY_A)
        await store.record_create(_input(1, "b"), KEY_B)
        await store.record_task(_input(1, "b"), "task-unified-1")
        await store.record_outcome(
            _input(1, "b"),
            OutcomeRecord(
                status=EntryStatus.COMPLETED,
                reserved=Decimal("2.5"),
                charged=Decimal("2.5"),
                results=("https://x/1.png",),
            ),
        )
        saved = FileRecord(index=1, number=1, url="https://x/1.png", path="0002-b-1.png", size=10)
        await store.record_file(RUN, saved)
        store = await reopen(store)
        entries = await store.entries(RUN)
        assert (KEY_A, None, EntryStatus.CREATING) == (
            entries[0].idempotency_key,
            entries[0].task_id,
            entries[0].status,
        )
        assert {"model": "gpt-image-2", "prompt": "a"} == dict(entries[0].body)
        assert ("/v1/images/generations", "gpt-image-2") == (
            entries[0].endpoint,
            entries[0].model,
        )
        one = entries[1]
        assert "task-unified-1" == one.task_id  # kept: the outcome named no task
        assert KEY_B == one.idempotency_key  # kept: the outcome and task name no key
        assert (EntryStatus.COMPLETED, Decimal("2.5"), ("https://x/1.png",)) == (
            one.status,
            one.charged,
            one.results,
        )
        assert {1: [saved]} == {i: list(f) for i, f in (await store.files(RUN)).items()}

    async def test_same_key_keeps_the_task(self, store: JournalStore) -> None:
        """Recording a create again under its own key (a resend) keeps the known task."""
        await store.record_create(_input(0), KEY_A)
        await store.record_task(_input(0), "task-unified-1")
        await store.record_create(_input(0), KEY_A)
        entry = (await store.entries(RUN))[0]
        assert ("task-unified-1", EntryStatus.CREATED) == (entry.task_id, entry.status)

    async def test_new_key_forgets_the_old_task_and_outcome(self, store: JournalStore) -> None:
        """A create under a new key (a failed input sent again) starts the input's story over."""
        await store.record_create(_input(0), KEY_A)
        await store.record_task(_input(0), "task-unified-1")
        await store.record_outcome(
            _input(0),
            OutcomeRecord(status=EntryStatus.FAILED, error_code="content_policy_violation"),
        )
        await store.record_create(_input(0), KEY_B)
        entry = (await store.entries(RUN))[0]
        assert (KEY_B, None, EntryStatus.CREATING, None) == (
            entry.idempotency_key,
            entry.task_id,
            entry.status,
            entry.error_code,
        )

    async def test_outcome_with_a_task_replaces_it(self, store: JournalStore) -> None:
        """An outcome naming a task records that task."""
        await store.record_task(_input(0), "task-unified-1")
        await store.record_outcome(
            _input(0), OutcomeRecord(status=EntryStatus.ABANDONED, task_id="task-unified-2")
        )
        entry = (await store.entries(RUN))[0]
        assert ("task-unified-2", EntryStatus.ABANDONED) == (entry.task_id, entry.status)

    async def test_an_outcome_alone_is_an_entry(self, store: JournalStore) -> None:
        """An input rejected before any create still has its entry, with its body."""
        await store.record_outcome(
            _input(3, "bad"), OutcomeRecord(status=EntryStatus.REJECTED, error_code="not_empty")
        )
        entry = (await store.entries(RUN))[3]
        assert (EntryStatus.REJECTED, "not_empty", None) == (
            entry.status,
            entry.error_code,
            entry.idempotency_key,
        )
        assert "bad" == entry.body["prompt"]

    async def test_runs_are_separate(self, store: JournalStore) -> None:
        """Two runs in one store never see each other's inputs, files or fingerprints."""
        await store.record_create(_input(0, run="one"), KEY_A)
        await store.record_create(_input(0, run="two"), KEY_B)
        await store.record_file(
            "one", FileRecord(index=0, number=1, url="https://x/1.png", path="a.png", size=1)
        )
        assert KEY_A == (await store.entries("one"))[0].idempotency_key
        assert KEY_B == (await store.entries("two"))[0].idempotency_key
        assert {} == dict(await store.files("two"))
        assert await store.bind_run("one", "f1") is None
        assert await store.bind_run("two", "f2") is None
        assert "f1" == await store.bind_run("one", "f1")
        assert "f2" == await store.bind_run("two", "f3")
        assert "f3" == await store.bind_run("two", "f3")

    async def test_concurrent_writers(self, store: JournalStore) -> None:
        """Writes to many inputs at once (as several workers would) all land."""

        async def write(index: int) -> None:
            await store.record_create(_input(index, f"p{index}"), f"key-{index:04d}-0123456789ab")
            await store.record_task(_input(index, f"p{index}"), f"task-unified-{index}")

        async with anyio.create_task_group() as tg:
            for index in range(50):
                tg.start_soon(write, index)
        entries = await store.entries(RUN)
        assert list(range(50)) == sorted(entries)
        assert all(e.task_id == f"task-unified-{i}" for i, e in entries.items())

    async def test_a_create_keeps_when_it_was_last_sent(self, store: JournalStore) -> None:
        """`sent_at` comes back as written; a resend under the same key moves it (and
        only it: the task stays), a new key records its own, none given keeps it."""
        await store.record_create(_input(0, sent_at=1_767_225_600.25), KEY_A)
        first = (await store.entries(RUN))[0]
        await store.record_task(_input(0), "task-unified-1")
        await store.record_create(_input(0, sent_at=1_767_229_200.0), KEY_A)
        resent = (await store.entries(RUN))[0]
        await store.record_create(_input(0), KEY_A)
        kept = (await store.entries(RUN))[0]
        await store.record_create(_input(0, sent_at=1_767_232_800.5), KEY_B)
        again = (await store.entries(RUN))[0]
        await store.record_create(_input(1), KEY_A)
        assert 1_767_225_600.25 == first.sent_at
        assert (1_767_229_200.0, "task-unified-1") == (resent.sent_at, resent.task_id)
        assert 1_767_229_200.0 == kept.sent_at
        assert (1_767_232_800.5, None) == (again.sent_at, again.task_id)
        assert (await store.entries(RUN))[1].sent_at is None

    async def test_a_possible_duplicate_is_kept_until_an_outcome_says(
        self, store: JournalStore, reopen: Reopen
    ) -> None:
        """A resend flagged as it leaves (`record_create` with the flag, same key) sets it
        without touching the rest; a new key keeps it (the earlier task may exist); the
        outcome's own value then replaces it, and it survives a reopen."""
        await store.record_create(_input(0, sent_at=1_767_225_600.0), KEY_A)
        await store.record_task(_input(0), "task-unified-1")
        assert not (await store.entries(RUN))[0].possible_duplicate
        flagged = attrs.evolve(_input(0), possible_duplicate=True)
        await store.record_create(flagged, KEY_A)
        first = (await store.entries(RUN))[0]
        await store.record_create(_input(0, sent_at=1_767_229_200.0), KEY_B)
        renewed = (await store.entries(RUN))[0]
        await store.record_outcome(
            _input(1), OutcomeRecord(status=EntryStatus.COMPLETED, possible_duplicate=True)
        )
        await store.record_outcome(_input(0), OutcomeRecord(status=EntryStatus.COMPLETED))
        store = await reopen(store)
        entries = await store.entries(RUN)
        assert (True, "task-unified-1", 1_767_225_600.0) == (
            first.possible_duplicate,
            first.task_id,
            first.sent_at,
        )
        assert (True, KEY_B) == (renewed.possible_duplicate, renewed.idempotency_key)
        assert (False, True) == (entries[0].possible_duplicate, entries[1].possible_duplicate)

    async def test_uploads_round_trip(self, store: JournalStore, reopen: Reopen) -> None:
        """Every upload of a run comes back as written, across a reopen; one recorded
        twice is kept once; a run with none has none; runs do not share them."""
        assert [] == list(await store.uploads(RUN))
        first = _upload("file_1", expires_at=1_767_225_600.5)
        renewed = _upload("file_2", expires_at=None)  # the same content, uploaded again
        other = _upload("file_3", sha256="cd" * 32)
        for upload in (first, renewed, other, first):
            await store.record_upload(RUN, upload)
        await store.record_upload("run-b", _upload("file_4"))
        store = await reopen(store)
        found = sorted(await store.uploads(RUN), key=lambda u: u.file_id)
        assert [first, renewed, other] == found
        assert ["file_4"] == [u.file_id for u in await store.uploads("run-b")]
