"""`client.tasks.save` against result hosts: redirects, types by their bytes, names, time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import httpx
import pytest
from _core_support import API_KEY, BASE_URL, TASK_ID

from evolink import AsyncEvolink, DownloadError, Task, ValidationError
from evolink._downloads import MAX_REDIRECTS, sniff

pytestmark = pytest.mark.anyio

HOST = "https://results.test"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
GIF = b"GIF89a" + b"\x00" * 32
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00" + b"\x00" * 32
M4A = b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00" + b"\x00" * 32
WEBM = b"\x1a\x45\xdf\xa3" + b"\x00" * 32
OGG = b"OggS\x00\x02" + b"\x00" * 32
MP3_ID3 = b"ID3\x04\x00\x00" + b"\x00" * 32
MP3_FRAME = b"\xff\xfb\x90\x64" + b"\x00" * 32
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32
HTML = b"<!doctype html><html>a CDN error page</html>"

Handler = Callable[[httpx.Request], httpx.Response]


class Host:
    """A result host as an httpx handler, recording what it was sent."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        route = self.routes.get(request.url.path)
        return route(request) if route else httpx.Response(404, text="no")


def _file(body: bytes, content_type: str | None) -> Handler:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return lambda _: httpx.Response(200, content=body, headers=headers)


def _redirect(status: int, location: str) -> Handler:
    return lambda _: httpx.Response(status, headers={"Location": location})


def _task(*urls: str) -> Task:
    return Task.from_dict({"id": TASK_ID, "status": "completed", "results": list(urls)})


async def _save(
    task: Task,
    folder: Path,
    host: Host,
    *,
    client_options: dict[str, object] | None = None,
    **kwargs: object,
) -> list[Path]:
    async with (
        AsyncEvolink(api_key=API_KEY, base_url=BASE_URL) as client,
        httpx.AsyncClient(transport=httpx.MockTransport(host), **(client_options or {})) as http,
    ):
        return await client.tasks.save(task, folder, http_client=http, **kwargs)  # type: ignore[arg-type]


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# -- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "client_options",
    [
        pytest.param({}, id="plain-client"),
        pytest.param({"follow_redirects": True, "max_redirects": 50}, id="following-client"),
    ],
)
async def test_redirects_are_followed_whoever_made_the_client(
    tmp_path: Path, client_options: dict[str, object]
) -> None:
    """A 302 then a relative 307 to another host reach the file, with the caller's client."""
    host = Host(
        {
            "/r1": _redirect(302, "/r2"),
            "/r2": _redirect(307, "https://cdn.test/final"),
            "/final": _file(PNG, "image/png"),
        }
    )

    paths = await _save(_task(f"{HOST}/r1"), tmp_path, host, client_options=client_options)

    assert [tmp_path / f"{TASK_ID}-1.png"] == paths
    assert PNG == paths[0].read_bytes()
    assert ["/r1", "/r2", "/final"] == [r.url.path for r in host.seen]


async def test_no_credential_goes_to_a_result_host_even_from_the_callers_client(
    tmp_path: Path,
) -> None:
    """An `Authorization` on the caller's client (header or auth) is sent on no hop."""
    host = Host({"/r": _redirect(302, "https://cdn.test/f"), "/f": _file(PNG, "image/png")})
    options: dict[str, object] = {
        "headers": {"Authorization": f"Bearer {API_KEY}"},
        "auth": ("user", "pass"),
    }

    await _save(_task(f"{HOST}/r"), tmp_path, host, client_options=options)

    assert 2 == len(host.seen)
    assert all("authorization" not in request.headers for request in host.seen)


async def test_redirects_stop_at_the_limit(tmp_path: Path) -> None:
    """A redirect chain longer than `MAX_REDIRECTS` is a permanent error; nothing is written."""
    host = Host({f"/{i}": _redirect(302, f"/{i + 1}") for i in range(20)})

    with pytest.raises(DownloadError, match="redirects") as info:
        await _save(_task(f"{HOST}/0"), tmp_path, host)

    assert not info.value.transient
    assert MAX_REDIRECTS + 1 == len(host.seen)
    assert [] == _names(tmp_path)


@pytest.mark.parametrize(
    "location",
    [
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("ftp://results.test/a.png", id="ftp"),
        pytest.param("data:image/png;base64,AAAA", id="data"),
    ],
)
async def test_a_hop_to_another_scheme_is_refused(tmp_path: Path, location: str) -> None:
    """Every hop must be http(s), as the first URL must."""
    host = Host({"/a": _redirect(301, location)})

    with pytest.raises(DownloadError, match="http") as info:
        await _save(_task(f"{HOST}/a"), tmp_path, host)

    assert not info.value.transient
    assert 1 == len(host.seen)


