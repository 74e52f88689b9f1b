"""The simulator's control plane and files API: the catalog, the prices, uploads, quota.

Shapes follow `PLATFORM.md` (the versioned `{meta, models}` / `{meta, prices}` envelopes,
served with an ETag and answered 304 to a matching If-None-Match) and the files API's
OpenAPI files (`{success, code, msg, data}`; JPEG, PNG, GIF or WebP up to 10 MB; files
expire after 72 hours; 2000 files per account).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import attrs

from evolink.testing._catalog import ModelSpec
from evolink.testing._http import Reply, Request, json_reply
from evolink.testing._media import Kind
from evolink.testing._schemas import Catalog

CATALOG_PATHS = frozenset({"/v1/catalog/models", "/v1/catalog/pricing"})
FILES_PREFIX = "/api/v1/files/"
FILE_TTL = 72 * 3600.0
MAX_FILE_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 2000
_UNITS = {Kind.IMAGE: "image", Kind.VIDEO: "second", Kind.AUDIO: "request"}
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
)


@attrs.frozen
class LifecycleChange:
    """A model's place in its life, as the simulator's catalog will say."""

    lifecycle: str
    deprecates_at: str | None = None
    retires_at: str | None = None
    replacement: str | None = None


@attrs.frozen
class StoredFile:
    """One uploaded file, as the simulator keeps it."""

    file_id: str
    key: str
    content: bytes
    mime_type: str
    file_name: str
    upload_path: str
    uploaded: float
    ttl: float = FILE_TTL  # seconds it lives (the platform's `file_ttl` when stored)

    def view(self, origin: str) -> dict[str, Any]:
        url = f"{origin}/files/{self.upload_path}/{self.file_id}-{self.file_name}"
        return {
            "file_id": self.file_id,
            "file_name": f"{self.file_id}-{self.file_name}",
            "original_name": self.file_name,
            "file_size": len(self.content),
            "mime_type": self.mime_type,
            "upload_path": self.upload_path,
            "file_url": url,
            "download_url": f"{origin}/api/v1/files/download/{self.file_id}",
            "upload_time": _iso(self.uploaded),
            "expires_at": _iso(self.uploaded + self.ttl),
        }


@attrs.define
class Platform:
    """What the simulator serves beyond tasks: catalog, prices, files."""

    models: Mapping[str, ModelSpec]
    docs: Catalog
    accept_retired: bool = True
    publish_prices: bool = True
    max_files: int = DEFAULT_MAX_FILES
    file_ttl: float = FILE_TTL
    lifecycles: dict[str, LifecycleChange] = attrs.field(factory=dict)
    files: dict[str, StoredFile] = attrs.field(factory=dict)
    #: Upload answers by (key, Idempotency-Key): a resent upload is answered, not redone.
    _uploads_by_key: dict[tuple[str, str], str] = attrs.field(factory=dict)
    _ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))
    _catalog_version: int = 1

    def handles(self, method: str, path: str) -> str | None:
        """The route kind of a platform request, or None."""
        if method == "GET" and path in CATALOG_PATHS:
            return "catalog"
        if method == "POST" and path in ("/api/v1/files/upload/base64", "/api/v1/files/upload/url"):
            return "upload"
        if method == "GET" and path in ("/api/v1/files/list", "/api/v1/files/quota"):
            return "files"
        if method == "DELETE" and path.startswith(FILES_PREFIX):
            return "files"
        return None

    def set_lifecycle(self, model: str, change: LifecycleChange) -> None:
        self.lifecycles[model] = change
        self._catalog_version += 1

    def retired(self, model: str) -> bool:
        """Whether the catalog says `model` (or the model an alias names) is retired."""
        change = self.lifecycles.get(model) or self.lifecycles.get(self.docs.resolve(model))
        if change is not None:
            return change.lifecycle == "retired"
        doc = self.docs.get(model)
        return doc is not None and doc.archived and not self.accept_retired

    def answer(self, kind: str, request: Request, key: str, now: float) -> tuple[Reply, bool]:
        """The reply, and whether it is a replay of an earlier upload."""
        if kind == "catalog":
            body = self._models() if request.path.endswith("/models") else self._prices()
            return _conditional(request, body), False
        if kind == "upload":
            return self._upload(request, key, now)
        if request.method == "DELETE":
            return self._delete(request.path.removeprefix(FILES_PREFIX), key, now), False
        if request.path.endswith("/quota"):
            return self._quota(key, now), False
        return self._list(request, key, now), False

    def count_files(self, key: str | None, now: float) -> int:
        return sum(1 for f in self.files.values() if self._alive(f, now) and key in (None, f.key))

    # -- catalog --------------------------------------------------------------------------

    def _models(self) -> dict[str, Any]:
        rows = []
        for name in sorted(self.models):
            spec = self.models[name]
            doc = self.docs.get(name)
            change = self.lifecycles.get(name)
            lifecycle = "retired" if self.retired(name) else "active"
            row: dict[str, Any] = {
                "model_id": name,
                "display_name": name,
                "provider": "simulated",
                "aliases": [a for a, target in self.docs.aliases.items() if target == name],
                "capabilities": [f"{(doc.kind if doc else spec.kind).value}_generation"],
                "protocols": ["tasks"],
                "lifecycle": change.lifecycle if change else lifecycle,
                "deprecates_at": change.deprecates_at if change else None,
            }
            if change is not None and change.retires_at:
                row["retires_at"] = change.retires_at
            if change is not None and change.replacement:
                row["replacement"] = change.replacement
            rows.append(row)
        return {"meta": self._meta(), "models": rows}

    def _prices(self) -> dict[str, Any]:
        rows = []
        if self.publish_prices:
            for name in sorted(self.models):
                spec = self.models[name]
                doc = self.docs.get(name)
                kind = doc.kind if doc is not None else spec.kind
                rows.append(
                    {
                        "sku_id": f"sku-{name}",
                        "model_id": name,
                        "role": "output",
                        "currency": "credits",
                        "unit": _UNITS[kind],
                        "price": _number(spec.price),
                        "official_price": _number(spec.price),
                        "effective_at": "2026-08-01T00:00:00Z",
                        "source_url": "https://evolink.ai/pricing",
                    }
                )
        return {"meta": self._meta(), "prices": rows}

    def _meta(self) -> dict[str, Any]:
        return {
            "schema_version": "1",
            "catalog_version": str(self._catalog_version),
            "updated_at": "2026-08-21T00:00:00Z",
            "fresh_until": None,
        }

    # -- files ----------------------------------------------------------------------------

    def _upload(self, request: Request, key: str, now: float) -> tuple[Reply, bool]:
        idempotency_key = request.headers.get("idempotency-key")
        if idempotency_key is not None:
            known = self.files.get(self._uploads_by_key.get((key, idempotency_key), ""))
            if known is not None:
                reply = _ok(known.view(request.origin), "File uploaded successfully")
                return reply.with_headers(("idempotency-replayed", "true")), True
        body = request.json()
        found = _content(body, by_url=request.path.endswith("/url"))
        if isinstance(found, Reply):
            return found, False
        content, name, sniffed = found
        if self.count_files(key, now) >= self.max_files:
            return _refused(403, "file quota exceeded"), False
        file_name = body.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            file_name = name if "." in name else f"{name}.{sniffed[1]}"
        upload_path = body.get("upload_path")
        stored = StoredFile(
            file_id=f"file_{next(self._ids):06d}{hashlib.sha256(content).hexdigest()[:6]}",
            key=key,
            content=content,
            mime_type=sniffed[0],
            file_name=file_name,
            upload_path=upload_path if isinstance(upload_path, str) and upload_path else "images",
            uploaded=now,
            ttl=self.file_ttl,
        )
        self.files[stored.file_id] = stored
        if idempotency_key is not None:
            self._uploads_by_key[key, idempotency_key] = stored.file_id
        return _ok(stored.view(request.origin), "File uploaded successfully"), False

    def _alive(self, stored: StoredFile, now: float) -> bool:
        return now < stored.uploaded + stored.ttl

    def _list(self, request: Request, key: str, now: float) -> Reply:
        params = request.params()
        try:
            page = int(params.get("page", "1"))
            size = int(params.get("pageSize", params.get("page_size", "20")))
        except ValueError:
            return _refused(400, "page and pageSize must be integers")
        if page < 1 or not 1 <= size <= 100:
            return _refused(400, "page >= 1 and 1 <= pageSize <= 100")
        mine = [f for f in self.files.values() if f.key == key and self._alive(f, now)]
        mine.reverse()  # newest first
        start = (page - 1) * size
        views = [f.view(request.origin) for f in mine[start : start + size]]
        data = {"files": views, "total": len(mine), "page": page, "page_size": size}
        return _ok(data, "success")

    def _quota(self, key: str, now: float) -> Reply:
        used = self.count_files(key, now)
        data = {
            "user_group": "default",
            "used_files": used,
            "max_files": self.max_files,
            "remain_files": max(0, self.max_files - used),
            "is_custom": self.max_files != DEFAULT_MAX_FILES,
            "quota_reason": "",
        }
        return _ok(data, "success")

    def _delete(self, file_id: str, key: str, now: float) -> Reply:
        stored = self.files.get(file_id)
        if stored is None or stored.key != key or not self._alive(stored, now):
            return _refused(404, "file not found")
        del self.files[file_id]
        return _ok({"file_id": file_id}, "File deleted successfully")


#: What an upload by URL stores: the simulator does not fetch the web.
_PNG_STAND_IN = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _content(body: Any, *, by_url: bool) -> tuple[bytes, str, tuple[str, str]] | Reply:
    """The upload's bytes, a name for it and its (type, extension), or the refusal."""
    if not isinstance(body, dict):
        return _refused(400, "request body must be a JSON object")
    if by_url:
        url = body.get("file_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _refused(400, "file_url must be an http(s) URL")
        content = _PNG_STAND_IN  # the simulator fetches nothing: a URL stores a tiny PNG
        name = url.rstrip("/").rsplit("/", 1)[-1] or "file.png"
    else:
        decoded = _decode(body.get("base64_data"))
        if isinstance(decoded, Reply):
            return decoded
        content, name = decoded, "upload"
    if len(content) > MAX_FILE_BYTES:
        return _refused(400, "file size exceeds 10MB")
    sniffed = next(((m, ext) for sig, m, ext in _SIGNATURES if content.startswith(sig)), None)
    if sniffed is None and content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        sniffed = ("image/webp", "webp")
    if sniffed is None:
        return _refused(400, "unsupported file type: JPEG, PNG, GIF or WebP only")
    return content, name, sniffed


def _decode(value: Any) -> bytes | Reply:
    if not isinstance(value, str) or not value:
        return _refused(400, "base64_data is required")
    _, comma, payload = value.partition(",") if value.startswith("data:") else ("", "", value)
    if value.startswith("data:") and not comma:
        return _refused(400, "malformed data URL")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return _refused(400, "base64_data is not valid base64")


def _conditional(request: Request, body: dict[str, Any]) -> Reply:
    """`body` with an ETag, or 304 when the client's copy is current."""
    encoded = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    etag = f'"{hashlib.sha256(encoded).hexdigest()[:16]}"'
    if request.headers.get("if-none-match") == etag:
        return Reply(304, b"", headers=(("etag", etag),))
    return Reply(200, encoded, headers=(("etag", etag), ("cache-control", "max-age=300")))


def _ok(data: Any, message: str) -> Reply:
    return json_reply(200, {"success": True, "code": 200, "msg": message, "data": data})


def _refused(code: int, message: str) -> Reply:
    """The files API's refusal: HTTP 200 with `success: false` (as its docs show)."""
    return json_reply(200, {"success": False, "code": code, "msg": message, "data": None})


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()
