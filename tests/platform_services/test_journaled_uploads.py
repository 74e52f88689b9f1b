"""Uploads of local files in a journaled run: recorded in the journal, reused by a resumed
run, made again only for a new create whose recorded upload expired."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
import attrs
import httpx
import pytest
from _platform_support import BASE_URL, client_for, png

from evolink import (
    AsyncEvolink,
    EntryStatus,
    FileRecord,
    GenerationRequest,
    InputRecord,
    JournalEntry,
    OutcomeKind,
    OutcomeRecord,
    SQLiteJournal,
)
from evolink._uploads import EXPIRY_MARGIN, as_recorded
from evolink.testing import TEST_API_KEY, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

UPLOADS = "/api/v1/files/upload"
CREATE = "/v1/images/generations"


def _requests(tmp_path: Path, count: int = 12) -> list[GenerationRequest]:
    """`count` rows naming three paths of two contents (`a.png` and its copy are one)."""
    first, second, copy = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "a-copy.png"
    first.write_bytes(png(1))
    second.write_bytes(png(2))
    copy.write_bytes(png(1))
    paths = (first, second, copy)
    return [
        GenerationRequest(prompt=f"the product, scene {i}", image_urls=[paths[i % 3]])
        for i in range(count)
    ]


async def _cut_short(
    client: AsyncEvolink, requests: Sequence[GenerationRequest], journal: Path, after: int
) -> None:
    """Run `requests` on `journal` and stop it (as a kill would) `after` creates."""
    with anyio.CancelScope() as scope:
        sent = 0

        def count(*_: object) -> None:
            nonlocal sent
            sent += 1
            if sent == after:
                scope.cancel()

        await client.images.generate_many(
            requests, max_in_flight=2, journal=journal, run="r", on_create=count
        )


def _sent_urls(sim: Simulator, since: int = 0) -> list[str]:
    return [
        r.body["image_urls"][0]
        for r in sim.requests[since:]
        if r.path == CREATE and r.status == 200
    ]


async def test_a_resumed_run_uploads_nothing_again(tmp_path: Path):
    """Cut short after four creates, resumed by a new client (a new process): the two
    contents went up once in the first run, and not again; every row completes."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=7)
    requests = _requests(tmp_path)
    journal = tmp_path / "runs.sqlite3"
    async with clock.running():
        async with client_for(sim) as client:
            await _cut_short(client, requests, journal, after=4)
        uploaded = sim.count("POST", UPLOADS)
        async with client_for(sim) as client:
            report = await client.images.generate_many(requests, journal=journal, run="r")
    assert 2 == uploaded == sim.count("POST", UPLOADS)
    assert [OutcomeKind.COMPLETED] * 12 == [o.kind for o in report.outcomes]
    assert 2 == len(set(_sent_urls(sim)))
    async with SQLiteJournal.open(journal) as store:
        assert 2 == len(await store.uploads("r"))


async def test_an_expired_upload_is_made_again_for_new_creates_only(tmp_path: Path):
    """Files live two hours; the run resumes 80 minutes later, within the hour before they
    expire. Inputs already sent are adopted with their recorded URLs (nothing uploaded
    for them, and one met after the file went up again is still the same request); the
    first new create of each content uploads it again, and every new create carries a
    URL that outlives it."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=7, file_ttl=2 * 3600)
    requests = _requests(tmp_path)
    journal = tmp_path / "runs.sqlite3"
    async with clock.running():
        async with client_for(sim) as client:
            await _cut_short(client, requests, journal, after=4)
        async with SQLiteJournal.open(journal) as store:
            sent = sorted(i for i, e in (await store.entries("r")).items() if e.task_id)
        first_urls = set(_sent_urls(sim))
        await clock.sleep(2 * 3600 - EXPIRY_MARGIN + 1200)
        before = len(sim.requests)
        async with client_for(sim) as client, client.batch(journal=journal, run="r") as batch:
            # The new creates first: their files go up again before the recorded inputs
            # (sent with the old URLs) are met.
            for index in sorted(range(12), key=lambda i: i in sent):
                await batch.submit(requests[index], journal_index=index)
    outcomes = batch.report().outcomes
    assert [OutcomeKind.COMPLETED] * 12 == [o.kind for o in outcomes]
    assert 4 == sim.count("POST", UPLOADS)  # two contents, twice each
    new_urls = set(_sent_urls(sim, before))
    assert 2 == len(new_urls)
    assert not new_urls & first_urls
    assert 12 - len(sent) == len(_sent_urls(sim, before))


async def test_a_changed_file_is_another_request(tmp_path: Path):
    """A reference file whose content changed since the run was recorded is another
    request: the resumed run refuses it (journal_mismatch) rather than adopt the old
    result."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=7)
    path = tmp_path / "a.png"
    path.write_bytes(png(1))
    requests = [GenerationRequest(prompt="the product", image_urls=[path])]
    journal = tmp_path / "runs.sqlite3"
    async with clock.running(), client_for(sim) as client:
        await client.images.generate_many(requests, journal=journal, run="r")
        path.write_bytes(png(9))
        report = await client.images.generate_many(requests, journal=journal, run="r")
    [outcome] = report.outcomes
    assert (OutcomeKind.REJECTED, "journal_mismatch") == (outcome.kind, outcome.error_code)
    assert 1 == sim.count("POST", CREATE)


