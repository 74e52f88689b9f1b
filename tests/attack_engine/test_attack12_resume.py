"""Attack12: resumable runs as a library feature (issue 12, item 3; docs/how-to/resume.md).

A run is killed (its cancel scope cancelled after N creates reached my server) and resumed
with the same journal: no prompt may be created twice, every input ends once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from _hostile_api import API, KEY, HostileAPI

import evolink
from evolink import (
    AsyncEvolink,
    EntryStatus,
    FileRecord,
    InputRecord,
    JournalEntry,
    OutcomeKind,
    OutcomeRecord,
    SQLiteJournal,
)
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

PROMPTS = [f"a resumable owl number {i}" for i in range(8)]


def make(api: HostileAPI, clock: VirtualClock) -> AsyncEvolink:
    return AsyncEvolink(api_key=KEY, base_url=API, transport=api.transport(), clock=clock)


class MemJournal:
    """My own in-memory JournalStore, written from architecture.md's table and `_journal`'s
    docstrings. It also checks the ordering promise: a create must be recorded before the
    server sees it (`seen_before_record` collects violations)."""

    def __init__(self) -> None:
        self.fingerprints: dict[str, str] = {}
        self.data: dict[tuple[str, int], JournalEntry] = {}
        self.saved: dict[tuple[str, int], list[FileRecord]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.fail_creates = False

    def recorded_keys(self) -> set[str]:
        return {e.idempotency_key for e in self.data.values() if e.idempotency_key}

    async def bind_run(self, run: str, fingerprint: str) -> str | None:
        self.calls.append(("bind_run", run))
        old = self.fingerprints.get(run)
        self.fingerprints[run] = fingerprint
        return old

    async def record_create(self, input: InputRecord, idempotency_key: str) -> None:  # noqa: A002
        await anyio.lowlevel.checkpoint()
        self.calls.append(("record_create", (input.index, idempotency_key)))
        if self.fail_creates:
            raise OSError("disk full")
        k = (input.run, input.index)
        old = self.data.get(k)
        if old is not None and old.idempotency_key == idempotency_key:
            return
        self.data[k] = JournalEntry(
            run=input.run,
            index=input.index,
            status=EntryStatus.CREATING,
            body=input.body,
            endpoint=input.endpoint,
            model=input.model,
            idempotency_key=idempotency_key,
        )

    async def record_task(self, input: InputRecord, task_id: str) -> None:  # noqa: A002
        self.calls.append(("record_task", (input.index, task_id)))
        k = (input.run, input.index)
        old = self.data.get(k) or JournalEntry(
            run=input.run,
            index=input.index,
            status=EntryStatus.CREATED,
            body=input.body,
            endpoint=input.endpoint,
            model=input.model,
        )
        status = (
            EntryStatus.CREATED
            if old.status in (EntryStatus.CREATING, EntryStatus.CREATED)
            else old.status
        )
        self.data[k] = attrs.evolve(old, task_id=task_id, status=status)

    async def record_outcome(self, input: InputRecord, outcome: OutcomeRecord) -> None:  # noqa: A002
        self.calls.append(("record_outcome", (input.index, outcome.status)))
        k = (input.run, input.index)
        old = self.data.get(k) or JournalEntry(
            run=input.run,
            index=input.index,
            status=outcome.status,
            body=input.body,
            endpoint=input.endpoint,
            model=input.model,
        )
        self.data[k] = attrs.evolve(
            old,
            status=outcome.status,
            task_id=outcome.task_id or old.task_id,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            reserved=outcome.reserved,
            charged=outcome.charged,
            results=outcome.results,
        )

    async def record_file(self, run: str, file: FileRecord) -> None:
        self.saved.setdefault((run, file.index), []).append(file)

    async def entries(self, run: str) -> Mapping[int, JournalEntry]:
        return {i: e for (r, i), e in self.data.items() if r == run}

    async def files(self, run: str) -> Mapping[int, Sequence[FileRecord]]:
        return {
            i: sorted(f, key=lambda x: x.number) for (r, i), f in self.saved.items() if r == run
        }


def kill_after(api: HostileAPI, scope: anyio.CancelScope, n: int) -> None:
    def hook(hit: object) -> None:
        if len(api.creates) >= n:
            scope.cancel()

    api.on_create = hook


async def killed_then_resumed(
    api: HostileAPI, clock: VirtualClock, journal: object, *, n: int, how: str, run: str = "owls"
) -> tuple[int, evolink.BatchReport, int]:
    """Run PROMPTS, cancel after `n` creates reached the server; resume with the same journal."""
    async with make(api, clock) as client, clock.running():
        with anyio.CancelScope() as scope:
            kill_after(api, scope, n)
            if how == "generate_many":
                await client.images.generate_many(
                    PROMPTS, max_in_flight=2, journal=journal, run=run
                )  # type: ignore[arg-type]
            else:
                async with client.batch(max_in_flight=2, journal=journal, run=run) as batch:  # type: ignore[arg-type]
                    for p in PROMPTS:
                        await batch.submit(p)
        api.on_create = None
    first_log = len(api.log)
    async with make(api, clock) as client, clock.running():
        if how == "generate_many":
            report = await client.images.generate_many(
                PROMPTS, max_in_flight=2, journal=journal, run=run
            )  # type: ignore[arg-type]
        else:
            async with client.batch(max_in_flight=2, journal=journal, run=run) as batch:  # type: ignore[arg-type]
                for p in PROMPTS:
                    await batch.submit(p)
            report = batch.report()
        sent = client.requests_sent
    return first_log, report, sent


def keys_per_prompt(api: HostileAPI) -> dict[str, set[str | None]]:
    out: dict[str, set[str | None]] = {}
    for h in api.creates:
        out.setdefault(h.body["prompt"], set()).add(h.key)
    return out


@pytest.mark.parametrize("how", ["generate_many", "batch"])
@pytest.mark.parametrize("n", [1, 3, 5])
@pytest.mark.parametrize("store", ["sqlite-path", "sqlite-object", "memory"])
async def test_kill_after_n_creates_and_resume_creates_nothing_twice(
    how: str, n: int, store: str, tmp_path: Path
) -> None:
    """Promise (issue 12, 'Done when'): "A library-level test kills a batch mid-run (cancel the
    scope after N creates), resumes it with the same journal, and shows every input ended once
    and no prompt created twice"; resume.md: "the same call again finishes the job without
    creating any task twice"; each input goes out under one idempotency key. Also run with my
    own in-memory JournalStore ("any object implementing `evolink.JournalStore`")."""
    clock = VirtualClock()
    api = HostileAPI(clock, honour_keys=True)
    if store == "memory":
        mem = MemJournal()
        first, report, sent = await killed_then_resumed(api, clock, mem, n=n, how=how)
    elif store == "sqlite-path":
        first, report, sent = await killed_then_resumed(
            api, clock, str(tmp_path / "j.sqlite3"), n=n, how=how
        )
    else:
        async with SQLiteJournal.open(tmp_path / "j.sqlite3") as journal:
            first, report, sent = await killed_then_resumed(api, clock, journal, n=n, how=how)
    assert sorted(o.index for o in report.outcomes) == list(range(len(PROMPTS)))
    assert all(o.kind is OutcomeKind.COMPLETED for o in report.outcomes), report.counts
    assert api.tasks_per_prompt() == dict.fromkeys(PROMPTS, 1)
    assert all(len(k) == 1 for k in keys_per_prompt(api).values()), keys_per_prompt(api)
    for o in report.outcomes:
        assert o.task is not None
        assert api.task_prompt[o.task.id] == PROMPTS[o.index]
    assert sent == len(api.log) - first


@pytest.mark.parametrize("how", ["generate_many", "batch"])
@pytest.mark.parametrize("n", [1, 3])
async def test_resumed_run_reports_every_request_it_sent(how: str, n: int, tmp_path: Path) -> None:
    """Promise (issue 12, item 1): "Every HTTP request sent is counted exactly once, and
    `BatchReport.requests` (and any other count the SDK reports) equals what a server log
    would show"; architecture.md: "`BatchReport.requests` is the count a server log shows".
    The resumed run's report must count the re-reads of the tasks the journal knew."""
    clock = VirtualClock()
    api = HostileAPI(clock, honour_keys=True)
    first, report, sent = await killed_then_resumed(
        api, clock, str(tmp_path / "j.sqlite3"), n=n, how=how
    )
    server = len(api.log) - first
    assert (report.requests, sent) == (server, server), [
        (h.method, h.path) for h in api.log[first:] if h.method == "GET"
    ]


