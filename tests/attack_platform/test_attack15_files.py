"""Issue 15, part 3: the files API, attacked from the docs alone.

Promises checked (issue 15 "Parts 3", docs/how-to/files.md, the vendored file-series
manual, PLATFORM.md "Files API"):
- "What the files API refuses is refused before anything is sent: an empty file, one over
  10 MB, or anything but a JPEG, PNG, GIF or WebP image raises ValidationError."
- "An upload carries an idempotency key, like a create. If its answer is lost ... it is sent
  again under the same key ...; if no retry is left, UploadUncertainError (an
  OutcomeUnknownError ...) carries the key to send it again with."
- "client.files.uploads remembers uploads by content (sha256): the same image named by a
  thousand rows, or by two paths, is uploaded once, and uploaded again only when its URL is
  about to expire."
- "A batch also accepts pathlib.Path objects in image_urls ... a file it cannot read or send
  ends that input rejected, the others run."
- errors.md: "No error carries the API key, in its message, attributes or cause."
"""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from attack15_server import (
    PNG,
    SECRET,
    Hostile,
    Lost,
    StoredThen,
    envelope_error,
    files_fail,
    files_ok,
    png,
)

from evolink import (
    APIError,
    AsyncEvolink,
    EvolinkError,
    GenerationRequest,
    NotFoundError,
    OutcomeKind,
    OutcomeUnknownError,
    UploadCache,
    UploadedFile,
    UploadUncertainError,
    ValidationError,
)
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

UPLOADS = ("/api/v1/files/upload/base64", "/api/v1/files/upload/stream", "/api/v1/files/upload/url")
MIB = 1024 * 1024

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
WEBP = (
    b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00"
    b"\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def upload_requests(server: Hostile) -> list[httpx.Request]:
    return [r for r in server.log if r.url.path in UPLOADS]


def no_leak(exc: BaseException, *secrets: str) -> list[str]:
    """Every text an error offers, checked for `secrets`; the texts that hold one."""
    texts = [str(exc), repr(exc), repr(exc.args), repr(getattr(exc, "__dict__", {}))]
    link = exc.__cause__ or exc.__context__
    while link is not None:
        texts += [str(link), repr(link), repr(getattr(link, "__dict__", {}))]
        link = link.__cause__ or link.__context__
    return [t for t in texts if any(s in t for s in secrets)]


# --- checked before sending -------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda d: d / "missing.png", id="missing-path"),
        pytest.param(lambda d: _write(d / "empty.png", b""), id="empty-file"),
        pytest.param(lambda d: b"", id="empty-bytes"),
        pytest.param(
            lambda d: _write(d / "big.png", PNG + b"\0" * (10 * MIB)), id="over-10MB-path"
        ),
        pytest.param(lambda d: PNG + b"\0" * (10 * MIB), id="over-10MB-bytes"),
        pytest.param(
            lambda d: _write(d / "notes.png", b"just some text, not a PNG"), id="text-named-png"
        ),
        pytest.param(lambda d: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", id="pdf-bytes"),
        pytest.param(lambda d: b'<svg xmlns="http://www.w3.org/2000/svg"/>', id="svg-bytes"),
        pytest.param(
            lambda d: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00heicmif1", id="heic-bytes"
        ),
        pytest.param(
            lambda d: b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", id="avif-bytes"
        ),
        pytest.param(lambda d: _write(d / "dir.png", None), id="a-directory"),
        pytest.param(lambda d: "ftp://img.example/a.png", id="ftp-url"),
        pytest.param(lambda d: "file:///etc/passwd", id="file-url"),
        pytest.param(lambda d: "product.png", id="bare-name-string"),
        pytest.param(lambda d: "https://", id="url-without-host"),
    ],
)
async def test_bad_upload_refused_before_any_request(
    a15_client: AsyncEvolink, a15_server: Hostile, tmp_path: Path, make: Any
) -> None:
    """'What the files API refuses is refused before anything is sent ... raises
    ValidationError' (files.md); 'the URL is not http(s) (nothing was sent)' (upload's
    docstring)."""
    source = make(tmp_path)
    with pytest.raises(ValidationError):
        await a15_client.files.upload(source)
    assert a15_server.log == []


