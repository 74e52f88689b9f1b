"""Result files to disk: streamed, size-capped, type-checked, retried, written atomically.

A file appears under its final name only once it is complete (a temporary name, then
`os.replace`), so a crash never leaves half an image where a resume would take it for done.
File names never leave the output folder, whatever a prompt or a caller's name says.
`client.tasks.save` and the CLI both fetch through `Downloader`, with a plain HTTP client:
result URLs live on another host, and the API key never goes along.

A file's type is what its first bytes say (PNG, JPEG, WEBP, GIF, BMP; MP4, WEBM, OGG;
MP3, WAV, M4A), checked against the `Content-Type` the host claimed: an HTML error page
sent as `image/png` is refused, and a video is saved as `.mp4` whatever its URL says.
Redirects are followed here, hop by hop (never by the HTTP client), so every hop gets the
same checks whoever made the client: http(s) only, no `Authorization`, at most
`MAX_REDIRECTS`.
"""

from __future__ import annotations

import os
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import anyio
import attrs
import httpx

from evolink._errors import DownloadError
from evolink._serialization import Serializable

#: Largest file accepted (the API's images are a few MB, its videos tens of MB).
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_ATTEMPTS = 4
#: Result hosts answer fast: each connect and each read is bounded by this.
DEFAULT_DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
#: Seconds one file may take in all, tries and waits between them included: a host
#: trickling bytes, each read in time, cannot hold a save for longer.
DEFAULT_DEADLINE = 300.0
#: A CDN redirects once or twice; more is a loop.
MAX_REDIRECTS = 5
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_SLUG_LENGTH = 40
#: Bytes read before the type is decided (the longest signature needs 12).
_SNIFF_BYTES = 16

Family = Literal["image", "video", "audio"]


@attrs.frozen
class MediaType:
    """A file type told by its first bytes: its extension and what it may hold."""

    extension: str
    families: frozenset[Family]


_IMAGE = frozenset[Family]({"image"})
_VIDEO = frozenset[Family]({"video"})
_AUDIO = frozenset[Family]({"audio"})
_AUDIO_OR_VIDEO = frozenset[Family]({"audio", "video"})
#: What a `Content-Type` claims, by its main type; hosts that do not say are taken at the
#: bytes' word. Anything else (`text/html`, `application/json`) is not a result.
_ANY_FAMILY = frozenset[Family]({"image", "video", "audio"})
_CLAIMS: dict[str, frozenset[Family]] = {
    "image": _IMAGE,
    "video": _VIDEO,
    "audio": _AUDIO,
    "application/octet-stream": _ANY_FAMILY,
    "binary/octet-stream": _ANY_FAMILY,
    "application/mp4": _AUDIO_OR_VIDEO,
    "application/ogg": _AUDIO_OR_VIDEO,
}
_M4A_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P "})


def sniff(head: bytes, claimed: frozenset[Family] = _ANY_FAMILY) -> MediaType | None:
    """The type `head` (a file's first bytes) starts like, or None if none we save.

    `claimed` settles what the bytes cannot: an MP4 box of some brand holds audio (`.m4a`)
    when the host said `audio/...`.
    """
    if head[4:8] == b"ftyp":  # an ISO media file: its brand tells audio (M4A) from video
        audio = head[8:12] in _M4A_BRANDS or claimed == _AUDIO
        return MediaType("m4a", _AUDIO) if audio else MediaType("mp4", _VIDEO)
    return next((media for matches, media in _SIGNATURES if matches(head)), None)


def _mp3_frame(head: bytes) -> bool:
    # An MPEG audio frame header: 11 sync bits, a version that is not "reserved" (01) and
    # a layer that is not "reserved" (00; AAC's ADTS headers have 00 there).
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    return (head[1] >> 3) & 0b11 != 0b01 and (head[1] >> 1) & 0b11 != 0


