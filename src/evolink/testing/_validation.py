"""Checks of a create request, as the API makes them (SPEC.md and the seed)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from evolink.testing._catalog import GPT4O_MODELS, GPT4O_SIZES, ModelSpec

MAX_PROMPT = 2000
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
    """The parts of a valid create request the simulator uses."""

    model: str
    prompt: str
    size: str | None
    n: int
    callback_url: str | None


def _is_http_uri(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def is_internal_host(host: str) -> bool:
    """Loopback, private, link-local and similar addresses, and local-only names."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(_INTERNAL_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def check_callback_url(value: object, *, allow_local: bool) -> str:
    """The callback URL, or `Invalid`: HTTPS to a public host unless `allow_local`."""
    if not isinstance(value, str) or not value:
        raise Invalid("callback_url", "callback_url must be a URL string")
    if len(value) > MAX_CALLBACK_URL:
        raise Invalid("callback_url", f"callback_url exceeds {MAX_CALLBACK_URL} characters")
    parts = urlsplit(value)
    if not parts.hostname or parts.scheme not in {"http", "https"}:
        raise Invalid("callback_url", "callback_url must be an absolute http(s) URL")
    if not allow_local:
        if parts.scheme != "https":
            raise Invalid("callback_url", "callback_url must use HTTPS")
        if is_internal_host(parts.hostname):
            raise Invalid("callback_url", "callback_url must not point at an internal address")
    return value


def check_generation(body: Any, spec: ModelSpec, *, allow_local_callbacks: bool) -> Generation:
    """Validate a create body (a JSON object whose `model` is `spec`), or raise `Invalid`."""
    strict = spec.name in GPT4O_MODELS
    prompt = _check_prompt(body, spec, strict=strict)
    size = body.get("size")
    if size is not None and (
        not isinstance(size, str) or (strict and size not in GPT4O_SIZES) or not size
    ):
        allowed = ", ".join(GPT4O_SIZES) if strict else "a size string"
        raise Invalid("size", f"size must be one of {allowed}")
    n = _check_n(body.get("n", 1), strict=strict)
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
    return Generation(model=spec.name, prompt=prompt, size=size, n=n, callback_url=callback_url)


def _check_prompt(body: Mapping[str, Any], spec: ModelSpec, *, strict: bool) -> str:
    prompt = body.get("prompt")
    if prompt is None and not spec.requires_prompt:
        return ""
    if not isinstance(prompt, str) or not prompt.strip():
        raise Invalid("prompt", "prompt is required and must be a non-empty string")
    limit = MAX_PROMPT if strict else MAX_OTHER_PROMPT
    if len(prompt) > limit:
        raise Invalid("prompt", f"prompt exceeds {limit} characters")
    return prompt


def _check_n(n: object, *, strict: bool) -> int:
    if not isinstance(n, int) or isinstance(n, bool):
        raise Invalid("n", "n must be an integer")
    if strict and n not in GPT4O_N:
        raise Invalid("n", "n must be 1, 2 or 4")
    if not 1 <= n <= MAX_OTHER_N:
        raise Invalid("n", f"n must be between 1 and {MAX_OTHER_N}")
    return n
