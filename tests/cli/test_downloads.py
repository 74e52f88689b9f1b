"""Downloads: safe names, content-type and size checks, atomic writes, retries."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evolink._downloads import (
    Downloader,
    DownloadError,
    image_stem,
    inside,
    slugify,
    sweep_partials,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 100


def _downloader(tmp_path: Path, handler, **options) -> Downloader:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Downloader(client=client, folder=tmp_path, backoff=0.001, **options)


def _image(content: bytes = PNG, kind: str = "image/png", status: int = 200):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"Content-Type": kind}, content=content)

    return handler


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        pytest.param("a red fox in snow", "0001-a-red-fox-in-snow-1", id="plain"),
        pytest.param("../../etc/passwd", "0001-etc-passwd-1", id="traversal"),
        pytest.param("Crème brûlée, 🍮!", "0001-creme-brulee-1", id="accents-emoji"),
        pytest.param("🍮🍮", "0001-image-1", id="nothing-left"),
        pytest.param(
            "C:\\Windows\\system32 /dev/null", "0001-c-windows-system32-dev-null-1", id="paths"
        ),
        pytest.param("x" * 300, "0001-" + "x" * 40 + "-1", id="long"),
    ],
)
def test_image_stem(prompt, expected):
    """Names hold the 1-based index, a short slug of the prompt and the image number."""
    assert expected == image_stem(0, prompt, 1)


@given(st.text(max_size=200), st.integers(0, 99_998), st.integers(1, 4))
def test_any_prompt_stays_inside_the_folder(prompt, index, number):
    """Whatever the prompt, the file lands directly in the output folder."""
    folder = Path("/srv/evolink-out")
    target = inside(folder, image_stem(index, prompt, number) + ".png")
    assert target.parent == folder.resolve()
    assert slugify(prompt)


@pytest.mark.parametrize("name", ["../x.png", "a/b.png", "..", "", "a\\b.png", "x\x00.png"])
def test_inside_refuses_escaping_names(tmp_path, name):
    """A name with a path separator, `..` or a NUL is refused."""
    with pytest.raises(DownloadError, match="unsafe file name"):
        inside(tmp_path, name)


@pytest.mark.anyio
async def test_downloads_atomically(tmp_path):
    """An image lands under its final name with its bytes, and no temporary file is left."""
    got = await _downloader(tmp_path, _image()).fetch("https://img.test/a.png", "0001-fox-1")
    assert got.path == tmp_path / "0001-fox-1.png"
    assert got.path.read_bytes() == PNG
    assert [p.name for p in tmp_path.iterdir()] == ["0001-fox-1.png"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "extension"),
    [
        pytest.param("image/jpeg", "jpg", id="jpeg"),
        pytest.param("image/webp; q=1", "webp", id="webp"),
    ],
)
async def test_extension_follows_content_type(tmp_path, kind, extension):
    """The extension comes from what the bytes are (of the type claimed), not from the URL."""
    body = {"jpg": b"\xff\xd8\xff\xe0" + b"\0" * 64, "webp": b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 64}
    got = await _downloader(tmp_path, _image(body[extension], kind=kind)).fetch(
        "https://img.test/a.png", "s"
    )
    assert got.path.name == f"s.{extension}"


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["text/html", "application/octet-stream", ""])
async def test_refuses_non_images(tmp_path, kind):
    """A body that is not an image type is refused and nothing is written."""
    with pytest.raises(DownloadError, match="not an image") as caught:
        await _downloader(tmp_path, _image(b"<html>", kind=kind)).fetch("https://i.test/a", "s")
    assert not caught.value.transient
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
# On trio, httpx's nested body generators are finalised by the GC when a stream is left early.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_size_limit_while_streaming(tmp_path):
    """An image over the limit is refused mid-stream and its partial file removed."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Type": "image/png"}, stream=httpx.ByteStream(PNG * 10)
        )

    with pytest.raises(DownloadError, match="over the 500 byte limit"):
        await _downloader(tmp_path, handler, max_bytes=500).fetch("https://i.test/a", "s")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_size_limit_from_content_length(tmp_path):
    """A declared Content-Length over the limit is refused before reading the body."""
    with pytest.raises(DownloadError, match="over the 50 limit"):
        await _downloader(tmp_path, _image(), max_bytes=50).fetch("https://i.test/a", "s")


