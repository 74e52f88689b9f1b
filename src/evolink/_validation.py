"""Checks run on every request before it is sent, so no credit is spent on bad input.

Rules every request obeys live in `validate`; what differs by model comes from the model
catalog (`_catalog`), generated from each model's OpenAPI file. A model the catalog does not
know gets only the common rules, and a warning.
"""

from __future__ import annotations

import difflib
import ipaddress
import warnings
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs

from evolink._catalog import ModelSpec, all_models, model_spec, validate_body
from evolink._errors import UnknownModelWarning, ValidationError
from evolink._models import GenerationRequest
from evolink._prose_rules import check_prose_rules

MAX_CALLBACK_URL_LENGTH = 2048
# Fields the SDK sends itself: `extra_body` may not override them behind the checks' back.
_RESERVED_FIELDS = frozenset(
    {"model", "prompt", "size", "n", "image_urls", "mask_url", "callback_url"}
)
# ...and `params` may not name the model or carry the prompt or callback beside them.
_PARAMS_RESERVED = frozenset({"model", "prompt", "callback_url"})
#: The date of the Evolink docs the model catalog was generated from.
CATALOG_DATE = "2026-08-21"


#: Named in the warning for a model the docs have retired.
CURRENT_ALTERNATIVES: Mapping[str, tuple[str, ...]] = {
    "image": ("gpt-image-2", "gpt-image-1.5", "gemini-3.1-flash-image-preview"),
    "video": ("kling-v3-text-to-video", "seedance-2.0-text-to-video", "sora-2-preview"),
    "audio": ("suno-v5-beta", "doubao-seed-audio-1-0"),
}


def validate(request: GenerationRequest, *, allow_local_callbacks: bool = False) -> None:
    """Raise `ValidationError` naming the field and the rule if the API would refuse `request`."""
    _check_common(request)
    if request.callback_url is not None:
        _check_callback_url(request.callback_url, allow_local=allow_local_callbacks)
    if request.extra_body is not None:
        clash = sorted(
            _RESERVED_FIELDS.union(request.params or ()).intersection(request.extra_body)
        )
        if clash:
            raise ValidationError(
                "extra_body", "no_common_fields", f"set {', '.join(clash)} as arguments instead"
            )
    if request.params is not None:
        clash = sorted(_PARAMS_RESERVED.intersection(request.params))
        if clash:
            raise ValidationError(
                "params", "no_common_fields", f"set {', '.join(clash)} as arguments instead"
            )
    _check_model(request)


def _check_model(request: GenerationRequest) -> None:
    """The model's own documented rules, from the catalog generated from its OpenAPI file."""
    spec = model_spec(request.model)
    if spec is None:
        near = _near_miss(request.model)
        if near is not None:
            # A known name misspelt (a case, a space, two letters swapped) is a mistake, not
            # a model newer than the catalog: refuse it before it costs anything.
            raise ValidationError(
                "model", "known_model", f"{request.model!r} is not a model; did you mean {near!r}?"
            )
        # The platform adds models every month: send it as asked, but say so.
        warnings.warn(
            f"model {request.model!r} is not in the SDK's model catalog (Evolink's docs of "
            f"{CATALOG_DATE}): it is sent as asked, unchecked",
            UnknownModelWarning,
            stacklevel=4,
        )
        return
    if spec.kind != request.kind:
        raise ValidationError(
            "model",
            "kind",
            f"{request.model} makes {spec.kind}s: use client.{spec.kind}s",
        )
    if spec.archived:
        current = ", ".join(CURRENT_ALTERNATIVES.get(spec.kind, ()))
        warnings.warn(
            f"model {request.model!r} was taken off Evolink's docs on 2026-05-29 and the "
            f"platform may refuse it; current {spec.kind} models include {current}",
            DeprecationWarning,
            stacklevel=4,
        )
    # A null is an unset field, not a value to check (and to_body leaves common ones out);
    # `extra_body` is the escape hatch for fields newer than the catalog: sent unchecked.
    checked = attrs.evolve(request, extra_body=None).to_body()
    body = {k: v for k, v in checked.items() if v is not None}
    unknown = sorted(set(body) - set(spec.params.properties) - {"model"})
    if unknown:
        # A parameter the model does not document is a mistake (or newer than the catalog:
        # then it goes in `extra_body`, sent unchecked).
        known = ", ".join(sorted(spec.params.properties))
        raise ValidationError(
            unknown[0],
            "known_field",
            f"{spec.name} takes no {unknown[0]!r} (it takes {known}); a field newer than the "
            f"SDK's catalog goes in extra_body (see {spec.doc})",
        )
    _check_values(spec, body)
    if _multi_shot_without_prompt(spec.name, body):
        # Kling's multi-shot mode takes its prompts per shot (its docs' own example has no
        # top-level prompt, though the schema lists it as required).
        body = {**body, "prompt": "(per shot)"}
    validate_body(spec.name, body)
    check_prose_rules(spec.name, body, spec.doc)