async def test_a_store_without_uploads_still_runs(tmp_path: Path):
    """A `JournalStore` written before uploads were journaled (no `record_upload`, no
    `uploads`) still runs a batch of local files; a resumed run uploads them again."""

    class OldStore:
        def __init__(self, store: SQLiteJournal) -> None:
            self._store = store

        async def bind_run(self, run: str, fingerprint: str) -> str | None:
            return await self._store.bind_run(run, fingerprint)

        async def record_create(self, record: InputRecord, key: str) -> None:
            await self._store.record_create(record, key)

        async def record_task(self, record: InputRecord, task_id: str) -> None:
            await self._store.record_task(record, task_id)

        async def record_outcome(self, record: InputRecord, outcome: OutcomeRecord) -> None:
            await self._store.record_outcome(record, outcome)

        async def record_file(self, run: str, file: FileRecord) -> None:
            await self._store.record_file(run, file)

        async def entries(self, run: str) -> Mapping[int, JournalEntry]:
            return await self._store.entries(run)

        async def files(self, run: str) -> Mapping[int, Sequence[FileRecord]]:
            return await self._store.files(run)

    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=7)
    requests = _requests(tmp_path, count=3)
    async with clock.running(), SQLiteJournal.open(tmp_path / "old.sqlite3") as store:
        old = OldStore(store)
        async with client_for(sim) as client:
            for _ in range(2):
                report = await client.images.generate_many(requests, journal=old, run="r")  # type: ignore[arg-type]
                assert [OutcomeKind.COMPLETED] * 3 == [o.kind for o in report.outcomes]
        assert [] == list(await store.uploads("r"))
    assert 2 == sim.count("POST", UPLOADS)
    assert 3 == sim.count("POST", CREATE)


def test_a_resend_repeats_its_recorded_urls():
    """A create resent under its key is sent with the URLs it was recorded with, though
    the same file went up again since; another file, or a URL no upload made, is left."""
    aliases = {"https://f/old.png": "aa", "https://f/new.png": "aa", "https://f/b.png": "bb"}
    recorded = {
        "model": "gpt-image-2",
        "prompt": "p",
        "image_urls": ["https://f/old.png", "https://x/y.png"],
        "mask_url": "https://f/old.png",
        "reference": "https://f/old.png",
    }
    request = GenerationRequest(
        prompt="p",
        image_urls=["https://f/new.png", "https://x/y.png"],
        mask_url="https://f/b.png",
        params={"reference": "https://f/new.png"},
    )

    again = as_recorded(request, recorded, aliases)

    assert ("https://f/old.png", "https://x/y.png") == again.image_urls
    assert "https://f/b.png" == again.mask_url  # another file: not the recorded one's
    assert {"reference": "https://f/old.png"} == again.params
    assert request is as_recorded(request, request.to_body(), aliases)
    masked = attrs.evolve(request, mask_url="https://f/new.png")
    assert "https://f/old.png" == as_recorded(masked, recorded, aliases).mask_url


