"""Checks of a create request, as the API makes them.

A documented model's body is checked against its own OpenAPI request schema (JSON Schema
Draft 2020-12, as OpenAPI 3.1 declares; `format` is an annotation, not checked), then by the
rules the docs state in prose: a `prompt` that is given is not blank, `n` is at most 10,
URLs are http(s), the callback URL is HTTPS to a public host, and SPEC.md's rules for
`gpt-4o-image`. A model added with `prices=` has no schema: it gets the lenient rules.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import attrs

from evolink._extras import install_hint
from evolink.testing._catalog import GPT4O_MODELS, ModelSpec
from evolink.testing._media import DEFAULT_MEDIA_SECONDS, Kind
from evolink.testing._schemas import ModelDoc, catalog

#: Other models document longer prompts; the simulator is lenient with them.
MAX_OTHER_PROMPT = 10_000
MAX_IMAGE_URLS = 5
MAX_CALLBACK_URL = 2048
GPT4O_N = (1, 2, 4)
MAX_OTHER_N = 10
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._-]{16,96}$")
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


@attrs.frozen
class Invalid(Exception):  # noqa: N818 - a refusal, raised and caught inside the simulator
    """A 400: what is wrong and with which field."""

    param: str
    message: str


@attrs.frozen
class Generation:
    """The parts of a valid create request the simulator uses.

    `price` (credits per result file, when set) overrides the model's price: a video's is
    its per-second price times its seconds, an alias's is the alias's own. `seconds` is
    the length asked of a video or audio result.
    """

    model: str
    prompt: str
    size: str | None
    n: int
    callback_url: str | None
    kind: Kind = Kind.IMAGE
    price: Decimal | None = None
    seconds: float | None = None
    #: The model name as sent (an alias, say), where it differs from `model`.
    asked: str | None = None


def _is_http_uri(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def is_internal_host(host: str) -> bool:
    """Loopback, private, shared, link-local, multicast and similar addresses (in any form
    a URL parser reads as one, `2130706433` included), and local-only names."""
    host = host.strip("[]").lower().rstrip(".")  # "localhost." is localhost
    if not host or host == "localhost" or host.endswith(_INTERNAL_SUFFIXES):
        return True
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        if not _ends_in_number(host):
            return False
        legacy = _legacy_ipv4(host)
        if legacy is None:
            return True
        address = legacy
    return not address.is_global or address.is_multicast


def _ends_in_number(host: str) -> bool:
    # A URL parser reads a host whose last label is a number as an IPv4 address.
    last = host.rsplit(".", 1)[-1]
    return last.isdigit() or (last[:2] == "0x" and all(c in "0123456789abcdef" for c in last[2:]))


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """`host` in `inet_aton`'s forms (1 to 4 parts, octal, hex), or None."""
    labels = host.split(".")
    if len(labels) > 4:
        return None
    numbers = []
    for label in labels:
        base = 16 if label[:2] == "0x" else 8 if len(label) > 1 and label[0] == "0" else 10
        try:
            numbers.append(int((label[2:] if base == 16 else label) or "0", base))
        except ValueError:
            return None
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    return ipaddress.IPv4Address(last + sum(n << (8 * (3 - i)) for i, n in enumerate(leading)))


