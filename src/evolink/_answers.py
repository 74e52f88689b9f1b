"""What an HTTP answer means: a decoded success, or the typed error it carries.

Pure functions over one answer (status, headers, body bytes); the transport calls them and
decides what to do next. Both Evolink envelopes are read: `{error: {code, message}}` and
the files API's `{success, code, msg, data}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from evolink._errors import (
    APIError,
    RateLimitError,
    ResponseDecodeError,
    error_class_for,
)
from evolink._redact import redact_body, redact_text
from evolink._retry import Outcome, classify_status, parse_retry_after

#: The largest answer the SDK reads: a real one (a task, a page of 50) is a few KB to a few
#: hundred KB. A larger one is refused unread, so a hostile server cannot exhaust memory.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


@attrs.frozen
class Answer:
    """A successful HTTP answer, decoded."""

    status_code: int
    headers: httpx.Headers
    data: Any


class TooLargeError(Exception):
    """An answer over the size limit, refused unread."""

    def __init__(self, limit: int, status_code: int, headers: httpx.Headers) -> None:
        super().__init__(f"answer over {limit} bytes")
        self.limit = limit
        self.status_code = status_code
        self.headers = headers


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLargeError(limit, response.status_code, response.headers)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():  # decoded: a compressed bomb counts in full
        size += len(chunk)
        if size > limit:
            raise TooLargeError(limit, response.status_code, response.headers)
        chunks.append(chunk)
    return b"".join(chunks)


def request_id_of(headers: httpx.Headers) -> str | None:
    request_id: str | None = headers.get("X-Request-Id") or headers.get("X-Oneapi-Request-Id")
    # A request id is the server's text: it may quote a key back.
    return None if request_id is None else redact_text(request_id)


def decode_success(response: httpx.Response, body: bytes, *, now: float) -> Answer:
    """The decoded answer of a 2xx; raise the typed `APIError` if its body says `success: false`.

    The files API and `/v1/credits` answer `{success, code, msg, data}`, and report some
    failures with HTTP 200. A task never carries `success`; a body shaped like one (an
    `id` and a `status`) is a task whatever else it holds.
    """
    if response.status_code == 304:  # a conditional GET's "unchanged": no body to decode
        return Answer(status_code=304, headers=response.headers, data=None)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: JSON nested absurdly deep
        raise ResponseDecodeError(
            "response body is not valid JSON",
            status_code=response.status_code,
            request_id=request_id_of(response.headers),
            body=body[:2000].decode("utf-8", "replace"),
        ) from None
    if isinstance(data, dict) and data.get("success") is False and not _is_task_shaped(data):
        # An error answer: any `sk-` key in it is hidden, as in a 4xx.
        raise _refusal(response, json.loads(redact_body(body, "", secrets=True)), now=now)
    return Answer(status_code=response.status_code, headers=response.headers, data=data)


def success_error_outcome(
    error: APIError, status: int, *, is_create: bool
) -> tuple[Outcome, float | None]:
    """How to go on after `decode_success` raised `error`: its outcome and Retry-After."""
    if isinstance(error, ResponseDecodeError):
        # A garbled success: a read can simply be repeated, but a create's task exists
        # and only its key can find it again.
        return Outcome.RETRY_UNCERTAIN if is_create else Outcome.RETRY_SAFE, None
    # `success: false`: a refusal, retried as the HTTP status its code names.
    named = _http_status(error.code) or status
    retry_after = error.retry_after if isinstance(error, RateLimitError) else None
    return classify_status(named, is_create=is_create), retry_after


def _is_task_shaped(data: Mapping[str, Any]) -> bool:
    return "id" in data and "status" in data


def _http_status(code: object) -> int | None:
    """The HTTP status a `success: false` body's `code` names (402, "429"), else None."""
    if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) == 3:
        code = int(code)
    if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
        return code
    return None


def _refusal(response: httpx.Response, data: dict[str, Any], *, now: float) -> APIError:
    """The typed error for a 2xx whose body is `{success: false, code, msg}`."""
    nested = data.get("error")
    error: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
    code = data.get("code", error.get("code"))
    if not isinstance(code, (str, int)) or isinstance(code, bool):
        code = None
    texts = (data.get("msg"), data.get("message"), error.get("message"))
    message = next((t for t in texts if isinstance(t, str) and t), None)
    request_id = request_id_of(response.headers) or (
        data["request_id"] if isinstance(data.get("request_id"), str) else None
    )
    if code is None and message is None:
        # Nothing says what failed: an answer off the documented shape.
        return ResponseDecodeError(
            "success: false without a code or a message",
            status_code=response.status_code,
            request_id=request_id,
            body=data,
        )
    fields: dict[str, Any] = {
        "status_code": response.status_code,
        "code": code,
        "type": error.get("type") if isinstance(error.get("type"), str) else None,
        "param": error.get("param") if isinstance(error.get("param"), str) else None,
        "request_id": request_id,
        "body": data,
    }
    named = _http_status(code)
    cls = error_class_for(named) if named is not None else APIError
    text = message or "success: false"
    if cls is RateLimitError:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        return RateLimitError(text, retry_after=retry_after, **fields)
    return cls(text, **fields)


def api_error(response: httpx.Response, raw: bytes, retry_after: float | None) -> APIError:
    """Build the typed error for an error answer (both the current and the pre-2026 envelope)."""
    body: Any
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = raw[:2000].decode("utf-8", "replace")
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        error = {}
    code = error.get("code")
    if not isinstance(code, (str, int)) or isinstance(code, bool):
        code = None
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = redact_text(response.reason_phrase) or "error"
    fields: dict[str, Any] = {
        "status_code": response.status_code,
        "code": code,
        "type": error.get("type") if isinstance(error.get("type"), str) else None,
        "param": error.get("param") if isinstance(error.get("param"), str) else None,
        "request_id": request_id_of(response.headers),
        "body": body,
    }
    cls = error_class_for(response.status_code)
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **fields)
    return cls(message, **fields)