@pytest.mark.parametrize("store", ["sqlite", "memory"])
async def test_kill_while_create_answer_lost_resends_under_recorded_key(
    store: str, tmp_path: Path
) -> None:
    """Promise (resume.md table): "a create sent, its answer lost | resends it under the **same
    idempotency key**"; the kill lands while the server has made the task and its answer is
    still in flight ('hang'). The resume must resend that create with its recorded key
    (the server replays it): one task per prompt."""
    clock = VirtualClock()
    api = HostileAPI(clock, honour_keys=True)
    journal: Any = MemJournal() if store == "memory" else str(tmp_path / "j.sqlite3")
    hung: list[str | None] = []

    def rule(n: int, k: str | None, b: dict) -> str:
        if n == 2:
            hung.append(k)
            return "hang"
        return "ok"

    api.create_rule = rule
    async with make(api, clock) as client, clock.running():
        with anyio.CancelScope() as scope:

            async def stop() -> None:
                while not hung:
                    await clock.sleep(1)
                await clock.sleep(1)
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(stop)
                await client.images.generate_many(
                    PROMPTS, max_in_flight=4, journal=journal, run="r"
                )
    api.create_rule = lambda n, k, b: "ok"
    before = len(api.creates)
    async with make(api, clock) as client, clock.running():
        report = await client.images.generate_many(
            PROMPTS, max_in_flight=4, journal=journal, run="r"
        )
    assert all(o.kind is OutcomeKind.COMPLETED for o in report.outcomes), report.counts
    assert api.tasks_per_prompt() == dict.fromkeys(PROMPTS, 1)
    resent = [h for h in api.creates[before:] if h.key == hung[0]]
    assert len(resent) == 1, "the lost create must be resent under its recorded key"