@pytest.mark.anyio
async def test_retries_transient_errors(tmp_path):
    """503s and dropped connections are retried; the image arrives on a later try."""
    answers = iter(["drop", 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if answer == "drop":
            raise httpx.ReadError("connection reset")
        return _image(status=answer)(request)  # type: ignore[arg-type]

    got = await _downloader(tmp_path, handler).fetch("https://i.test/a", "s")
    assert got.path.read_bytes() == PNG


@pytest.mark.anyio
async def test_gives_up_after_attempts(tmp_path):
    """A URL that keeps failing ends in a transient DownloadError after the attempts."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(502)

    with pytest.raises(DownloadError, match="HTTP 502") as caught:
        await _downloader(tmp_path, handler, attempts=3).fetch("https://i.test/a?sig=secret", "s")
    assert caught.value.transient
    assert len(calls) == 3
    assert "secret" not in str(caught.value)


@pytest.mark.anyio
async def test_404_is_not_retried(tmp_path):
    """An expired link (404) fails at once."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(404)

    with pytest.raises(DownloadError, match="HTTP 404"):
        await _downloader(tmp_path, handler).fetch("https://i.test/a", "s")
    assert len(calls) == 1


def _redirect_forever(request: httpx.Request) -> httpx.Response:
    return httpx.Response(302, headers={"Location": str(request.url)})


def _bad_gzip(request: httpx.Request) -> httpx.Response:
    headers = {"Content-Type": "image/png", "Content-Encoding": "gzip"}
    return httpx.Response(200, headers=headers, content=b"not gzip" * 10)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("handler", "url", "transient"),
    [
        pytest.param(_redirect_forever, "https://cdn.test/a.png", False, id="redirect-loop"),
        pytest.param(_bad_gzip, "https://cdn.test/a.png", True, id="bad-gzip"),
        pytest.param(_redirect_forever, "file:///etc/passwd", False, id="file-url"),
        pytest.param(_redirect_forever, "http://[::1/x", False, id="invalid-url"),
    ],
)
async def test_download_failures_are_download_errors(anyio_backend, handler, url, transient):
    """Redirect loops, bad encodings and unusable URLs end as DownloadError, not a crash."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=True)
    async with client:
        downloader = Downloader(client=client, folder=Path(tempfile.mkdtemp()), backoff=0.001)
        with pytest.raises(DownloadError) as caught:
            await downloader.fetch(url, "0001-x-1")
    assert transient == caught.value.transient


@pytest.mark.anyio
async def test_a_folder_in_the_way_is_a_download_error(anyio_backend, tmp_path):
    """A directory where the image should go fails that download, not the whole run."""
    (tmp_path / "0001-x-1.png").mkdir()
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, headers={"Content-Type": "image/png"}, content=b"\x89PNG\r\n\x1a\n" + b"x" * 32
        )
    )
    async with httpx.AsyncClient(transport=transport) as client:
        downloader = Downloader(client=client, folder=tmp_path, backoff=0.001)
        with pytest.raises(DownloadError, match="cannot write"):
            await downloader.fetch("https://cdn.test/a.png", "0001-x-1")


@pytest.mark.anyio
async def test_a_dripping_download_is_cut_at_its_deadline(anyio_backend, tmp_path):
    """A body that arrives too slowly in all ends as a (transient) DownloadError."""

    async def drip():
        import anyio  # noqa: PLC0415

        for _ in range(100):
            await anyio.sleep(0.05)
            yield b"x"

    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"Content-Type": "image/png"}, content=drip())
    )
    async with httpx.AsyncClient(transport=transport) as client:
        downloader = Downloader(
            client=client, folder=tmp_path, backoff=0.001, attempts=1, deadline=0.2
        )
        with pytest.raises(DownloadError, match="not done in") as caught:
            await downloader.fetch("https://cdn.test/a.png", "0001-x-1")
    assert caught.value.transient
    assert [] == list(tmp_path.iterdir())  # no .part left behind


def test_sweep_partials_only_removes_ours(tmp_path):
    """A resume removes killed downloads' temporary files and nothing else."""
    ours = tmp_path / ".0001-fox-1.png.0a1b2c3d.part"
    kept = [tmp_path / ".notes.part", tmp_path / "0001-fox-1.png", tmp_path / "x.0a1b2c3d.part"]
    for path in [ours, *kept]:
        path.write_bytes(b"x")
    assert sweep_partials(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept)
