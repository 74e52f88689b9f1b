"""Local reference images in requests: each distinct file uploaded once, its URL reused.

`UploadCache` maps a file's sha256 to its upload, so a run that names the same image in a
thousand rows uploads it once, and an upload that has expired (or is about to) is made
again. Its `store` is any mutable mapping: a journal can hand in a persistent one, so a
resumed run finds the uploads of the run before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio
import attrs

from evolink._errors import EvolinkError, ValidationError
from evolink._files import MAX_UPLOAD_BYTES, Files, UploadedFile, check_upload
from evolink._models import GenerationRequest

T = TypeVar("T")

#: An upload this close to its expiry is made again: a task may start minutes later.
EXPIRY_MARGIN = 3600.0


@attrs.define
class UploadCache:
    """Uploads by content (sha256 hex): one upload per distinct file, reused while valid.

    Args:
        files: the client's `files` resource.
        store: where uploads are kept (default: in memory, for this cache's life).
        now: the Unix time (the client's clock).
    """

    files: Files
    now: Callable[[], float]
    store: MutableMapping[str, UploadedFile] = attrs.field(factory=dict)
    uploads: int = 0  # uploads this cache made (for reports and tests)
    _locks: dict[str, anyio.Lock] = attrs.field(factory=dict)

    async def url_for(self, path: Path) -> str:
        """The URL of `path`'s content, uploading it unless a valid upload is known.

        Raises:
            ValidationError: the file is missing, too large or not an image (nothing sent).
            UploadUncertainError, APIError: as `files.upload`.
        """
        content = _read(path)
        check_upload(content, name=path.name)
        digest = hashlib.sha256(content).hexdigest()
        lock = self._locks.setdefault(digest, anyio.Lock())
        async with lock:  # two rows naming one file: the second waits for the first's URL
            known = self.store.get(digest)
            if known is not None and not known.expires_within(EXPIRY_MARGIN, now=self.now()):
                return known.file_url
            uploaded = await self.files.upload(content, file_name=path.name)
            self.uploads += 1
            self.store[digest] = uploaded
            return uploaded.file_url

    async def resolve(self, request: GenerationRequest) -> GenerationRequest:
        """`request` with every local `Path` among its reference inputs replaced by a URL."""
        changes: dict[str, Any] = {}
        for name in ("image_urls", "mask_url"):
            value = getattr(request, name)
            replaced = await self._replace(value)
            if replaced is not value:
                changes[name] = replaced
        if request.params:
            params = {k: await self._replace(v) for k, v in request.params.items()}
            if any(params[k] is not v for k, v in request.params.items()):
                changes["params"] = params
        return attrs.evolve(request, **changes) if changes else request

    async def prepare(self, item: T) -> T | ValidationError:
        """`item` with its local files uploaded (a request), or why that failed; anything
        else as it is. For a batch: a failure becomes the input's `rejected` outcome."""
        if not isinstance(item, GenerationRequest) or not has_local_files(item):
            return item
        try:
            return cast("T", await self.resolve(item))
        except ValidationError as exc:
            return exc
        except EvolinkError as exc:
            return ValidationError("image_urls", "upload", f"a local file was not uploaded: {exc}")

    async def _replace(self, value: Any) -> Any:
        if isinstance(value, Path):
            return await self.url_for(value)
        if isinstance(value, (tuple, list)) and any(isinstance(v, Path) for v in value):
            return type(value)([await self._replace(v) for v in value])
        return value


def local_files(request: GenerationRequest) -> list[Path]:
    """The local `Path`s among the reference inputs of `request`."""
    values: list[Any] = [request.image_urls, request.mask_url, *(request.params or {}).values()]
    found: list[Path] = []
    for value in values:
        if isinstance(value, Path):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            found.extend(v for v in value if isinstance(v, Path))
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