async def test_resume_of_finished_run_sends_nothing(tmp_path: Path) -> None:
    """Promise (resume.md table): "completed, failed or cancelled | reports that outcome
    (`outcome.resumed` is true), sends nothing"."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    path = str(tmp_path / "j.sqlite3")
    async with make(api, clock) as client, clock.running():
        first = await client.images.generate_many(PROMPTS, max_in_flight=4, journal=path, run="r")
    assert all(o.kind is OutcomeKind.COMPLETED for o in first.outcomes)
    before = len(api.log)
    async with make(api, clock) as client, clock.running():
        second = await client.images.generate_many(PROMPTS, max_in_flight=4, journal=path, run="r")
        sent = client.requests_sent
    assert len(api.log) == before
    assert sent == 0
    assert second.requests == 0
    assert all(o.resumed and o.kind is OutcomeKind.COMPLETED for o in second.outcomes)
    assert [o.task.id for o in second.outcomes if o.task] == [
        o.task.id for o in first.outcomes if o.task
    ]


async def test_resume_rereads_known_tasks_creates_nothing(tmp_path: Path) -> None:
    """Promise (resume.md table): "a task id (created, abandoned, ...) | reads that task and
    watches it, creates nothing". Run 1 is cut while its tasks run (all created)."""
    clock = VirtualClock()
    api = HostileAPI(clock, duration=100)
    path = str(tmp_path / "j.sqlite3")
    prompts = PROMPTS[:4]
    async with make(api, clock) as client, clock.running():
        with anyio.CancelScope() as scope:

            async def stop() -> None:
                while len(api.tasks) < len(prompts):
                    await clock.sleep(1)
                await clock.sleep(5)
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(stop)
                await client.images.generate_many(prompts, max_in_flight=4, journal=path, run="r")
    assert len(api.tasks) == len(prompts)
    creates_before = len(api.creates)
    async with make(api, clock) as client, clock.running():
        report = await client.images.generate_many(prompts, max_in_flight=4, journal=path, run="r")
    assert len(api.creates) == creates_before
    assert all(o.kind is OutcomeKind.COMPLETED for o in report.outcomes), report.counts
    assert {o.task.id for o in report.outcomes if o.task} == set(api.tasks)