# -- types by their bytes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "extension"),
    [
        pytest.param(PNG, "image/png", "png", id="png"),
        pytest.param(JPEG, "image/jpeg", "jpg", id="jpeg"),
        pytest.param(GIF, "image/gif", "gif", id="gif"),
        pytest.param(WEBP, "image/webp", "webp", id="webp"),
        pytest.param(PNG, "image/jpeg", "png", id="png-labelled-jpeg"),
        pytest.param(MP4, "video/mp4", "mp4", id="mp4"),
        pytest.param(MP4, "application/octet-stream", "mp4", id="mp4-as-octet-stream"),
        pytest.param(WEBM, "video/webm", "webm", id="webm"),
        pytest.param(OGG, "audio/ogg", "ogg", id="ogg"),
        pytest.param(MP3_ID3, "audio/mpeg", "mp3", id="mp3-id3"),
        pytest.param(MP3_FRAME, "audio/mpeg", "mp3", id="mp3-frame"),
        pytest.param(WAV, "audio/wav", "wav", id="wav"),
        pytest.param(M4A, "audio/mp4", "m4a", id="m4a"),
        pytest.param(MP4, "audio/mp4", "m4a", id="isom-brand-as-audio"),
        pytest.param(MP3_ID3, None, "mp3", id="no-content-type"),
    ],
)
async def test_the_extension_is_the_files_type(
    tmp_path: Path, body: bytes, content_type: str | None, extension: str
) -> None:
    """A result is saved under the extension its bytes show, whatever the URL says."""
    host = Host({"/result.png": _file(body, content_type)})

    paths = await _save(_task(f"{HOST}/result.png"), tmp_path, host, name="out")

    assert [tmp_path / f"out-1.{extension}"] == paths
    assert body == paths[0].read_bytes()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(HTML, "image/png", id="html-as-png"),
        pytest.param(HTML, "video/mp4", id="html-as-mp4"),
        pytest.param(b'{"error": "expired"}', "application/octet-stream", id="json-as-binary"),
        pytest.param(MP4, "image/png", id="video-as-image"),
        pytest.param(PNG, "audio/mpeg", id="image-as-audio"),
        pytest.param(PNG, "text/html", id="image-as-html"),
        pytest.param(b"\xff\xf1\x50\x80", "audio/mpeg", id="aac-adts-is-not-mp3"),
    ],
)
async def test_bytes_that_are_not_the_claimed_kind_are_refused(
    tmp_path: Path, body: bytes, content_type: str
) -> None:
    """A body whose signature is unknown or of another kind is a permanent error, unsaved."""
    host = Host({"/a": _file(body, content_type)})

    with pytest.raises(DownloadError) as info:
        await _save(_task(f"{HOST}/a"), tmp_path, host)

    assert not info.value.transient
    assert [] == _names(tmp_path)
    assert 1 == len(host.seen), "a refusal that will not change is not retried"


def test_sniff_needs_the_whole_signature() -> None:
    """A truncated signature is no type."""
    assert sniff(b"\x89PNG") is None
    assert sniff(b"RIFF\x00\x00\x00\x00") is None
    assert sniff(b"") is None


# -- folder and names --------------------------------------------------------------------


async def test_a_file_where_the_folder_should_be_is_a_download_error(tmp_path: Path) -> None:
    """A folder path that is an existing file raises `DownloadError`, not an `OSError`."""
    blocker = tmp_path / "out"
    blocker.write_text("mine")
    host = Host({"/a": _file(PNG, "image/png")})

    with pytest.raises(DownloadError, match="folder") as info:
        await _save(_task(f"{HOST}/a"), blocker / "deeper", host)

    assert not info.value.transient
    assert "mine" == blocker.read_text()
    assert [] == host.seen


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("x\x00y", id="nul"),
        pytest.param("a\nb", id="newline"),
        pytest.param("a/b", id="slash"),
        pytest.param("a\\b", id="backslash"),
        pytest.param("..", id="dot-dot"),
        pytest.param(".hidden", id="leading-dot"),
        pytest.param("", id="empty"),
    ],
)
async def test_every_bad_name_is_a_validation_error_before_fetching(
    tmp_path: Path, name: str
) -> None:
    """A `name` that is not a plain file name is a `ValidationError`; nothing is fetched."""
    host = Host({"/a": _file(PNG, "image/png")})

    with pytest.raises(ValidationError) as info:
        await _save(_task(f"{HOST}/a"), tmp_path / "out", host, name=name)

    assert ("name", "file_name") == (info.value.field, info.value.rule)
    assert [] == host.seen
    assert [] == _names(tmp_path)


# -- time --------------------------------------------------------------------------------


async def test_a_trickling_host_cannot_hold_a_save_past_its_timeout(tmp_path: Path) -> None:
    """Each byte arrives in time, the whole never does: `timeout` ends the save, no file left."""

    async def trickle() -> AsyncIterator[bytes]:
        yield PNG[:8]
        for _ in range(10_000):
            await anyio.sleep(0.02)
            yield b"\x00"

    host = Host(
        {
            "/slow": lambda _: httpx.Response(
                200, content=trickle(), headers={"Content-Type": "image/png"}
            )
        }
    )
    started = time.monotonic()

    with pytest.raises(DownloadError, match=r"0\.3 s") as info:
        await _save(_task(f"{HOST}/slow"), tmp_path, host, timeout=0.3)

    assert time.monotonic() - started < 5
    assert info.value.transient
    assert [] == _names(tmp_path)


async def test_a_timeout_that_is_not_positive_is_refused(tmp_path: Path) -> None:
    """`timeout=0` is a `ValidationError`, before anything is fetched."""
    host = Host({"/a": _file(PNG, "image/png")})

    with pytest.raises(ValidationError):
        await _save(_task(f"{HOST}/a"), tmp_path, host, timeout=0)

    assert [] == host.seen