def _check_values(spec: ModelSpec, body: Mapping[str, object]) -> None:
    """What the schema lets through but the API would not take as meant."""
    for name, value in body.items():
        prop = spec.params.properties.get(name)
        if prop is None:
            continue
        if prop.types == ("integer",) and isinstance(value, float) and value.is_integer():
            # 5.0 passes a JSON-schema integer, but would be sent as 5.0: say what to send.
            raise ValidationError(name, "type", f"give {int(value)}, not {value} ({spec.name})")
        if prop.format == "uri" or (prop.items is not None and prop.items.format == "uri"):
            urls = value if isinstance(value, list) else [value]
            for index, url in enumerate(urls):
                if isinstance(url, str):
                    _check_http_url(f"{name}[{index}]" if isinstance(value, list) else name, url)


def _near_miss(model: str) -> str | None:
    """The catalog's name `model` is most likely a slip of, or None if it is simply new."""
    names = [spec.name for spec in all_models()]
    folded = {name.casefold(): name for name in names}
    key = "".join(model.split()).casefold()
    if key in folded:
        return folded[key]
    close = difflib.get_close_matches(model, names, n=1, cutoff=0.9)
    if not close or _versionless(close[0]) == _versionless(model):
        return None  # another version of a known family (gpt-image-3): a new model
    return close[0]


def _versionless(name: str) -> str:
    return "".join(c for c in name.casefold() if not (c.isdigit() or c == "."))


def _multi_shot_without_prompt(model: str, body: Mapping[str, object]) -> bool:
    params = body.get("model_params")
    return (
        model.startswith("kling-")
        and "prompt" not in body
        and isinstance(params, Mapping)
        and params.get("multi_shot") is True
        and bool(params.get("multi_prompt"))
    )


def _check_common(request: GenerationRequest) -> None:
    _check_type("model", request.model, str)
    if not request.model.strip():
        raise ValidationError("model", "not_empty", "must not be empty")
    if request.prompt is not None:
        # A model that takes no prompt is the catalog's to say; one given must say something.
        _check_type("prompt", request.prompt, str)
        if not request.prompt.strip():
            raise ValidationError("prompt", "not_empty", "must not be empty or only white space")
    known = isinstance(request.model, str) and model_spec(request.model) is not None
    # For a known model its schema says what `n` may be, naming the model and its page.
    if (
        not known
        and request.n is not None
        and (isinstance(request.n, bool) or not isinstance(request.n, int))
    ):
        raise ValidationError("n", "type", f"must be an integer, not {type(request.n).__name__}")
    if not known and request.n is not None and request.n < 1:
        raise ValidationError("n", "positive", f"must be at least 1, not {request.n}")
    if request.size is not None:
        _check_type("size", request.size, str)
    for index, url in enumerate(request.image_urls or ()):
        _check_http_url(f"image_urls[{index}]", url)
    if request.mask_url is not None:
        _check_http_url("mask_url", request.mask_url)


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
    # The docs: HTTPS only, no internal addresses, at most 2048 characters. The simulator
    # holds its own copy of these rules; tests/contract holds the two together.
    _check_http_url("callback_url", url)
    if len(url) > MAX_CALLBACK_URL_LENGTH:
        raise ValidationError(
            "callback_url",
            "max_length",
            f"is {len(url)} characters; at most {MAX_CALLBACK_URL_LENGTH}",
        )
    parts = urlsplit(url)  # checked above: it parses
    host = parts.hostname or ""
    try:
        parts.port  # noqa: B018 - read for its check: a port past 65535 raises
    except ValueError:
        raise ValidationError("callback_url", "http_url", "has an invalid port") from None
    if not host or any(c.isspace() for c in host):
        raise ValidationError("callback_url", "http_url", f"has no valid host: {url[:80]!r}")
    if allow_local:
        return
    if parts.scheme != "https":
        raise ValidationError("callback_url", "https", "must use https")
    if _is_internal(host):
        raise ValidationError(
            "callback_url", "public_address", f"{host} is not a public address the API can call"
        )


#: Names that only resolve inside a network: mDNS, ICANN's private-use `.internal`, home LANs.
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def _is_internal(host: str) -> bool:
    """Whether `host` (lower-case, as `urlsplit` gives it) is not a public internet host."""
    host = host.strip("[]").rstrip(".")  # "localhost." and "127.0.0.1." name the same hosts
    if not host or host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return True
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        if not _ends_in_number(host):
            return False  # a name: only the server can resolve it
        legacy = _legacy_ipv4(host)
        if legacy is None:
            return True  # numeric, yet no address: no public host either
        address = legacy
    # Not `is_private`: shared (100.64/10), reserved and multicast ranges are not global.
    return not address.is_global or address.is_multicast


def _ends_in_number(host: str) -> bool:
    # As a browser's URL parser reads it: a host whose last label is a number is an IPv4
    # address (`2130706433`, `0x7f.1` are 127.0.0.1), whatever a resolver would say.
    last = host.rsplit(".", 1)[-1]
    return last.isdigit() or (last[:2] == "0x" and all(c in "0123456789abcdef" for c in last[2:]))


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """`host` in the legacy IPv4 forms (`inet_aton`'s: 1 to 4 parts, octal, hex), or None."""
    labels = host.split(".")
    if len(labels) > 4:
        return None
    numbers = []
    for label in labels:
        base = 16 if label[:2] == "0x" else 8 if len(label) > 1 and label[0] == "0" else 10
        digits = label[2:] if base == 16 else label
        try:
            numbers.append(int(digits or "0", base))
        except ValueError:
            return None
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)