def _write(path: Path, content: bytes | None) -> Path:
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("content", [PNG, GIF, WEBP, JPEG], ids=["png", "gif", "webp", "jpeg"])
async def test_each_accepted_type_is_sent(
    a15_client: AsyncEvolink, a15_server: Hostile, tmp_path: Path, content: bytes
) -> None:
    """'a JPEG, PNG, GIF or WebP image' is accepted, from a path whose name says nothing
    of its type, with a single request carrying an Idempotency-Key."""
    path = _write(tmp_path / "reference", content)
    stored = await a15_client.files.upload(path)
    assert stored.file_url.startswith("https://")
    sent = upload_requests(a15_server)
    assert len(sent) == 1
    assert sent[0].headers.get("idempotency-key")


async def test_ten_megabytes_exactly_is_not_over(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """'one over 10 MB' is refused: 10,000,000 bytes is not over 10 MB however it is read."""
    await a15_client.files.upload(PNG + b"\0" * (10_000_000 - len(PNG)))
    assert len(upload_requests(a15_server)) == 1


# --- lost answers ---------------------------------------------------------------------------


async def test_lost_upload_answer_is_resent_under_the_same_key(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock, tmp_path: Path
) -> None:
    """'If its answer is lost (the connection drops after the file was stored), it is sent
    again under the same key and the server answers with the file it stored'."""
    a15_server.upload_fault = lambda r, attempt: Lost if attempt == 1 else None
    async with a15_clock.running():
        stored = await a15_client.files.upload(_write(tmp_path / "p.png", png(b"lost")))
    sent = upload_requests(a15_server)
    assert len(sent) == 2
    assert len({r.headers["idempotency-key"] for r in sent}) == 1
    assert len(a15_server.files) == 1
    assert stored.file_id == next(iter(a15_server.files))


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda: Lost, id="connection-dropped"),
        pytest.param(lambda: StoredThen(envelope_error(500, "internal", "oops")), id="500"),
        pytest.param(lambda: StoredThen(envelope_error(502, "bad_gateway", "up")), id="502"),
        pytest.param(lambda: StoredThen(envelope_error(504, "timeout", "up")), id="504"),
    ],
)
async def test_upload_answer_lost_for_good_is_uncertain_and_keyed(
    a15_server: Hostile, a15_clock: VirtualClock, fault: Any
) -> None:
    """'if no retry is left, UploadUncertainError (an OutcomeUnknownError, as
    SubmissionUncertainError is) carries the key to send it again with' (files.md);
    PLATFORM.md: the official client 'treats a lost answer to an upload as "outcome
    unknown", like a create' (a create's 500/502/504 is uncertain, errors.md). Sending it
    again with that key gets the stored file, not a second one."""
    marker = b"CONTENT-MARKER-7731"
    content = png(marker)
    a15_server.upload_fault = lambda r, attempt: fault()
    async with AsyncEvolink(
        api_key=SECRET, transport=a15_server.transport(), clock=a15_clock, max_retries=0
    ) as client:
        with pytest.raises(UploadUncertainError) as caught:
            await client.files.upload(content)
        err = caught.value
        assert isinstance(err, OutcomeUnknownError)
        sent_key = upload_requests(a15_server)[0].headers["idempotency-key"]
        assert err.idempotency_key == sent_key
        # UploadUncertainError.source is "a file name or URL; never its content".
        b64 = base64.b64encode(content).decode()
        assert not no_leak(err, marker.decode(), b64[:40], SECRET)
        a15_server.upload_fault = lambda r, attempt: None
        again = await client.files.upload(content, idempotency_key=err.idempotency_key)
    assert len(a15_server.files) == 1
    assert again.file_id == next(iter(a15_server.files))


