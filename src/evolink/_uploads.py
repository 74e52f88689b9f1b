"""Local reference images in requests: each distinct file uploaded once, its URL reused.

`UploadCache` maps a file's sha256 to its upload, so a run that names the same image in a
thousand rows uploads it once, and an upload that has expired (or is about to) is made
again. Its `store` is any mutable mapping: a batch with a journal hands in one that writes
each upload to the run's journal (`journal_upload_cache`), so a resumed run finds the
uploads of the run before.

A resumed run must also know an uploaded file when it meets it again: an input's recorded
body holds the URL it was sent with, not the path. `aliases` maps every upload URL the cache
knows to its content, so a recorded body and a request naming the same content compare
equal (`_resume.same_request`) even after the file was uploaded again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import attrs

from evolink._errors import EvolinkError, UploadUncertainError, ValidationError
from evolink._files import MAX_UPLOAD_BYTES, Files, UploadedFile, check_upload
from evolink._journal import UploadRecord
from evolink._models import GenerationRequest
from evolink._resume import canonical_value

if TYPE_CHECKING:
    from evolink._batch_journal import BatchJournal

T = TypeVar("T")

#: An upload this close to its expiry is made again: a task may start minutes later.
EXPIRY_MARGIN = 3600.0
#: The request fields besides `params` that may name a local file.
REFERENCE_FIELDS = ("image_urls", "mask_url")


@attrs.define
class UploadCache:
    """Uploads by content (sha256 hex): one upload per distinct file, reused while valid.

    Args:
        files: the client's `files` resource.
        store: where uploads are kept (default: in memory, for this cache's life).
        now: the Unix time (the client's clock).
        aliases: every upload URL known, to its content's sha256 (filled as it uploads;
            seeded from `store`, and from a journal's older uploads).
    """

    files: Files
    now: Callable[[], float]
    store: MutableMapping[str, UploadedFile] = attrs.field(factory=dict)
    aliases: dict[str, str] = attrs.field(factory=dict)
    uploads: int = 0  # uploads this cache made (for reports and tests)
    _locks: dict[str, anyio.Lock] = attrs.field(factory=dict)
    # A path each content was read from: to upload it again when its URL is about to expire.
    _paths: dict[str, Path] = attrs.field(factory=dict)
    # When each known upload URL expires (Unix time; None: not said).
    _expiries: dict[str, float | None] = attrs.field(factory=dict)
    # The key of a content's upload whose answer was lost: the next upload of it resends
    # under that key, so a server that stored it gives it back rather than storing it twice.
    _uncertain: dict[str, str] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        for digest, uploaded in self.store.items():
            self.aliases.setdefault(uploaded.file_url, digest)
            self._expiries.setdefault(uploaded.file_url, _expiry(uploaded))

    async def url_for(self, path: str | os.PathLike[str], *, fresh: bool = True) -> str:
        """The URL of `path`'s content, uploading it unless a valid upload is known.

        Args:
            path: the local file.
            fresh: upload again an upload that expires within `EXPIRY_MARGIN`; False
                takes any known upload (a resumed run's recorded input, compared or
                resent, not created anew).

        Raises:
            ValidationError: the file is missing, too large or not an image (nothing sent).
            UploadUncertainError, APIError: as `files.upload`.
        """
        path = Path(path)
        content = _read(path)
        check_upload(content, name=path.name)
        digest = hashlib.sha256(content).hexdigest()
        self._paths.setdefault(digest, path)
        return await self._url(digest, content, path.name, fresh=fresh)

    async def _url(self, digest: str, content: bytes, name: str, *, fresh: bool) -> str:
        lock = self._locks.setdefault(digest, anyio.Lock())
        async with lock:  # two rows naming one file: the second waits for the first's URL
            known = self.store.get(digest)
            if known is not None and not (fresh and self._expiring(known)):
                return known.file_url
            try:
                uploaded = await self.files.upload(
                    content, file_name=name, idempotency_key=self._uncertain.get(digest)
                )
            except UploadUncertainError as exc:
                self._uncertain[digest] = exc.idempotency_key
                raise
            self._uncertain.pop(digest, None)
            self.uploads += 1
            self.store[digest] = uploaded
            self.aliases[uploaded.file_url] = digest
            self._expiries[uploaded.file_url] = _expiry(uploaded)
            return uploaded.file_url

    def _expiring(self, uploaded: UploadedFile) -> bool:
        return uploaded.expires_within(EXPIRY_MARGIN, now=self.now())

    def _expires(self, at: float | None) -> bool:
        """Whether an upload expiring `at` (None: never said) is gone within the margin."""
        return at is not None and at <= self.now() + EXPIRY_MARGIN

    async def resolve(self, request: GenerationRequest, *, fresh: bool = True) -> GenerationRequest:
        """`request` with every local file among its reference inputs replaced by a URL
        (`fresh` as for `url_for`)."""
        changes: dict[str, Any] = {}
        for name in REFERENCE_FIELDS:
            value = getattr(request, name)
            replaced = await self._replace(value, fresh=fresh)
            if replaced is not value:
                changes[name] = replaced
        if request.params:
            params = {k: await self._replace(v, fresh=fresh) for k, v in request.params.items()}
            if any(params[k] is not v for k, v in request.params.items()):
                changes["params"] = params
        return attrs.evolve(request, **changes) if changes else request

    async def prepare(self, item: T, *, fresh: bool = True) -> T | ValidationError:
        """`item` with its local files uploaded (a request), or why that failed; anything
        else as it is. For a batch: a failure becomes the input's `rejected` outcome."""
        if not isinstance(item, GenerationRequest) or not has_local_files(item):
            return item
        try:
            return cast("T", await self.resolve(item, fresh=fresh))
        except ValidationError as exc:
            return exc
        except EvolinkError as exc:
            return ValidationError("image_urls", "upload", f"a local file was not uploaded: {exc}")

    async def renew(self, request: GenerationRequest) -> GenerationRequest | ValidationError:
        """`request` with each upload URL of its reference inputs that expires within
        `EXPIRY_MARGIN` replaced by a valid upload of the same file (the latest, or a new
        one of the file read again from its path); or why that failed. A URL still valid
        stays as it is. A request prepared with `fresh=False` becomes sendable as a new
        create."""
        try:
            return await self._renew(request)
        except ValidationError as exc:
            return exc
        except EvolinkError as exc:
            return ValidationError("image_urls", "upload", f"a local file was not uploaded: {exc}")

    async def _renew(self, request: GenerationRequest) -> GenerationRequest:
        changes: dict[str, Any] = {}
        for name in REFERENCE_FIELDS:
            value = getattr(request, name)
            if value is not None and (new := await self._renewed(value)) != value:
                changes[name] = new
        if request.params:
            params = {k: await self._renewed(v) for k, v in request.params.items()}
            if params != dict(request.params):
                changes["params"] = params
        return attrs.evolve(request, **changes) if changes else request

    async def _renewed(self, value: Any) -> Any:
        if isinstance(value, (tuple, list)):
            values = [await self._renewed(v) for v in value]
            return type(value)(values) if values != list(value) else value
        digest = self.aliases.get(value) if isinstance(value, str) else None
        if digest is None or not self._expires(self._expiries.get(value)):
            return value  # no upload of ours, or one that outlives the create
        known = self.store.get(digest)
        if known is not None and not self._expiring(known):
            return known.file_url  # uploaded again since
        path = self._paths.get(digest)
        if path is None:  # pragma: no cover - every alias met here was resolved from a path
            return value
        content = _read(path)
        if hashlib.sha256(content).hexdigest() != digest:
            raise ValidationError("file", "changed", f"{path.name} changed while the run used it")
        return await self._url(digest, content, path.name, fresh=True)

    async def _replace(self, value: Any, *, fresh: bool) -> Any:
        if isinstance(value, os.PathLike):
            return await self.url_for(value, fresh=fresh)
        if isinstance(value, (tuple, list)) and any(isinstance(v, os.PathLike) for v in value):
            return type(value)([await self._replace(v, fresh=fresh) for v in value])
        return value


def as_recorded(
    request: GenerationRequest, recorded: Mapping[str, Any], aliases: Mapping[str, str]
) -> GenerationRequest:
    """`request` with each reference input naming the same content as the `recorded` body
    written as recorded: a create resent under its key repeats its body byte for byte,
    though the file may have been uploaded again (to another URL) since."""
    body = request.to_body()
    changes: dict[str, Any] = {}
    params = dict(request.params or {})
    for name in (*REFERENCE_FIELDS, *params):
        now, then = body.get(name), recorded.get(name)
        if now == then or name not in recorded:
            continue
        if canonical_value(now, aliases) != canonical_value(then, aliases):
            continue
        if name in params:
            params[name] = then
        elif name == "image_urls" and isinstance(then, list):
            changes[name] = tuple(then)
        elif name == "mask_url" and isinstance(then, str):
            changes[name] = then
    if params != dict(request.params or {}):
        changes["params"] = params
    return attrs.evolve(request, **changes) if changes else request


class _JournaledUploads(MutableMapping[str, UploadedFile]):
    """The latest upload of each content, each new one also written to the run's journal."""

    def __init__(self, journal: BatchJournal, latest: dict[str, UploadedFile]) -> None:
        self._journal = journal
        self._latest = latest

    def __getitem__(self, digest: str) -> UploadedFile:
        return self._latest[digest]

    def __setitem__(self, digest: str, uploaded: UploadedFile) -> None:
        self._latest[digest] = uploaded
        expires = uploaded.expires_at
        self._journal.upload(
            UploadRecord(
                sha256=digest,
                file_id=uploaded.file_id,
                file_url=uploaded.file_url,
                expires_at=None if expires is None else expires.timestamp(),
                size=uploaded.file_size,
            )
        )

    def __delitem__(self, digest: str) -> None:
        del self._latest[digest]

    def __iter__(self) -> Iterator[str]:
        return iter(self._latest)

    def __len__(self) -> int:
        return len(self._latest)


def journal_upload_cache(
    files: Files, now: Callable[[], float], journal: BatchJournal
) -> UploadCache:
    """An `UploadCache` over the run's journal: it starts with every upload the run
    recorded (the one expiring last of each content in use), and records each new one."""
    latest: dict[str, UploadedFile] = {}
    aliases: dict[str, str] = {}
    expiries: dict[str, float | None] = {}
    for record in journal.uploads:
        aliases[record.file_url] = record.sha256
        expiries[record.file_url] = record.expires_at
        known = latest.get(record.sha256)
        if known is None or _last(_expiry(known)) < _last(record.expires_at):
            latest[record.sha256] = _uploaded(record)
    store = _JournaledUploads(journal, latest)
    return UploadCache(files, now=now, store=store, aliases=aliases, expiries=expiries)


def _expiry(uploaded: UploadedFile) -> float | None:
    return None if uploaded.expires_at is None else uploaded.expires_at.timestamp()


def _last(expiry: float | None) -> float:
    return float("inf") if expiry is None else expiry


def _uploaded(record: UploadRecord) -> UploadedFile:
    expires = record.expires_at
    return UploadedFile(
        file_id=record.file_id,
        file_url=record.file_url,
        file_size=record.size,
        expires_at=None if expires is None else datetime.fromtimestamp(expires, timezone.utc),
    )


def local_files(request: GenerationRequest) -> list[Path]:
    """The local files (`os.PathLike`, a `Path`) among the reference inputs of `request`."""
    values: list[Any] = [request.image_urls, request.mask_url, *(request.params or {}).values()]
    found: list[Path] = []
    for value in values:
        if isinstance(value, os.PathLike):
            found.append(Path(value))
        elif isinstance(value, (tuple, list)):
            found.extend(Path(v) for v in value if isinstance(v, os.PathLike))
    return found


def has_local_files(request: GenerationRequest) -> bool:
    """Whether any reference input of `request` is a local `Path`."""
    return bool(local_files(request))


def check_local_file(path: Path) -> None:
    """Raise `ValidationError` unless `path` is a readable image the files API takes."""
    check_upload(_read(path), name=path.name)


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise ValidationError("file", "max_size", f"{path.name} is over 10 MB")
        return path.read_bytes()
    except OSError as exc:
        raise ValidationError(
            "file", "readable", f"cannot read {path.name}: {exc.strerror or exc}"
        ) from None