async def test_resume_with_changed_input_rejects_it_and_sends_nothing(tmp_path: Path) -> None:
    """Promise (resume.md table): "another request at this index | rejects the input
    (`journal_mismatch`) and sends nothing"."""
    clock = VirtualClock()
    api = HostileAPI(clock, duration=100)
    path = str(tmp_path / "j.sqlite3")
    async with make(api, clock) as client, clock.running():
        with anyio.CancelScope() as scope:
            kill_after(api, scope, 2)
            await client.images.generate_many(PROMPTS[:2], max_in_flight=2, journal=path, run="r")
    api.on_create = None
    before = len(api.log)
    changed = [PROMPTS[0], "something else entirely"]
    async with make(api, clock) as client, clock.running():
        report = await client.images.generate_many(changed, max_in_flight=2, journal=path, run="r")
    o1 = report.outcomes[1]
    assert o1.kind is OutcomeKind.REJECTED
    assert o1.error_code == "journal_mismatch"
    assert not any(h.body and h.body.get("prompt") == changed[1] for h in api.log[before:])


@pytest.mark.parametrize("how", ["generate_many", "batch"])
async def test_journal_that_fails_to_record_stops_the_create(how: str) -> None:
    """Promise (architecture.md, journal table): "`record_create` ... Durable when it returns:
    the create is sent only then"; the JournalStore docstring: "`record_create` is awaited
    before the create is sent". A store whose record_create raises: no create may be sent;
    and (README) "every prompt ends in exactly one outcome" if a report comes back."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    mem = MemJournal()
    mem.fail_creates = True
    report = None
    async with make(api, clock) as client, clock.running():
        try:
            if how == "generate_many":
                report = await client.images.generate_many(PROMPTS[:3], journal=mem, run="r")
            else:
                async with client.batch(journal=mem, run="r") as batch:
                    for p in PROMPTS[:3]:
                        await batch.submit(p)
                report = batch.report()
        except Exception:  # noqa: BLE001, S110 - the store's failure, however it is wrapped
            pass
    assert api.creates == []
    if report is not None:
        assert sorted(o.index for o in report.outcomes) == [0, 1, 2]
        assert not any(o.kind is OutcomeKind.COMPLETED for o in report.outcomes)


async def test_create_recorded_before_server_sees_it() -> None:
    """Promise (resume.md): "each create is written to the journal (with its idempotency key)
    *before* it is sent". My server checks, at each create, that its key is already in my
    in-memory store."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    mem = MemJournal()
    late: list[str | None] = []

    def hook(hit: Any) -> None:
        if hit.key not in mem.recorded_keys():
            late.append(hit.key)

    api.on_create = hook
    async with make(api, clock) as client, clock.running():
        report = await client.images.generate_many(PROMPTS, max_in_flight=3, journal=mem, run="r")
    assert all(o.kind is OutcomeKind.COMPLETED for o in report.outcomes)
    assert late == []
    entries = await mem.entries("r")
    assert sorted(entries) == list(range(len(PROMPTS)))
    assert all(
        e.status is EntryStatus.COMPLETED and e.task_id in api.tasks for e in entries.values()
    )


async def test_resume_failed_only_with_resume_failed(tmp_path: Path) -> None:
    """Promise (resume.md table): failed inputs are reported (`resumed`), sending nothing;
    "with `resume_failed=True` a failed one is created again" (a new key)."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    api.fail_tasks = True
    path = str(tmp_path / "j.sqlite3")
    prompts = PROMPTS[:3]
    async with make(api, clock) as client, clock.running():
        first = await client.images.generate_many(prompts, journal=path, run="r")
    assert all(o.kind is OutcomeKind.FAILED for o in first.outcomes)
    api.fail_tasks = False
    n = len(api.creates)
    async with make(api, clock) as client, clock.running():
        second = await client.images.generate_many(prompts, journal=path, run="r")
    assert len(api.creates) == n
    assert all(o.resumed and o.kind is OutcomeKind.FAILED for o in second.outcomes)
    async with make(api, clock) as client, clock.running():
        third = await client.images.generate_many(
            prompts, journal=path, run="r", resume_failed=True
        )
    assert all(o.kind is OutcomeKind.COMPLETED for o in third.outcomes), third.counts
    new = api.creates[n:]
    assert len(new) == len(prompts)
    assert not ({h.key for h in new} & {h.key for h in api.creates[:n]})
