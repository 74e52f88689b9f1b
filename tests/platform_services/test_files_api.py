"""`client.files`: uploads (path, bytes, URL), limits checked before sending, list, quota,
delete, idempotency keys and lost answers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx
from _platform_support import BASE_URL, FAST_RETRIES, client_for, png

from evolink import (
    AsyncEvolink,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    OutcomeUnknownError,
    UploadedFile,
    UploadUncertainError,
    ValidationError,
)
from evolink._files import FILES_BASE_URL, MAX_UPLOAD_BYTES, sniff_image_type
from evolink.testing import TEST_API_KEY, Faults, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

UPLOADS = "/api/v1/files/upload"


async def test_upload_a_path_gives_a_url_that_expires_in_72_hours(
    client: AsyncEvolink, sim: Simulator, tmp_path: Path
):
    """A local PNG becomes a stored file whose URL `image_urls` can take."""
    path = tmp_path / "product.png"
    path.write_bytes(png(1))

    uploaded = await client.files.upload(path)

    assert uploaded.file_url.startswith("http")
    assert "product.png" == uploaded.original_name
    assert "image/png" == uploaded.mime_type
    assert uploaded.expires_at is not None
    assert uploaded.upload_time is not None
    assert 72 * 3600 == (uploaded.expires_at - uploaded.upload_time).total_seconds()
    assert [uploaded.file_id] == list(sim.files)


async def test_upload_bytes_and_url(client: AsyncEvolink, sim: Simulator):
    """Bytes go as base64, a URL as `file_url`; each carries an Idempotency-Key."""
    await client.files.upload(png(2), file_name="two.png", upload_path="refs")
    await client.files.upload("https://example.com/cat.png")

    paths = [r.path for r in sim.requests]
    assert [f"{UPLOADS}/base64", f"{UPLOADS}/url"] == paths
    assert all(r.idempotency_key for r in sim.requests)
    assert 2 == len(sim.files)


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        pytest.param(b"", "not_empty", id="empty"),
        pytest.param(b"GIF89a" + b"\0" * MAX_UPLOAD_BYTES, "max_size", id="over-10-mb"),
        pytest.param(b"%PDF-1.7 not an image", "type", id="not-an-image"),
        pytest.param("ftp://example.com/a.png", "url", id="not-http"),
        pytest.param("product.png", "url", id="a-str-that-is-no-url"),
    ],
)
async def test_bad_uploads_are_refused_before_sending(
    client: AsyncEvolink, sim: Simulator, source: bytes | str, rule: str
):
    """Size, type and URL are checked locally: nothing reaches the server."""
    with pytest.raises(ValidationError) as caught:
        await client.files.upload(source)

    assert rule == caught.value.rule
    assert [] == list(sim.requests)


async def test_a_missing_or_huge_file_is_refused_before_reading(
    client: AsyncEvolink, sim: Simulator, tmp_path: Path
):
    """A missing path and a file over 10 MB fail as ValidationError, with nothing sent."""
    with pytest.raises(ValidationError, match="readable"):
        await client.files.upload(tmp_path / "missing.png")
    big = tmp_path / "big.png"
    big.write_bytes(png(0) + b"\0" * MAX_UPLOAD_BYTES)
    with pytest.raises(ValidationError, match="max_size"):
        await client.files.upload(big)
    assert [] == list(sim.requests)


async def test_list_quota_and_delete(client: AsyncEvolink):
    """The listing pages through files; the quota counts them; delete removes one."""
    uploaded = [await client.files.upload(png(i)) for i in range(5)]

    first = await client.files.list(page=1, page_size=2)
    everything = [f async for f in client.files.iterate(page_size=2)]
    quota = await client.files.quota()
    await client.files.delete(uploaded[0].file_id)
    after = await client.files.quota()

    assert 2 == len(first.files)
    assert 5 == first.total
    assert {f.file_id for f in uploaded} == {f.file_id for f in everything}
    assert (5, 2000, 1995) == (quota.used_files, quota.max_files, quota.remain_files)
    assert 4 == after.used_files
    with pytest.raises(NotFoundError):
        await client.files.delete(uploaded[0].file_id)


@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        pytest.param("list", {"page": 0}, id="page-0"),
        pytest.param("list", {"page_size": 101}, id="page-size-101"),
        pytest.param("delete", {"file_id": "a/b"}, id="delete-a-path"),
        pytest.param("delete", {"file_id": ""}, id="delete-empty"),
    ],
)
async def test_bad_arguments_send_nothing(
    client: AsyncEvolink, sim: Simulator, call: str, kwargs: dict[str, object]
):
    """Out-of-range pages and malformed ids are refused locally."""
    with pytest.raises(ValidationError):
        await getattr(client.files, call)(**kwargs)
    assert [] == list(sim.requests)


async def test_files_expire_after_72_hours(client: AsyncEvolink, clock: VirtualClock):
    """An expired file leaves the listing and the quota."""
    await client.files.upload(png(1))
    await clock.sleep(72 * 3600 + 1)

    assert 0 == (await client.files.quota()).used_files
    assert () == (await client.files.list()).files


async def test_the_quota_refuses_uploads_past_it(clock: VirtualClock):
    """With the account's file quota used up, the server's refusal is a typed error."""
    sim = Simulator(clock=clock, max_files=1)
    async with client_for(sim) as client:
        await client.files.upload(png(1))
        with pytest.raises(Exception, match="quota") as caught:
            await client.files.upload(png(2))
    assert "PermissionDeniedError" == type(caught.value).__name__


async def test_a_lost_upload_answer_is_resent_under_its_key(clock: VirtualClock):
    """The answer lost: the upload is sent again with the same key, and the server answers
    with the file it stored (one file, not two)."""
    sim = Simulator(clock=clock, faults=Faults(lost_upload_response=1.0))
    async with clock.running(), client_for(sim) as client:
        uploaded = await client.files.upload(png(3))
    assert [uploaded.file_id] == list(sim.files)
    keys = {r.idempotency_key for r in sim.requests}
    assert (2, 1) == (len(sim.requests), len(keys))
    assert [False, True] == [r.replayed for r in sim.requests]


async def test_a_lost_upload_answer_without_retries_is_uncertain(clock: VirtualClock):
    """No retry left: UploadUncertainError (an OutcomeUnknownError) with the key, which
    later finds the file stored rather than storing a second one."""
    sim = Simulator(clock=clock, faults=Faults(lost_upload_response=1.0))
    async with clock.running(), client_for(sim, max_retries=0) as client:
        with pytest.raises(UploadUncertainError) as caught:
            await client.files.upload(png(3))
        again = await client.files.upload(png(3), idempotency_key=caught.value.idempotency_key)
    assert isinstance(caught.value, OutcomeUnknownError)
    assert "<bytes>" in str(caught.value)
    assert [again.file_id] == list(sim.files)


async def test_upload_server_errors_are_retried_then_raised(clock: VirtualClock):
    """A 503 stores nothing: it is retried like any safe failure, then raised."""
    from evolink import ServerError  # noqa: PLC0415

    sim = Simulator(clock=clock, faults=Faults(upload_errors=1.0))
    async with clock.running(), client_for(sim, max_retries=2) as client:
        with pytest.raises(ServerError):
            await client.files.upload(png(1))
    assert [503, 503, 503] == [r.status for r in sim.requests]
    assert {} == dict(sim.files)


async def test_the_files_api_has_its_own_host():
    """Against the real API, files go to files-api.evolink.ai, with the key, never leaked."""
    async with respx.mock(assert_all_called=True) as mock:
        route = mock.post(f"{FILES_BASE_URL}/api/v1/files/upload/base64").respond(
            200,
            json={
                "success": True,
                "code": 200,
                "data": {"file_id": "file_1", "file_url": "https://files.evolink.ai/a.png"},
                "surprise": {"ignored": True},
            },
        )
        async with AsyncEvolink(api_key=TEST_API_KEY, retry_policy=FAST_RETRIES) as client:
            found = await client.files.upload(png(1))
    assert UploadedFile(file_id="file_1", file_url="https://files.evolink.ai/a.png") == found
    assert f"Bearer {TEST_API_KEY}" == route.calls[0].request.headers["Authorization"]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"success": True, "code": 200, "data": None}, id="no-data"),
        pytest.param({"success": True, "data": {"file_id": "f"}}, id="no-url"),
    ],
)
async def test_an_upload_answer_without_a_file_is_a_decode_error(answer: dict[str, object]):
    """A 200 that names no file is `ResponseDecodeError`, not a half-made value."""
    from evolink import ResponseDecodeError  # noqa: PLC0415

    async with respx.mock() as mock:
        mock.post(f"{BASE_URL}/api/v1/files/upload/base64").respond(200, json=answer)
        transport = httpx.MockTransport(mock.handler)
        async with AsyncEvolink(
            api_key=TEST_API_KEY, base_url=BASE_URL, transport=transport, max_retries=0
        ) as client:
            with pytest.raises(ResponseDecodeError):
                await client.files.upload(png(1))


async def test_a_refusal_with_http_200_is_an_error():
    """`{success: false, code: 400, msg}` is a BadRequestError carrying the message."""
    async with respx.mock() as mock:
        mock.post(f"{BASE_URL}/api/v1/files/upload/base64").respond(
            200, json={"success": False, "code": 400, "msg": "file size exceeds 10MB"}
        )
        transport = httpx.MockTransport(mock.handler)
        async with AsyncEvolink(
            api_key=TEST_API_KEY, base_url=BASE_URL, transport=transport
        ) as client:
            with pytest.raises(BadRequestError, match="exceeds 10MB"):
                await client.files.upload(png(1))


@pytest.mark.parametrize(
    ("content", "mime"),
    [
        pytest.param(b"\xff\xd8\xff\xe0rest", "image/jpeg", id="jpeg"),
        pytest.param(b"GIF87a...", "image/gif", id="gif"),
        pytest.param(b"RIFF\0\0\0\0WEBPVP8 ", "image/webp", id="webp"),
        pytest.param(b"BM bitmap", None, id="bmp"),
    ],
)
def test_image_types_are_told_by_their_first_bytes(content: bytes, mime: str | None):
    """The four types the files API takes are recognised; anything else is not."""
    assert mime == sniff_image_type(content)


def test_the_files_host_follows_the_configuration(monkeypatch: pytest.MonkeyPatch):
    """EVOLINK_FILES_BASE_URL wins; a custom API base serves files too; else Evolink's host."""
    from evolink._files import files_base_url  # noqa: PLC0415

    default = AsyncEvolink(api_key=TEST_API_KEY)
    custom = AsyncEvolink(api_key=TEST_API_KEY, base_url="http://127.0.0.1:8000/")
    assert FILES_BASE_URL == files_base_url(default)
    assert "http://127.0.0.1:8000" == files_base_url(custom)
    monkeypatch.setenv("EVOLINK_FILES_BASE_URL", "https://files.example/")
    assert "https://files.example" == files_base_url(default)


