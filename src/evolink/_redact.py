"""Secrets out of server text: a server may quote the key it refused back at us."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

REDACTED = b"***"
# An `sk-...` key anywhere in a message (not inside a word, as in `disk-...`).
_SECRET = re.compile(rb"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{6,}")
_SECRET_TEXT = re.compile(_SECRET.pattern.decode())


def redact_body(body: bytes, key: str, *, secrets: bool) -> bytes:
    """`body` with the client's own `key` (and, with `secrets`, any `sk-` key) hidden.

    Only error answers get the `sk-` rule: a success's result URLs must pass untouched.
    """
    raw = key.encode()
    if raw and raw in body:
        body = body.replace(raw, REDACTED)
    if secrets and b"sk-" in body:
        body = _SECRET.sub(b"sk-***", body)
    return body


def redact_escaped(body: bytes, key: str, *, secrets: bool) -> bytes:
    """`body` (already through `redact_body`) with keys hidden that JSON escapes hid from
    a search of its bytes (`"\\u0073k-..."` decodes to `"sk-..."`): decoded, looked at
    again, and written back only if a string changed. A body without a backslash has
    no escapes, and is returned at once."""
    if b"\\" not in body:
        return body
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body  # not JSON: its bytes are what anyone will read, and were searched
    changed = False

    def hide(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, str):
            hidden = redact_text(value, key, secrets=secrets)
            changed = changed or hidden != value
            return hidden
        if isinstance(value, list):
            return [hide(item) for item in value]
        if isinstance(value, dict):
            return {hide(name): hide(item) for name, item in value.items()}
        return value

    try:
        data = hide(data)
    except RecursionError:
        return b'"***"'  # too deep to search: nothing of it goes further
    return json.dumps(data, ensure_ascii=False).encode() if changed else body


def redact_text(text: str, key: str = "", *, secrets: bool = True) -> str:
    """`text` with the client's own `key` and (with `secrets`) any `sk-` key hidden (for
    messages the SDK keeps, and what a server or a proxy said that it repeats)."""
    if key and key in text:
        text = text.replace(key, REDACTED.decode())
    return _SECRET_TEXT.sub("sk-***", text) if secrets and "sk-" in text else text


def redact_headers(headers: httpx.Headers, key: str) -> None:
    """Hide the key in `headers`, in place: a server may quote it in any of them (a
    request id, say), and a header's value may end up in an error."""
    for name, value in headers.multi_items():
        hidden = redact_text(value, key)
        if hidden != value:
            headers[name] = hidden


# A database URL's password: in its user part (`user:pw@`) or as a libpq parameter
# (`?password=pw`, `&sslpassword=pw`), which libpq accepts as well.
_URL_USER_PASSWORD = re.compile(r"(://[^:/@?#]*):[^@/?#]*@")
_URL_PARAM_PASSWORD = re.compile(r"(?i)([?&;\s](?:ssl)?password=)[^&;\s#]*")


def redact_url(url: str) -> str:
    """`url` with every password in it shown as `***` (for messages, reprs and logs)."""
    url = _URL_USER_PASSWORD.sub(r"\1:***@", url)
    return _URL_PARAM_PASSWORD.sub(r"\1***", url)
