"""`UploadCache.renew` and the journal's upload cache, piece by piece: which URLs a new
create keeps, which it replaces, and how a run's recorded uploads seed the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from _platform_support import client_for, png

from evolink import (
    AsyncEvolink,
    GenerationRequest,
    SQLiteJournal,
    UploadedFile,
    UploadRecord,
    ValidationError,
)
from evolink._batch_journal import BatchJournal
from evolink._uploads import EXPIRY_MARGIN, journal_upload_cache
from evolink.testing import Simulator, VirtualClock

pytestmark = pytest.mark.anyio

UPLOADS = "/api/v1/files/upload"
TTL = 2 * 3600.0


@pytest.fixture
def sim(clock: VirtualClock) -> Simulator:
    return Simulator(clock=clock, seed=7, file_ttl=TTL)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "a.png"
    path.write_bytes(png(1))
    return path


async def _expiring(client: AsyncEvolink, clock: VirtualClock, image: Path) -> str:
    """An upload of `image`, made and then left to come within the margin of expiring."""
    url = await client.files.uploads.url_for(image)
    await clock.sleep(TTL - EXPIRY_MARGIN + 60)
    return url


async def test_a_valid_url_stays_and_an_expiring_one_is_replaced(
    client: AsyncEvolink, sim: Simulator, clock: VirtualClock, image: Path
):
    """Renewing: a URL that is no upload of ours stays; an expiring upload, wherever it
    is named (a list, the mask, a parameter), becomes one new upload of the file."""
    old = await _expiring(client, clock, image)
    request = GenerationRequest(
        prompt="p",
        image_urls=[old, "https://x/y.png"],
        mask_url=old,
        params={"reference": [old], "strength": 0.5},
    )

    renewed = await client.files.uploads.renew(request)

    assert isinstance(renewed, GenerationRequest)
    assert renewed.image_urls is not None
    new = renewed.image_urls[0]
    assert (new, "https://x/y.png") == renewed.image_urls
    assert new != old
    assert new == renewed.mask_url
    assert {"reference": [new], "strength": 0.5} == renewed.params
    assert 2 == sim.count("POST", UPLOADS)
    plain = GenerationRequest(prompt="p")
    assert plain is await client.files.uploads.renew(plain)
    fresh = GenerationRequest(prompt="p", image_urls=[new])
    assert fresh is await client.files.uploads.renew(fresh)


async def test_an_upload_made_again_since_is_taken(
    client: AsyncEvolink, sim: Simulator, clock: VirtualClock, image: Path
):
    """The file went up again meanwhile (another input's create): its URL is taken, and
    nothing more is uploaded."""
    old = await _expiring(client, clock, image)
    new = await client.files.uploads.url_for(image)  # fresh: made again

    renewed = await client.files.uploads.renew(GenerationRequest(prompt="p", image_urls=[old]))

    assert isinstance(renewed, GenerationRequest)
    assert (new,) == renewed.image_urls
    assert 2 == sim.count("POST", UPLOADS)


async def test_a_file_changed_since_is_refused(
    client: AsyncEvolink, clock: VirtualClock, image: Path
):
    """The file's content is not what was uploaded any more: refused, not uploaded under
    the old content's name."""
    old = await _expiring(client, clock, image)
    image.write_bytes(png(2))  # noqa: ASYNC240 - a small test file

    refused = await client.files.uploads.renew(GenerationRequest(prompt="p", image_urls=[old]))

    assert isinstance(refused, ValidationError)
    assert "changed" == refused.rule


async def test_an_upload_refused_is_a_validation_error(clock: VirtualClock, image: Path):
    """The files API refusing the new upload (the quota full) is the input's refusal."""
    sim = Simulator(clock=clock, seed=7, file_ttl=TTL, max_files=2)
    async with clock.running(), client_for(sim) as client:
        old = await _expiring(client, clock, image)
        await client.files.upload(png(3))  # the quota's second file: it is full
        refused = await client.files.uploads.renew(GenerationRequest(prompt="p", image_urls=[old]))
    assert isinstance(refused, ValidationError)
    assert "upload" == refused.rule


def _record(file_id: str, sha: str, expires_at: float | None) -> UploadRecord:
    return UploadRecord(
        sha256=sha, file_id=file_id, file_url=f"https://f/{file_id}.png", expires_at=expires_at
    )


async def test_the_journal_seeds_the_latest_upload_of_each_content(
    client: AsyncEvolink, tmp_path: Path
):
    """Of a content's recorded uploads the one expiring last is used (one that never
    expires beats all); every recorded URL is known as its content; a new upload is
    recorded (and only in memory may it be forgotten)."""
    records = [
        _record("a2", "aa", 2e9),
        _record("a1", "aa", 1e9),
        _record("b1", "bb", 1e9),
        _record("b2", "bb", None),
    ]
    store = SQLiteJournal.open(tmp_path / "runs.sqlite3")
    journal = BatchJournal(store, "r", {}, uploads=records)
    cache = journal_upload_cache(client.files, client.clock.time, journal)

    assert {"aa": "a2", "bb": "b2"} == {k: v.file_id for k, v in cache.store.items()}
    assert 2 == len(cache.store)
    assert {f"https://f/{r.file_id}.png": r.sha256 for r in records} == cache.aliases
    cache.store["cc"] = UploadedFile(file_id="c1", file_url="https://f/c1.png")
    del cache.store["cc"]
    await journal._write_queued()  # the batch's writer, run by hand
    assert ["c1"] == [u.file_id for u in await store.uploads("r")]
    assert "cc" not in cache.store
    store.close()