async def test_the_simulator_refuses_what_the_docs_refuse():
    """Raw HTTP: bad base64, a non-image, a bad URL, a bad page: `success: false`."""
    sim = Simulator(clock=VirtualClock())
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url=BASE_URL, headers=headers
    ) as http:
        answers = [
            await http.post(f"{UPLOADS}/base64", json={"base64_data": "!!!"}),
            await http.post(f"{UPLOADS}/base64", json={"base64_data": "data:image/png"}),
            await http.post(f"{UPLOADS}/base64", json={"base64_data": "aGVsbG8="}),
            await http.post(f"{UPLOADS}/base64", json=["not", "an", "object"]),
            await http.post(f"{UPLOADS}/url", json={"file_url": "ftp://x"}),
            await http.get("/api/v1/files/list", params={"page": "x"}),
            await http.get("/api/v1/files/list", params={"page": "0"}),
        ]
    assert all(a.status_code == 200 and a.json()["success"] is False for a in answers)


@pytest.mark.parametrize(
    "url",
    [
        "https://files-api.evolink.ai.attacker.example/api/v1/files/quota",
        "https://attacker.example/api/v1/files/quota",
        "http://files-api.evolink.ai/api/v1/files/quota",
        "https://api.evolink.ai@attacker.example/v1/tasks",
    ],
)
async def test_the_transport_sends_the_key_only_to_configured_hosts(url: str):
    """`Transport.send(url=...)` refuses an address outside the base URL and the files host:
    nothing is sent, nothing counted."""
    from evolink._retry import RequestKind  # noqa: PLC0415
    from evolink._transport import Transport  # noqa: PLC0415

    async with respx.mock(assert_all_called=False) as mock:
        route = mock.route().respond(200, json={})
        async with AsyncEvolink(api_key=TEST_API_KEY, retry_policy=FAST_RETRIES) as client:
            transport = client.tasks._transport
            assert isinstance(transport, Transport)
            with pytest.raises(ConfigurationError):
                await transport.send(RequestKind.READ, "GET", "/x", url=url)
            assert 0 == client.requests_sent
    assert not route.called


async def test_platform_requests_are_counted_once_each(clock: VirtualClock):
    """Uploads, file reads, catalog and price reads and task listings all go through the
    transport: `requests_sent` matches what the server saw."""
    sim = Simulator(clock=clock)
    async with clock.running(), client_for(sim) as client:
        await client.files.upload(png(1))
        await client.files.quota()
        await client.files.list()
        await client.models.list()
        _ = [task async for task in client.tasks.list(limit=5)]
        assert len(sim.requests) == client.requests_sent
