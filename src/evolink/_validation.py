"""Checks run on every request before it is sent, so no credit is spent on bad input.

Rules every request obeys live in `validate`; what differs by model lives in one table,
`MODEL_RULES`, as data. A model missing from the table gets only the common rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs

from evolink._errors import ValidationError
from evolink._models import GenerationRequest

MAX_CALLBACK_URL_LENGTH = 2048
# Fields the SDK sends itself: `extra_body` may not override them behind the checks' back.
_RESERVED_FIELDS = frozenset(
    {"model", "prompt", "size", "n", "image_urls", "mask_url", "callback_url"}
)


@attrs.frozen
class ModelRules:
    """What one model accepts. `None` means the SDK does not check that field."""

    max_prompt_length: int | None = None
    sizes: frozenset[str] | None = None
    n_values: frozenset[int] | None = None
    max_image_urls: int | None = None
    mask_needs_single_image: bool = False


_GPT_4O_IMAGE = ModelRules(
    max_prompt_length=2000,
    sizes=frozenset({"1:1", "2:3", "3:2", "1024x1024", "1024x1536", "1536x1024"}),
    n_values=frozenset({1, 2, 4}),
    max_image_urls=5,
    mask_needs_single_image=True,
)

MODEL_RULES: Mapping[str, ModelRules] = {
    "gpt-4o-image": _GPT_4O_IMAGE,
    "gpt-4o-image-beta": _GPT_4O_IMAGE,
}


def validate(request: GenerationRequest, *, allow_local_callbacks: bool = False) -> None:
    """Raise `ValidationError` naming the field and the rule if the API would refuse `request`."""
    _check_common(request)
    if request.callback_url is not None:
        _check_callback_url(request.callback_url, allow_local=allow_local_callbacks)
    if request.extra_body is not None:
        clash = sorted(_RESERVED_FIELDS.intersection(request.extra_body))
        if clash:
            raise ValidationError(
                "extra_body", "no_common_fields", f"set {', '.join(clash)} as arguments instead"
            )
    rules = MODEL_RULES.get(request.model)
    if rules is not None:
        _check_model_rules(request, rules)


def _check_common(request: GenerationRequest) -> None:
    _check_type("model", request.model, str)
    if not request.model.strip():
        raise ValidationError("model", "not_empty", "must not be empty")
    if request.prompt is not None:
        # A model that takes no prompt is the catalog's to say; one given must say something.
        _check_type("prompt", request.prompt, str)
        if not request.prompt.strip():
            raise ValidationError("prompt", "not_empty", "must not be empty or only white space")
    if request.n is not None and (isinstance(request.n, bool) or not isinstance(request.n, int)):
        raise ValidationError("n", "type", f"must be an integer, not {type(request.n).__name__}")
    if request.n is not None and request.n < 1:
        raise ValidationError("n", "positive", f"must be at least 1, not {request.n}")
    if request.size is not None:
        _check_type("size", request.size, str)
    for index, url in enumerate(request.image_urls or ()):
        _check_http_url(f"image_urls[{index}]", url)
    if request.mask_url is not None:
        _check_http_url("mask_url", request.mask_url)


def _check_model_rules(request: GenerationRequest, rules: ModelRules) -> None:
    model = request.model
    prompt = request.prompt or ""
    if rules.max_prompt_length is not None and len(prompt) > rules.max_prompt_length:
        raise ValidationError(
            "prompt",
            "max_length",
            f"is {len(prompt)} characters; {model} takes at most {rules.max_prompt_length}",
        )
    if rules.sizes is not None and request.size is not None and request.size not in rules.sizes:
        raise ValidationError(
            "size", "one_of", f"{request.size!r} is not one of {_listed(rules.sizes)} for {model}"
        )
    if rules.n_values is not None and request.n is not None and request.n not in rules.n_values:
        raise ValidationError(
            "n", "one_of", f"{request.n} is not one of {_listed(rules.n_values)} for {model}"
        )
    images = len(request.image_urls or ())
    if rules.max_image_urls is not None and images > rules.max_image_urls:
        raise ValidationError(
            "image_urls",
            "max_items",
            f"{images} images; {model} takes at most {rules.max_image_urls}",
        )
    if rules.mask_needs_single_image and request.mask_url is not None and images > 1:
        raise ValidationError(
            "mask_url", "single_image", f"cannot be used with {images} reference images, only 1"
        )


def _check_type(field: str, value: object, expected: type) -> None:
    if not isinstance(value, expected):
        raise ValidationError(
            field, "type", f"must be a {expected.__name__}, not {type(value).__name__}"
        )


def _check_http_url(field: str, url: object) -> None:
    _check_type(field, url, str)
    assert isinstance(url, str)  # noqa: S101 - narrowed for the type checker
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValidationError(field, "http_url", f"is not a URL: {url[:80]!r}") from None
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValidationError(field, "http_url", f"must be an http(s) URL, not {url[:80]!r}")


def _check_callback_url(url: str, *, allow_local: bool) -> None:
    _check_http_url("callback_url", url)
    if len(url) > MAX_CALLBACK_URL_LENGTH:
        raise ValidationError(
            "callback_url",
            "max_length",
            f"is {len(url)} characters; at most {MAX_CALLBACK_URL_LENGTH}",
        )
    if allow_local:
        return
    parts = urlsplit(url)  # checked above: it parses
    if parts.scheme != "https":
        raise ValidationError("callback_url", "https", "must use https")
    host = parts.hostname or ""
    if _is_internal(host):
        raise ValidationError(
            "callback_url", "public_address", f"{host} is an internal address the API refuses"
        )


def _is_internal(host: str) -> bool:
    host = host.rstrip(".")  # "localhost." and "127.0.0.1." name the same hosts
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: only the server can resolve it
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def _listed(values: frozenset[str] | frozenset[int]) -> str:
    return ", ".join(sorted(str(v) for v in values))
