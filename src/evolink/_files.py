"""`client.files`: Evolink's files API, which turns a local image into a URL `image_urls` takes.

The files API lives on its own host (`https://files-api.evolink.ai`) and answers in the
`{success, code, msg, data}` envelope. Uploads expire after 72 hours. An upload is sent with
an Idempotency-Key, and a lost answer raises `UploadUncertainError`, as a lost create does.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import attrs

from evolink import _lenient as read
from evolink._errors import ResponseDecodeError, ValidationError
from evolink._idempotency import new_idempotency_key
from evolink._retry import RequestKind
from evolink._transport import FILES_BASE_URL, files_base_url_for  # noqa: F401 - found here too

if TYPE_CHECKING:
    from evolink._client import AsyncEvolink
    from evolink._transport import Transport
    from evolink._uploads import UploadCache
#: The error-codes page: "file size exceeds 10MB".
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: The only types the upload endpoints accept (their OpenAPI files).
UPLOAD_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_FILES_PAGE_SIZE = 100


@attrs.frozen
class UploadedFile:
    """A file stored by the files API.

    Attributes:
        file_id: its id (for `files.delete`).
        file_url: the URL to pass in `image_urls`.
        file_name: the stored name.
        original_name: the name it was uploaded with.
        file_size: bytes.
        mime_type: its type (`image/png`).
        upload_path: the folder it was stored under.
        download_url: a download link.
        upload_time: when it was stored.
        expires_at: when it will be deleted (72 hours after upload).
    """

    file_id: str
    file_url: str
    file_name: str | None = None
    original_name: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    upload_path: str | None = None
    download_url: str | None = None
    upload_time: datetime | None = None
    expires_at: datetime | None = None

    def expires_within(self, seconds: float, *, now: float) -> bool:
        """Whether the file is gone (or will be) `seconds` after `now` (Unix time)."""
        return self.expires_at is not None and self.expires_at.timestamp() <= now + seconds


@attrs.frozen
class FileQuota:
    """How many files the account may still store (`GET /api/v1/files/quota`)."""

    used_files: int
    max_files: int
    remain_files: int
    user_group: str | None = None
    is_custom: bool = False
    quota_reason: str | None = None


@attrs.frozen
class FilePage:
    """One page of the account's files."""

    files: tuple[UploadedFile, ...]
    page: int
    page_size: int
    total: int | None


def files_base_url(client: AsyncEvolink) -> str:
    """Where the files API is: `EVOLINK_FILES_BASE_URL`, else beside a non-default API
    (a simulator or a proxy serves both), else Evolink's files host."""
    return files_base_url_for(client.base_url)


def sniff_image_type(content: bytes) -> str | None:
    """The image type its first bytes show (of the four the files API takes), else None."""
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_upload(content: bytes, *, name: str) -> str:
    """The content's type, once its size and type pass the files API's limits.

    Raises:
        ValidationError: empty, over 10 MB, or not a JPEG, PNG, GIF or WebP image.
    """
    if not content:
        raise ValidationError("file", "not_empty", f"{name} is empty")
    if len(content) > MAX_UPLOAD_BYTES:
        raise ValidationError(
            "file", "max_size", f"{name} is {len(content)} bytes; the files API takes 10 MB at most"
        )
    mime = sniff_image_type(content)
    if mime is None:
        raise ValidationError(
            "file", "type", f"{name} is not one of the image types {', '.join(UPLOAD_TYPES)}"
        )
    return mime