def check_callback_url(value: object, *, allow_local: bool) -> str:
    """The callback URL, or `Invalid`: HTTPS to a public host unless `allow_local`."""
    if not isinstance(value, str) or not value:
        raise Invalid("callback_url", "callback_url must be a URL string")
    if len(value) > MAX_CALLBACK_URL:
        raise Invalid("callback_url", f"callback_url exceeds {MAX_CALLBACK_URL} characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - read for its check: a port past 65535 raises
    except ValueError:
        raise Invalid("callback_url", "callback_url must be an absolute http(s) URL") from None
    host = parts.hostname
    if not host or parts.scheme not in {"http", "https"} or any(c.isspace() for c in host):
        raise Invalid("callback_url", "callback_url must be an absolute http(s) URL")
    if not allow_local:
        if parts.scheme != "https":
            raise Invalid("callback_url", "callback_url must use HTTPS")
        if is_internal_host(host):
            raise Invalid("callback_url", "callback_url must not point at an internal address")
    return value


def check_documented(
    body: Mapping[str, Any], doc: ModelDoc, spec: ModelSpec, *, allow_local_callbacks: bool
) -> Generation:
    """Validate a create body for a documented model (`body["model"]` is `doc` or an alias
    of it; `spec` prices the name asked), or raise `Invalid`."""
    asked = _asked(body)
    body = {**body, "model": doc.name}
    check_schema(_with_shot_prompts(body, doc), doc)
    prompt = body.get("prompt")
    if isinstance(prompt, str) and not prompt.strip():
        raise Invalid("prompt", "prompt must not be empty")
    n = _check_n(body.get("n", 1), strict=doc.name in GPT4O_MODELS)
    for field in ("image_urls", "video_urls", "audio_urls"):
        urls = body.get(field)
        if isinstance(urls, list) and not all(_is_http_uri(u) for u in urls if isinstance(u, str)):
            raise Invalid(field, f"{field} must be a list of http(s) URLs")
    for field in ("mask_url", "image_url", "video_url", "audio_url"):
        value = body.get(field)
        if isinstance(value, str) and not _is_http_uri(value):
            raise Invalid(field, f"{field} must be an http(s) URL")
    if doc.name in GPT4O_MODELS:
        _check_gpt4o_images(body)
    callback_url = body.get("callback_url")
    if callback_url is not None:
        callback_url = check_callback_url(callback_url, allow_local=allow_local_callbacks)
    size = body.get("size")
    prompt_text = prompt if isinstance(prompt, str) else ""
    if doc.kind is Kind.IMAGE:
        return Generation(
            model=doc.name,
            prompt=prompt_text,
            size=size if isinstance(size, str) else None,
            n=n,
            callback_url=callback_url,
            price=spec.price,
            asked=asked,
        )
    seconds = media_seconds(body, doc)
    price = spec.price * Decimal(str(seconds)) if doc.kind is Kind.VIDEO else spec.price
    return Generation(
        model=doc.name,
        prompt=prompt_text,
        size=None,
        n=1,
        callback_url=callback_url,
        kind=doc.kind,
        price=price,
        asked=asked,
        seconds=seconds,
    )


def media_seconds(body: Mapping[str, Any], doc: ModelDoc) -> float:
    """Seconds of video or audio asked: `duration` if a number (or a numeric string),
    else the schema's default, else 5."""
    for given in (body.get("duration"), doc.schema_default("duration")):
        value = given
        if isinstance(given, str):
            try:
                value = float(given)
            except ValueError:
                continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return DEFAULT_MEDIA_SECONDS


def _check_gpt4o_images(body: Mapping[str, Any]) -> None:
    image_urls = body.get("image_urls")
    if image_urls is not None and len(image_urls) > MAX_IMAGE_URLS:
        raise Invalid("image_urls", f"at most {MAX_IMAGE_URLS} image_urls")
    if body.get("mask_url") is not None and image_urls is not None and len(image_urls) > 1:
        raise Invalid("mask_url", "mask_url cannot be used with more than one image_urls")


def check_schema(body: Mapping[str, Any], doc: ModelDoc) -> None:
    """Raise `Invalid` naming the first field (shallowest, then by name) that breaks the
    model's request schema."""
    errors = list(_validator(doc.name).iter_errors(body))
    if not errors:
        return
    error = min(errors, key=_error_order)
    param, message = describe_error(error)
    raise Invalid(param, message)


def require_jsonschema() -> Any:
    """The jsonschema module; a clear `RuntimeError` naming the extra when it is missing."""
    try:
        return importlib.import_module("jsonschema")
    except ImportError:
        raise RuntimeError(
            "The simulator checks requests against Evolink's schemas with jsonschema, "
            f"which is not installed; it comes with {install_hint('testing')}"
        ) from None


@functools.cache
def _validator(name: str) -> Any:
    jsonschema = require_jsonschema()
    # No format checker: `format` stays an annotation, as Draft 2020-12 has it by default.
    return jsonschema.Draft202012Validator(catalog().models[name].schema)


def _error_order(error: Any) -> tuple[int, str, str]:
    return (len(error.absolute_path), _dotted(error.absolute_path), str(error.validator))


def _dotted(path: Iterable[object]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _join(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def _listing(values: Iterable[object]) -> str:
    return ", ".join(v if isinstance(v, str) else json.dumps(v) for v in values)


#: How each keyword's failure reads (the field's name comes first, as the API writes it).
_MESSAGES = {
    "enum": lambda p, v: f"{p} must be one of: {_listing(v)}",
    "const": lambda p, v: f"{p} must be {_listing([v])}",
    "type": lambda p, v: f"{p} must be of type {v if isinstance(v, str) else ' or '.join(v)}",
    "maximum": lambda p, v: f"{p} must be at most {v}",
    "minimum": lambda p, v: f"{p} must be at least {v}",
    "exclusiveMaximum": lambda p, v: f"{p} must be less than {v}",
    "exclusiveMinimum": lambda p, v: f"{p} must be greater than {v}",
    "maxItems": lambda p, v: f"{p} accepts at most {v} items",
    "minItems": lambda p, v: f"{p} needs at least {v} items",
    "maxLength": lambda p, v: f"{p} exceeds {v} characters",
    "minLength": lambda p, v: f"{p} must be at least {v} characters",
    "pattern": lambda p, v: f"{p} must match {v}",
    "multipleOf": lambda p, v: f"{p} must be a multiple of {v}",
}


def describe_error(error: Any) -> tuple[str, str]:
    """The field at fault (dotted, `[i]` for items) and a message naming it."""
    path = _dotted(error.absolute_path)
    keyword = str(error.validator)
    if keyword == "required" and isinstance(error.instance, dict):
        missing = next(n for n in error.validator_value if n not in error.instance)
        param = _join(path, missing)
        return param, f"Missing required parameter: {param}"
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        extra = sorted(name for name in error.instance if name not in known)
        if extra:
            param = _join(path, extra[0])
            return param, f"Unknown parameter: {param}"
    param = path or "body"
    describe = _MESSAGES.get(keyword)
    if describe is not None:
        return param, describe(param, error.validator_value)
    return param, f"{param}: {error.message}"


def check_generation(body: Any, spec: ModelSpec, *, allow_local_callbacks: bool) -> Generation:
    """Validate a create body for a model without a schema (added with `prices=`), or raise
    `Invalid`: the lenient rules."""
    prompt = _check_prompt(body, spec)
    size = body.get("size")
    if size is not None and (not isinstance(size, str) or not size):
        raise Invalid("size", "size must be a size string")
    n = _check_n(body.get("n", 1), strict=False)
    image_urls = body.get("image_urls")
    if image_urls is not None:
        if not isinstance(image_urls, list) or not all(_is_http_uri(u) for u in image_urls):
            raise Invalid("image_urls", "image_urls must be a list of http(s) URLs")
        if len(image_urls) > MAX_IMAGE_URLS:
            raise Invalid("image_urls", f"at most {MAX_IMAGE_URLS} image_urls")
    if spec.requires_image_urls and not image_urls:
        raise Invalid("image_urls", f"{spec.name} needs at least one of image_urls")
    mask_url = body.get("mask_url")
    if mask_url is not None:
        if not _is_http_uri(mask_url):
            raise Invalid("mask_url", "mask_url must be an http(s) URL")
        if image_urls is not None and len(image_urls) > 1:
            raise Invalid("mask_url", "mask_url cannot be used with more than one image_urls")
    callback_url = body.get("callback_url")
    if callback_url is not None:
        callback_url = check_callback_url(callback_url, allow_local=allow_local_callbacks)
    return Generation(
        model=spec.name, prompt=prompt, size=size, n=n, callback_url=callback_url, kind=spec.kind
    )


def _with_shot_prompts(body: dict[str, Any], doc: ModelDoc) -> dict[str, Any]:
    """Kling's multi-shot bodies carry a prompt per shot: its docs let the top one go."""
    params = body.get("model_params")
    if (
        doc.name.startswith("kling-")
        and "prompt" not in body
        and isinstance(params, Mapping)
        and params.get("multi_shot") is True
        and params.get("multi_prompt")
    ):
        return {**body, "prompt": "(per shot)"}
    return body


def _asked(body: Mapping[str, Any]) -> str | None:
    model = body.get("model")
    return model if isinstance(model, str) else None


def _check_prompt(body: Mapping[str, Any], spec: ModelSpec) -> str:
    prompt = body.get("prompt")
    if prompt is None and not spec.requires_prompt:
        return ""
    if not isinstance(prompt, str) or not prompt.strip():
        raise Invalid("prompt", "prompt is required and must be a non-empty string")
    if len(prompt) > MAX_OTHER_PROMPT:
        raise Invalid("prompt", f"prompt exceeds {MAX_OTHER_PROMPT} characters")
    return prompt


def _check_n(n: object, *, strict: bool) -> int:
    if not isinstance(n, int) or isinstance(n, bool):
        raise Invalid("n", "n must be an integer")
    if strict and n not in GPT4O_N:
        raise Invalid("n", "n must be 1, 2 or 4")
    if not 1 <= n <= MAX_OTHER_N:
        raise Invalid("n", f"n must be between 1 and {MAX_OTHER_N}")
    return n
