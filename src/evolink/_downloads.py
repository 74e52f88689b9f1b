"""Result images to disk: streamed, size-capped, type-checked, retried, written atomically.

A file appears under its final name only once it is complete (a temporary name, then
`os.replace`), so a crash never leaves half an image where a resume would take it for done.
File names never leave the output folder, whatever a prompt or a caller's name says.
`client.tasks.save` and the CLI both fetch through `Downloader`, with a plain HTTP client:
result URLs live on another host, and the API key never goes along.
"""

from __future__ import annotations

import os
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from contextlib import aclosing
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import attrs
import httpx

from evolink._errors import DownloadError
from evolink._serialization import Serializable

#: Largest image accepted (the API's images are a few MB).
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_ATTEMPTS = 4
#: Image hosts answer fast and images are a few MB.
DEFAULT_DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
#: A CDN redirects once or twice; more is a loop.
MAX_REDIRECTS = 5
_SLUG_LENGTH = 40
_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
}
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
    """The file extension for an image content type, or None if it is not an image."""
    if content_type is None:
        return None
    return _EXTENSIONS.get(content_type.split(";")[0].strip().lower())


def inside(folder: Path, name: str) -> Path:
    """`folder / name`, refusing any name that would land elsewhere."""
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\x00" in name:
        raise DownloadError(f"unsafe file name {name!r}", transient=False)
    target = (folder / name).resolve()
    if target.parent != folder.resolve():
        raise DownloadError(f"unsafe file name {name!r}", transient=False)
    return target


@attrs.frozen
class SavedImage(Serializable):
    """A result image on disk.

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
    """A plain HTTP client for result images: redirects followed (a few), no API key."""
    return httpx.AsyncClient(
        timeout=DEFAULT_DOWNLOAD_TIMEOUT, follow_redirects=True, max_redirects=MAX_REDIRECTS
    )


@attrs.frozen(kw_only=True)
class Downloader:
    """Fetches result images into one folder.

    Attributes:
        client: the HTTP client for image URLs (never the API client: no key goes along).
        folder: where images land.
        max_bytes: larger images are refused.
        attempts: tries per image on transient errors (connection lost, 5xx, 429).
        backoff: seconds before the second try, doubling after.
        deadline: seconds one try may take in all (read timeouts bound each read only).
    """

    client: httpx.AsyncClient
    folder: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    attempts: int = DEFAULT_ATTEMPTS
    backoff: float = 0.5
    deadline: float = 120.0

    async def fetch(self, url: str, stem: str) -> SavedImage:
        """Download `url` to `<stem>.<ext>`, retrying transient failures.

        Raises:
            DownloadError: the image could not be fetched (after retries, if transient).
        """
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
            scheme = urlsplit(url).scheme
        except ValueError:
            scheme = ""
        if scheme not in {"http", "https"}:
            raise DownloadError(f"not an http(s) URL: {_short(url)}", transient=False)
        try:
            with anyio.fail_after(self.deadline):
                return await self._stream(url, stem)
        except TimeoutError:
            # A server dripping bytes: each read is in time, the whole never is.
            raise DownloadError(
                f"not done in {self.deadline:g} s: {_short(url)}", transient=True
            ) from None
        except OSError as exc:  # disk full, no permission, a folder in the way
            raise DownloadError(
                f"cannot write the image: {exc.strerror or exc}", transient=False
            ) from None

    async def _stream(self, url: str, stem: str) -> SavedImage:
        try:
            async with self.client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise DownloadError(
                        f"HTTP {response.status_code} for {_short(url)}",
                        transient=response.status_code in _TRANSIENT_STATUS,
                    )
                content_type = response.headers.get("Content-Type")
                extension = extension_for(content_type)
                if extension is None:
                    raise DownloadError(
                        f"not an image: Content-Type {content_type!r} for {_short(url)}",
                        transient=False,
                    )
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                    raise DownloadError(
                        f"image is {int(declared)} bytes, over the {self.max_bytes} limit",
                        transient=False,
                    )
                target = inside(self.folder, f"{stem}.{extension}")
                size = await self._write(response, target)
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise DownloadError(f"{type(exc).__name__} for {_short(url)}", transient=True) from None
        except (httpx.RequestError, httpx.InvalidURL) as exc:
            # Redirects without end, a URL httpx cannot use: trying again will not help.
            raise DownloadError(
                f"{type(exc).__name__} for {_short(url)}", transient=False
            ) from None
        return SavedImage(url=url, path=target, size=size)

    async def _write(self, response: httpx.Response, target: Path) -> int:
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        size = 0
        try:
            async with (
                await anyio.open_file(temporary, "wb") as file,
                aclosing(response.aiter_bytes()) as chunks,  # type: ignore[type-var]
            ):
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise DownloadError(  # noqa: TRY301 - the handler below cleans up
                            f"image is over the {self.max_bytes} byte limit", transient=False
                        )
                    await file.write(chunk)
                await file.flush()
                await anyio.to_thread.run_sync(os.fsync, file.wrapped.fileno())
            if size == 0:
                raise DownloadError("empty image", transient=True)  # noqa: TRY301 - ditto
            await anyio.Path(temporary).replace(target)
        except BaseException:
            # Synchronous: under cancellation an awaited unlink would be cancelled first.
            temporary.unlink(missing_ok=True)
            raise
        return size


async def save_all(
    downloader: Downloader,
    urls: Sequence[str],
    name: str,
    *,
    on_progress: SaveHook | None = None,
) -> list[Path]:
    """Fetch `urls` in order to `<name>-1.<ext>`, `<name>-2.<ext>`, ...; return the paths.

    Raises:
        DownloadError: an image could not be saved (the ones before it stay on disk).
    """
    await anyio.Path(downloader.folder).mkdir(parents=True, exist_ok=True)
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