class Files:
    """Upload, list and delete files on Evolink's files API. Reached as `client.files`."""

    #: Local files of requests, uploaded once per content and reused (by `generate`,
    #: `create` and batches without a journal); the client sets it. A batch with a
    #: journal uploads through the run's own cache, kept in the journal.
    uploads: UploadCache

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def upload(
        self,
        source: Path | bytes | str,
        *,
        file_name: str | None = None,
        upload_path: str | None = None,
        idempotency_key: str | None = None,
    ) -> UploadedFile:
        """Store an image and return it with its URL (usable in `image_urls` for 72 hours).

        Args:
            source: a local file (`pathlib.Path`), its bytes, or an `https://` URL for the
                files API to fetch.
            file_name: the name to store it under (default: the server picks one).
            upload_path: the folder to store it under (default: by type).
            idempotency_key: the key of an earlier upload whose answer was lost.

        Raises:
            ValidationError: the file is missing, empty, over 10 MB or not a JPEG, PNG, GIF
                or WebP image; the URL is not http(s) (nothing was sent).
            UploadUncertainError: the answer was lost; the file may be stored. Upload again
                with its `idempotency_key`.
            APIError: the files API refused it (quota exhausted, ...).
        """
        body: dict[str, Any]
        if isinstance(source, str):
            parts = urlsplit(source)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValidationError(
                    "file", "url", "a str source must be an http(s) URL; pass a Path for a file"
                )
            body, path, label = {"file_url": source}, "/api/v1/files/upload/url", source
        else:
            content, label = _read_source(source)
            mime = check_upload(content, name=label)
            encoded = base64.b64encode(content).decode("ascii")
            body = {"base64_data": f"data:{mime};base64,{encoded}"}
            path = "/api/v1/files/upload/base64"
            if file_name is None and isinstance(source, Path):
                file_name = source.name
        if file_name is not None:
            body["file_name"] = file_name
        if upload_path is not None:
            body["upload_path"] = upload_path
        answer: Any = await self._transport.send(
            RequestKind.UPLOAD,
            "POST",
            path,
            body=body,
            url=self._transport.files_base_url() + path,
            idempotency_key=idempotency_key or new_idempotency_key(),
            subject=label,  # an `UploadUncertainError` names it
        )
        found = parse_uploaded(read.mapping(answer).get("data"))
        if found is None:
            raise ResponseDecodeError(
                "upload answer without a file id or URL", status_code=200, body=answer
            )
        return found

    async def list(self, *, page: int = 1, page_size: int = 20) -> FilePage:
        """One page of the account's files (`GET /api/v1/files/list`).

        Raises:
            ValidationError: `page` below 1 or `page_size` outside 1-100 (nothing sent).
        """
        if page < 1 or not 1 <= page_size <= MAX_FILES_PAGE_SIZE:
            raise ValidationError(
                "page", "range", f"page >= 1 and 1 <= page_size <= {MAX_FILES_PAGE_SIZE}"
            )
        path = f"/api/v1/files/list?page={page}&pageSize={page_size}"
        answer = await self._get(path)
        return parse_file_page(answer, page=page, page_size=page_size)

    async def iterate(self, *, page_size: int = 50) -> AsyncIterator[UploadedFile]:
        """Every file of the account, page after page, each once (a file stored while
        listing shifts pages; a server that ignores `page` ends the listing)."""
        page = 1
        ids: set[str] = set()
        while True:
            found = await self.list(page=page, page_size=page_size)
            new = [file for file in found.files if file.file_id not in ids]
            for file in new:
                ids.add(file.file_id)
                yield file
            seen = (page - 1) * page_size + len(found.files)
            if not new or (found.total is not None and seen >= found.total):
                return
            page += 1

    async def quota(self) -> FileQuota:
        """How many files the account stores and may still store (`GET /api/v1/files/quota`)."""
        path = "/api/v1/files/quota"
        answer = await self._get(path)
        data = read.mapping(read.mapping(answer).get("data"))
        used, most = read.integer(data.get("used_files")), read.integer(data.get("max_files"))
        if used is None or most is None:
            raise ResponseDecodeError(
                "quota answer without used_files / max_files", status_code=200, body=answer
            )
        remain = read.integer(data.get("remain_files"))
        return FileQuota(
            used_files=used,
            max_files=most,
            remain_files=max(0, most - used) if remain is None else remain,
            user_group=read.text(data.get("user_group")),
            is_custom=bool(read.boolean(data.get("is_custom"))),
            quota_reason=read.text(data.get("quota_reason")),
        )

    async def delete(self, file_id: str) -> None:
        """Delete a stored file (`DELETE /api/v1/files/{file_id}`).

        Raises:
            ValidationError: `file_id` is empty or holds a `/` (nothing sent).
            NotFoundError: no such file.
        """
        if not file_id or "/" in file_id or not file_id.isprintable():
            raise ValidationError("file_id", "format", "must be a file id such as 'file_abc123'")
        path = f"/api/v1/files/{quote(file_id, safe='')}"
        # Not keyed: deleting twice deletes once (a second answers "not found").
        await self._transport.send(
            RequestKind.READ, "DELETE", path, url=self._transport.files_base_url() + path
        )

    async def _get(self, path: str) -> Any:
        return await self._transport.send(
            RequestKind.READ, "GET", path, url=self._transport.files_base_url() + path
        )


def _read_source(source: Path | bytes) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    if not isinstance(source, Path):
        raise ValidationError("file", "type", "expected a Path, bytes or an http(s) URL")
    try:
        if source.stat().st_size > MAX_UPLOAD_BYTES:  # refused before reading it whole
            raise ValidationError(
                "file", "max_size", f"{source.name} is over 10 MB, the files API's limit"
            )
        return source.read_bytes(), source.name
    except OSError as exc:
        raise ValidationError(
            "file", "readable", f"cannot read {source.name}: {exc.strerror or exc}"
        ) from None


def parse_uploaded(data: Any) -> UploadedFile | None:
    """An `UploadedFile` from the files API's `data` (None without an id and a URL)."""
    data = read.mapping(data)
    file_id = read.text(data.get("file_id")) or read.text(data.get("id"))
    url = read.text(data.get("file_url")) or read.text(data.get("url"))
    if file_id is None or url is None:
        return None
    return UploadedFile(
        file_id=file_id,
        file_url=url,
        file_name=read.text(data.get("file_name")),
        original_name=read.text(data.get("original_name")),
        file_size=read.integer(data.get("file_size")),
        mime_type=read.text(data.get("mime_type")),
        upload_path=read.text(data.get("upload_path")),
        download_url=read.text(data.get("download_url")),
        upload_time=read.moment(data.get("upload_time")),
        expires_at=read.moment(data.get("expires_at")),
    )


def parse_file_page(body: Any, *, page: int, page_size: int) -> FilePage:
    """A page of files from `{data: {files|list|items: [...], total}}` or `{data: [...]}`."""
    data = read.mapping(body).get("data")
    rows: Any = data
    total: int | None = None
    if isinstance(data, dict):
        rows = next((data[k] for k in ("files", "list", "items", "data") if k in data), [])
        total = read.integer(data.get("total"))
    files = tuple(f for f in map(parse_uploaded, read.items(rows)) if f is not None)
    return FilePage(files=files, page=page, page_size=page_size, total=total)