async def test_uploads_are_recorded_before_the_creates_that_use_them(tmp_path: Path):
    """Every create recorded in the journal names only URLs of uploads it recorded."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=7)
    journal = tmp_path / "runs.sqlite3"
    async with clock.running(), client_for(sim) as client:
        await _cut_short(client, _requests(tmp_path), journal, after=3)
    async with SQLiteJournal.open(journal) as store:
        urls = {u.file_url for u in await store.uploads("r")}
        entries = await store.entries("r")
    sent = [e for e in entries.values() if e.status is not EntryStatus.SKIPPED]
    assert sent
    assert all(set(e.body["image_urls"]) <= urls for e in sent)


class _CreatesNeverArrive(httpx.AsyncBaseTransport):
    """The simulator's transport, but every create is lost on its way (the server never
    sees it, the client cannot know): uploads and reads go through."""

    def __init__(self, sim: Simulator) -> None:
        self.inner = sim.transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == CREATE:
            raise httpx.RemoteProtocolError("peer closed the connection", request=request)
        return await self.inner.handle_async_request(request)


async def test_a_resend_the_listing_shows_unmade_gets_a_fresh_upload(tmp_path: Path):
    """A create lost on its way; resumed when its file's upload is about to expire: the
    listing shows no task of it, so the resend (under its key) will make one, and carries a
    new upload of the file rather than the URL about to die."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=7, file_ttl=2 * 3600)
    path = tmp_path / "a.png"
    path.write_bytes(png(1))
    requests = [GenerationRequest(prompt="the product", image_urls=[path])]
    journal = tmp_path / "runs.sqlite3"
    async with clock.running():
        lost = AsyncEvolink(
            api_key=TEST_API_KEY,
            base_url=BASE_URL,
            transport=_CreatesNeverArrive(sim),
            clock=clock,
            max_retries=0,
        )
        async with lost:
            first = await lost.images.generate_many(requests, journal=journal, run="r")
        await clock.sleep(2 * 3600 - EXPIRY_MARGIN + 600)
        async with client_for(sim) as client:
            second = await client.images.generate_many(requests, journal=journal, run="r")
    [was] = first.outcomes
    [now] = second.outcomes
    async with SQLiteJournal.open(journal) as store:
        uploads = sorted(await store.uploads("r"), key=lambda u: u.expires_at or 0)
    [create] = [r for r in sim.requests if r.path == CREATE]
    assert (OutcomeKind.UNCERTAIN, OutcomeKind.COMPLETED) == (was.kind, now.kind)
    assert was.idempotency_key == create.idempotency_key
    assert 2 == len(uploads) == sim.count("POST", UPLOADS)
    assert [uploads[1].file_url] == create.body["image_urls"]


class _UploadsRefused(httpx.AsyncBaseTransport):
    """The simulator's transport, but the files API refuses every upload (quota full)."""

    def __init__(self, sim: Simulator) -> None:
        self.inner = sim.transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith(UPLOADS):
            body = {"success": False, "code": 403, "msg": "file quota exceeded", "data": None}
            return httpx.Response(403, json=body)
        return await self.inner.handle_async_request(request)


async def test_a_new_create_whose_file_cannot_go_up_again_is_rejected(tmp_path: Path):
    """Resumed when the recorded upload is about to expire, with the files API refusing
    uploads: the inputs not yet sent are rejected (code `upload`), nothing is sent for
    them; the one already sent is read again and completes."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=7, file_ttl=2 * 3600)
    requests = _requests(tmp_path, count=3)[:1] * 3
    journal = tmp_path / "runs.sqlite3"
    async with clock.running():
        async with client_for(sim) as client:
            await _cut_short(client, requests, journal, after=1)
        await clock.sleep(2 * 3600 - EXPIRY_MARGIN + 600)
        creates = sim.count("POST", CREATE)
        async with AsyncEvolink(
            api_key=TEST_API_KEY, base_url=BASE_URL, transport=_UploadsRefused(sim), clock=clock
        ) as client:
            report = await client.images.generate_many(requests, journal=journal, run="r")
    kinds = [o.kind for o in report.outcomes]
    assert OutcomeKind.COMPLETED == kinds[0]
    assert [OutcomeKind.REJECTED] * 2 == kinds[1:]
    assert {"upload"} == {o.error_code for o in report.outcomes[1:]}
    assert creates == sim.count("POST", CREATE)