async def test_5xx_before_storing_is_retried_under_one_key(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """A 503 (nothing stored) then success: one file, every attempt under one key."""
    a15_server.upload_fault = lambda r, attempt: (
        envelope_error(503, "unavailable", "busy") if attempt == 1 else None
    )
    async with a15_clock.running():
        await a15_client.files.upload(png(b"503"))
    keys = {r.headers["idempotency-key"] for r in upload_requests(a15_server)}
    assert len(keys) == 1
    assert len(a15_server.files) == 1


async def test_quota_exhausted_is_a_refusal_not_uncertain(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """'Uploads will fail when quota is exhausted' (manual), in the envelope 'success:
    false ... is an error even with HTTP 200' (PLATFORM.md): an APIError, sent once."""
    a15_server.upload_fault = lambda r, attempt: files_fail(403, "file quota exceeded (2000)")
    async with a15_clock.running():
        with pytest.raises(APIError) as caught:
            await a15_client.files.upload(png(b"quota"))
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert len(upload_requests(a15_server)) == 1
    assert a15_server.files == {}


async def test_expired_source_url_is_a_refusal(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """Uploading by URL a link that has expired (an old file_url): the files API cannot
    fetch it and says so (success: false). An APIError, not a file, not uncertain."""
    a15_server.upload_fault = lambda r, attempt: files_fail(400, "failed to download file: 404")
    async with a15_clock.running():
        with pytest.raises(APIError) as caught:
            await a15_client.files.upload("https://files.evolink.example/images/expired.png")
    assert not isinstance(caught.value, OutcomeUnknownError)
    body = json.loads(upload_requests(a15_server)[0].content)
    assert body["file_url"] == "https://files.evolink.example/images/expired.png"


@pytest.mark.parametrize("status", [200, 401, 403])
async def test_key_quoted_by_the_files_api_never_leaks(
    a15_server: Hostile, a15_clock: VirtualClock, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    """errors.md: 'No error carries the API key, in its message, attributes or cause.' The
    files API quotes it back in `msg` (with HTTP 200 and success: false, or a 401/403)."""
    caplog.set_level("DEBUG")
    a15_server.upload_fault = lambda r, attempt: files_fail(
        status if status != 200 else 401, f"token {SECRET} is not allowed here", status=status
    )
    a15_server.quota_body = None
    async with AsyncEvolink(
        api_key=SECRET, transport=a15_server.transport(), clock=a15_clock, max_retries=0
    ) as client:
        with pytest.raises(EvolinkError) as caught:
            await client.files.upload(png(b"leak"))
    assert not no_leak(caught.value, SECRET, SECRET[8:])
    assert not [r for r in caplog.records if SECRET[8:] in r.getMessage()]


# --- listing, quota, delete ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{"page": 0}, {"page": -1}, {"page_size": 0}, {"page_size": 101}]
)
async def test_file_list_bounds_checked_before_sending(
    a15_client: AsyncEvolink, a15_server: Hostile, kwargs: dict[str, int]
) -> None:
    """files.list: 'ValidationError: page below 1 or page_size outside 1-100 (nothing
    sent)'."""
    with pytest.raises(ValidationError):
        await a15_client.files.list(**kwargs)
    assert a15_server.log == []


async def test_file_list_survives_sparse_and_odd_rows(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """A lenient reader: rows with only the two fields that matter, extra fields, times in
    another zone."""
    rows = [
        {"file_id": "file_a", "file_url": "https://files.evolink.example/a.png"},
        {
            "file_id": "file_b",
            "file_url": "https://files.evolink.example/b.png",
            "upload_time": "2026-09-01T00:00:00+08:00",
            "expires_at": "2026-09-04T00:00:00+08:00",
            "thumbnail": {"w": 1},
            "file_size": 12,
        },
    ]
    a15_server.file_list = lambda r: files_ok({"files": rows, "total": "2", "page": 1})
    page = await a15_client.files.list()
    assert [f.file_id for f in page.files] == ["file_a", "file_b"]
    expires = page.files[1].expires_at
    assert expires is not None
    assert expires.astimezone(UTC) == datetime(2026, 9, 3, 16, 0, tzinfo=UTC)


async def test_file_iteration_ends_when_the_server_ignores_the_page(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """files.iterate: 'Every file of the account, page after page.' A server that ignores
    `page` and answers the same full page every time: the iteration ends, each file once."""
    rows = [{"file_id": f"file_{i}", "file_url": f"https://f.example/{i}.png"} for i in range(5)]
    calls = 0

    def same_page(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls > 50:  # a runaway reader: end it with an empty page, and fail below
            return files_ok({"files": [], "total": 500, "page": 51, "page_size": 5})
        return files_ok({"files": rows, "total": 500, "page": 1, "page_size": 5})

    a15_server.file_list = same_page
    with anyio.fail_after(10):
        seen = [f.file_id async for f in a15_client.files.iterate(page_size=5)]
    assert calls <= 50, "the iteration read the same page over and over"
    assert sorted(set(seen)) == sorted(r["file_id"] for r in rows)
    assert len(seen) == len(set(seen))


async def test_quota_with_optional_fields_missing(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """Every field of the manual's QuotaData is optional: an answer with only the counts is
    still a quota; the manual's own example (35 used of 2000, 65 remaining) is read as given."""
    a15_server.quota_body = {"used_files": 35, "max_files": 2000}
    quota = await a15_client.files.quota()
    assert (quota.used_files, quota.max_files) == (35, 2000)
    a15_server.quota_body = {
        "user_group": "default",
        "used_files": 35,
        "max_files": 2000,
        "remain_files": 65,
        "is_custom": False,
        "quota_reason": "",
    }
    quota = await a15_client.files.quota()
    assert quota.remain_files == 65


@pytest.mark.parametrize("file_id", ["", "a/b", "../quota"])
async def test_delete_refuses_bad_ids_before_sending(
    a15_client: AsyncEvolink, a15_server: Hostile, file_id: str
) -> None:
    """files.delete: 'ValidationError: file_id is empty or holds a / (nothing sent)'."""
    with pytest.raises(ValidationError):
        await a15_client.files.delete(file_id)
    assert a15_server.log == []


@pytest.mark.parametrize("file_id", ["file_1?force=true", "file_1#frag", "file 1", "%2e%2e"])
async def test_delete_id_cannot_reach_another_url(
    a15_client: AsyncEvolink, a15_server: Hostile, file_id: str
) -> None:
    """DELETE /api/v1/files/{file_id}: an id is one path segment, whatever it holds; it
    never becomes a query, a fragment or another path (or it is refused, unsent)."""
    a15_server.files["file_1"] = {"file_id": "file_1"}
    try:
        await a15_client.files.delete(file_id)
    except ValidationError:
        assert a15_server.log == []
        return
    except NotFoundError:
        pass
    sent = a15_server.log[-1]
    assert sent.url.query == b""
    assert sent.url.fragment == ""
    assert "file_1" in a15_server.files, "an odd id deleted another file"


async def test_delete_missing_file_is_not_found(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """files.delete: 'NotFoundError: no such file'."""
    with pytest.raises(NotFoundError):
        await a15_client.files.delete("file_gone")


# --- the upload cache --------------------------------------------------------------------------


async def test_same_content_under_two_paths_and_ten_callers_is_uploaded_once(
    a15_client: AsyncEvolink, a15_server: Hostile, tmp_path: Path
) -> None:
    """'the same image named by a thousand rows, or by two paths, is uploaded once'."""
    first = _write(tmp_path / "a.png", png(b"same"))
    second = _write(tmp_path / "copy-of-a.png", png(b"same"))
    urls: list[str] = []

    async def one(path: Path) -> None:
        urls.append(await a15_client.files.uploads.url_for(path))

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(one, first if i % 2 else second)
    assert len(upload_requests(a15_server)) == 1
    assert len(set(urls)) == 1


async def test_upload_about_to_expire_is_uploaded_again(
    a15_server: Hostile, a15_clock: VirtualClock, tmp_path: Path
) -> None:
    """'uploaded again only when its URL is about to expire' (files.md); issue 15:
    're-uploaded if its URL has expired by the time a resumed run needs it'. A store kept
    from an earlier run holds one upload about to expire, one good for days."""
    fresh = _write(tmp_path / "fresh.png", png(b"fresh"))
    stale = _write(tmp_path / "stale.png", png(b"stale"))
    now = datetime.fromtimestamp(a15_clock.time(), tz=UTC)

    def kept(name: str, expires: datetime) -> UploadedFile:
        return UploadedFile(
            file_id=name, file_url=f"https://files.evolink.example/{name}.png", expires_at=expires
        )

    store = {
        hashlib.sha256(fresh.read_bytes()).hexdigest(): kept(
            "kept-fresh", now + timedelta(hours=70)
        ),
        hashlib.sha256(stale.read_bytes()).hexdigest(): kept(
            "kept-stale", now + timedelta(seconds=5)
        ),
    }
    async with AsyncEvolink(
        api_key=SECRET, transport=a15_server.transport(), clock=a15_clock
    ) as client:
        cache = UploadCache(client.files, now=client.clock.time, store=store)
        assert await cache.url_for(fresh) == "https://files.evolink.example/kept-fresh.png"
        new_url = await cache.url_for(stale)
    assert new_url != "https://files.evolink.example/kept-stale.png"
    assert len(upload_requests(a15_server)) == 1


async def test_upload_answered_already_expired_does_not_loop(
    a15_client: AsyncEvolink, a15_server: Hostile, tmp_path: Path
) -> None:
    """A files API whose clock is behind answers an expiry already past: url_for still
    ends, with a URL, after a bounded number of uploads."""
    a15_server.upload_expires_in = -60
    path = _write(tmp_path / "p.png", png(b"skew"))
    with anyio.fail_after(5):
        url = await a15_client.files.uploads.url_for(path)
    assert url.startswith("https://")
    assert len(upload_requests(a15_server)) <= 2


async def test_cache_after_an_uncertain_upload_reuses_its_key(
    a15_server: Hostile, a15_clock: VirtualClock, tmp_path: Path
) -> None:
    """A lost answer is 'uncertain' and is only ever 'sent again under the same key': the
    next row needing the same content must not store it a second time under a new key."""
    path = _write(tmp_path / "p.png", png(b"twice"))
    a15_server.upload_fault = lambda r, attempt: Lost if attempt == 1 else None
    async with AsyncEvolink(
        api_key=SECRET, transport=a15_server.transport(), clock=a15_clock, max_retries=0
    ) as client:
        with pytest.raises(UploadUncertainError):
            await client.files.uploads.url_for(path)
        await client.files.uploads.url_for(path)
    keys = {r.headers["idempotency-key"] for r in upload_requests(a15_server)}
    assert len(a15_server.files) == 1, f"stored twice, under keys {keys}"


# --- local files in a batch -------------------------------------------------------------------


async def test_batch_uploads_each_distinct_content_once_and_rejects_bad_files(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock, tmp_path: Path
) -> None:
    """'A batch also accepts pathlib.Path objects in image_urls ... and uploads them through
    the same cache before each create; a file it cannot read or send ends that input
    rejected, the others run.' Every input ends in exactly one outcome."""
    a = _write(tmp_path / "a.png", png(b"A"))
    a_copy = _write(tmp_path / "a-copy.png", png(b"A"))
    b = _write(tmp_path / "b.png", png(b"B"))
    missing = tmp_path / "missing.png"
    huge = _write(tmp_path / "huge.png", PNG + b"\0" * (11 * MIB))
    text = _write(tmp_path / "text.png", b"not an image at all")
    refs: list[list[Path]] = (
        [[a]] * 4 + [[b]] * 3 + [[a_copy]] * 2 + [[missing], [huge], [text], [a, b]]
    )
    requests = [
        GenerationRequest(prompt=f"scene {i}", image_urls=ref)  # type: ignore[arg-type]
        for i, ref in enumerate(refs)
    ]
    async with a15_clock.running():
        report = await a15_client.images.generate_many(requests, max_in_flight=4)
    assert [o.index for o in report.outcomes] == list(range(len(refs)))
    kinds = [o.kind for o in report.outcomes]
    assert kinds[9:12] == [OutcomeKind.REJECTED] * 3
    assert kinds[:9] + kinds[12:] == [OutcomeKind.COMPLETED] * 10
    assert len(upload_requests(a15_server)) == 2
    sent_urls = [u for body in a15_server.creates for u in body.get("image_urls", [])]
    assert sent_urls
    assert all(u.startswith("https://files.evolink.example/") for u in sent_urls)
    assert len(a15_server.creates) == 10


async def test_batch_with_a_lost_upload_stores_the_content_once(
    a15_server: Hostile, a15_clock: VirtualClock, tmp_path: Path
) -> None:
    """Rows sharing a file whose upload answer is lost for good: each row ends in one
    outcome, and the content is stored at most once (a resend only under the same key)."""
    shared = _write(tmp_path / "shared.png", png(b"shared"))
    a15_server.upload_fault = lambda r, attempt: Lost
    requests = [GenerationRequest(prompt=f"scene {i}", image_urls=[shared]) for i in range(6)]  # type: ignore[list-item]
    async with AsyncEvolink(
        api_key=SECRET, transport=a15_server.transport(), clock=a15_clock, max_retries=0
    ) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            async with a15_clock.running():
                report = await client.images.generate_many(requests, max_in_flight=3)
    assert [o.index for o in report.outcomes] == list(range(6))
    assert len(a15_server.files) <= 1
    keys = {r.headers["idempotency-key"] for r in upload_requests(a15_server)}
    assert len(keys) == 1