#: Signatures, most specific first (JPEG's FF D8 before MP3's frame sync).
_SIGNATURES: tuple[tuple[Callable[[bytes], bool], MediaType], ...] = (
    (lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"), MediaType("png", _IMAGE)),
    (lambda head: head.startswith(b"\xff\xd8\xff"), MediaType("jpg", _IMAGE)),
    (lambda head: head.startswith((b"GIF87a", b"GIF89a")), MediaType("gif", _IMAGE)),
    (lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP", MediaType("webp", _IMAGE)),
    (lambda head: head[:4] == b"RIFF" and head[8:12] == b"WAVE", MediaType("wav", _AUDIO)),
    (lambda head: head.startswith(b"BM") and len(head) >= 14, MediaType("bmp", _IMAGE)),
    (lambda head: head.startswith(b"\x1a\x45\xdf\xa3"), MediaType("webm", _AUDIO_OR_VIDEO)),
    (lambda head: head.startswith(b"OggS"), MediaType("ogg", _AUDIO_OR_VIDEO)),
    (lambda head: head.startswith(b"ID3") or _mp3_frame(head), MediaType("mp3", _AUDIO)),
)


def claimed_families(content_type: str | None) -> frozenset[Family] | None:
    """What a `Content-Type` says the body is, or None if it says it is not a result."""
    if content_type is None:
        return _ANY_FAMILY
    media = content_type.split(";")[0].strip().lower()
    if "/" not in media:
        return None
    return _CLAIMS.get(media) or _CLAIMS.get(media.split("/")[0])


_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def slugify(text: str, *, length: int = _SLUG_LENGTH) -> str:
    """Lower-case ASCII words joined by `-`: safe in any file system, never empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > length:
        cut = slug[:length]
        # End on a whole word when one ends in the second half.
        slug = cut.rsplit("-", 1)[0] if cut.rfind("-") >= length // 2 else cut
    return slug.strip("-") or "image"


def image_stem(index: int, prompt: str, number: int) -> str:
    """`0001-a-red-fox-in-snow-1`: the input's 1-based index, its prompt, the image number."""
    return f"{index + 1:04d}-{slugify(prompt)}-{number}"


def extension_for(content_type: str | None) -> str | None:
    """The usual extension for a media `Content-Type`, or None if it names none we save.

    The saved file's extension comes from its bytes (`sniff`); this is for callers who
    only have the header.
    """
    media = (content_type or "").split(";")[0].strip().lower()
    return _EXTENSIONS.get(media)


_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/ogg": "ogg",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/webm": "webm",
}


def unsafe_name(name: str) -> str | None:
    """Why `name` is not a plain file name for a folder, or None if it is one."""
    if not name or name in {".", ".."}:
        return "is empty or a folder's name"
    if any(part in name for part in ("/", "\\", "\x00")):
        return "holds a path separator or a NUL"
    if not name.isprintable():
        return "holds control characters"
    if Path(name).name != name:
        return "is a path"
    return None


def inside(folder: Path, name: str) -> Path:
    """`folder / name`, refusing any name that would land elsewhere."""
    if unsafe_name(name) is not None:
        raise DownloadError(f"unsafe file name {name!r}", transient=False)
    target = (folder / name).resolve()
    if target.parent != folder.resolve():
        raise DownloadError(f"unsafe file name {name!r}", transient=False)
    return target


@attrs.frozen
class SavedImage(Serializable):
    """A result file (an image, a video, audio) on disk.

    Attributes:
        url: where it was fetched from.
        path: the file, complete.
        size: its size in bytes.
    """

    url: str
    path: Path
    size: int


SaveHook = Callable[[SavedImage], None]


def image_client() -> httpx.AsyncClient:
    """A plain HTTP client for result files: no API key, redirects followed (a few).

    `Downloader` follows redirects itself, whatever its client's setting; this one's is
    for callers who fetch with it directly.
    """
    return httpx.AsyncClient(
        timeout=DEFAULT_DOWNLOAD_TIMEOUT, follow_redirects=True, max_redirects=MAX_REDIRECTS
    )


@attrs.frozen(kw_only=True)
class Downloader:
    """Fetches result files into one folder.

    Attributes:
        client: the HTTP client for result URLs (never the API client: no key goes along).
            Any client will do: its own redirect setting is not used (see the module).
        folder: where files land.
        max_bytes: larger files are refused.
        attempts: tries per file on transient errors (connection lost, 5xx, 429).
        backoff: seconds before the second try, doubling after.
        deadline: seconds one file may take in all, every try and wait included (read
            timeouts bound each read only, not a host that trickles).
    """

    client: httpx.AsyncClient
    folder: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    attempts: int = DEFAULT_ATTEMPTS
    backoff: float = 0.5
    deadline: float = DEFAULT_DEADLINE

    async def fetch(self, url: str, stem: str) -> SavedImage:
        """Download `url` to `<stem>.<ext>` (the extension from its bytes), retrying
        transient failures within `deadline`.

        Raises:
            DownloadError: the file could not be fetched (after retries, if transient).
        """
        try:
            with anyio.fail_after(self.deadline):
                return await self._fetch_with_retries(url, stem)
        except TimeoutError:
            # A host dripping bytes: each read is in time, the whole never is.
            raise DownloadError(
                f"not done in {self.deadline:g} s: {_short(url)}", transient=True
            ) from None

    async def _fetch_with_retries(self, url: str, stem: str) -> SavedImage:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return await self._fetch_once(url, stem)
            except DownloadError as exc:
                if not exc.transient or attempt == self.attempts:
                    raise
            await anyio.sleep(delay)
            delay *= 2
        raise AssertionError  # pragma: no cover - the loop returns or raises

    async def _fetch_once(self, url: str, stem: str) -> SavedImage:
        inside(self.folder, stem)  # the stem alone must already be safe
        try:
            return await self._follow(url, stem)
        except OSError as exc:  # disk full, no permission, a folder in the way
            raise DownloadError(
                f"cannot write the file: {exc.strerror or exc}", transient=False
            ) from None

    async def _follow(self, url: str, stem: str) -> SavedImage:
        """GET `url`, following up to `MAX_REDIRECTS` redirects, each hop checked alike."""
        hop = url
        for _ in range(MAX_REDIRECTS + 1):
            _check_scheme(hop)
            try:
                request = self.client.build_request("GET", hop)
                # Whatever the caller's client carries, no credential goes to a result host.
                request.headers.pop("Authorization", None)
                response = await self.client.send(
                    request, stream=True, follow_redirects=False, auth=None
                )
                try:
                    location = response.headers.get("Location")
                    if response.status_code in _REDIRECT_STATUS and location:
                        hop = str(response.url.join(location))
                        continue
                    return await self._save(response, url, stem)
                finally:
                    await response.aclose()
            except (httpx.TransportError, httpx.DecodingError) as exc:
                raise DownloadError(
                    f"{type(exc).__name__} for {_short(url)}", transient=True
                ) from None
            except (httpx.RequestError, httpx.InvalidURL) as exc:
                # A URL httpx cannot use: trying again will not help.
                raise DownloadError(
                    f"{type(exc).__name__} for {_short(url)}", transient=False
                ) from None
        raise DownloadError(
            f"more than {MAX_REDIRECTS} redirects for {_short(url)}", transient=False
        )

    async def _save(self, response: httpx.Response, url: str, stem: str) -> SavedImage:
        if response.status_code != 200:
            raise DownloadError(
                f"HTTP {response.status_code} for {_short(url)}",
                transient=response.status_code in _TRANSIENT_STATUS,
            )
        content_type = response.headers.get("Content-Type")
        claimed = claimed_families(content_type)
        if claimed is None:
            raise DownloadError(
                f"not an image, video or audio file: Content-Type {content_type!r} "
                f"for {_short(url)}",
                transient=False,
            )
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise DownloadError(
                f"file is {int(declared)} bytes, over the {self.max_bytes} limit",
                transient=False,
            )
        target, size = await self._write(response, stem, claimed, content_type)
        return SavedImage(url=url, path=target, size=size)

    async def _write(
        self,
        response: httpx.Response,
        stem: str,
        claimed: frozenset[Family],
        content_type: str | None,
    ) -> tuple[Path, int]:
        temporary = self.folder.resolve() / f".{stem}.{secrets.token_hex(4)}.part"
        size = 0
        head = b""
        try:
            async with (
                await anyio.open_file(temporary, "wb") as file,
                aclosing(response.aiter_bytes()) as chunks,  # type: ignore[type-var]
            ):
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise DownloadError(  # noqa: TRY301 - the handler below cleans up
                            f"file is over the {self.max_bytes} byte limit", transient=False
                        )
                    if len(head) < _SNIFF_BYTES:
                        head += chunk[: _SNIFF_BYTES - len(head)]
                    await file.write(chunk)
                await file.flush()
                await anyio.to_thread.run_sync(os.fsync, file.wrapped.fileno())
            if size == 0:
                raise DownloadError("empty file", transient=True)  # noqa: TRY301 - ditto
            # Judged once the body is in (an error page is small; a huge body has met the
            # size cap), so every refusal of a body is the same one, whatever its chunks.
            media = _judge(head, claimed, content_type)
            target = inside(self.folder, f"{stem}.{media.extension}")
            await anyio.Path(temporary).replace(target)
        except BaseException:
            # Synchronous: under cancellation an awaited unlink would be cancelled first.
            temporary.unlink(missing_ok=True)
            raise
        return target, size


def _judge(head: bytes, claimed: frozenset[Family], content_type: str | None) -> MediaType:
    """The type of a body starting with `head`, if it is what the host said it is."""
    media = sniff(head, claimed)
    if media is None:
        raise DownloadError(
            f"not an image, video or audio file (Content-Type {content_type!r}, "
            f"starting {head[:8]!r})",
            transient=False,
        )
    if not media.families & claimed:
        raise DownloadError(
            f"the bytes are {media.extension.upper()}, not the {content_type!r} the host claimed",
            transient=False,
        )
    return media


def _check_scheme(url: str) -> None:
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in {"http", "https"}:
        raise DownloadError(f"not an http(s) URL: {_short(url)}", transient=False)


async def save_all(
    downloader: Downloader,
    urls: Sequence[str],
    name: str,
    *,
    on_progress: SaveHook | None = None,
) -> list[Path]:
    """Fetch `urls` in order to `<name>-1.<ext>`, `<name>-2.<ext>`, ...; return the paths.

    Raises:
        DownloadError: a file could not be saved (the ones before it stay on disk), or
            the folder cannot be made (a file in its place, no permission).
    """
    try:
        await anyio.Path(downloader.folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot make the folder {str(downloader.folder)!r}: {exc.strerror or exc}",
            transient=False,
        ) from None
    paths: list[Path] = []
    for number, url in enumerate(urls, start=1):
        saved = await downloader.fetch(url, f"{name}-{number}")
        paths.append(saved.path)
        if on_progress is not None:
            on_progress(saved)
    return paths


_PARTIAL = re.compile(r"^\..+\.[0-9a-f]{8}\.part$")


def sweep_partials(folder: Path) -> int:
    """Remove the temporary files of downloads a killed run left behind; return how many."""
    removed = 0
    for path in folder.glob(".*.part"):
        if _PARTIAL.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _short(url: str) -> str:
    """A URL for messages, without its query (signed URLs carry tokens there)."""
    return url.split("?", 1)[0][:120]
