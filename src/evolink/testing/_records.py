"""The record of every request the simulator answered, with the key redacted."""

from __future__ import annotations

from typing import Any

import attrs


def redact_key(key: str) -> str:
    """`sk-evo-…abcd`: enough to tell keys apart, never the key."""
    tail = key[-4:] if len(key) >= 12 else ""
    head = "sk-evo-" if key.startswith("sk-evo-") else ""
    return f"{head}…{tail}"


@attrs.frozen
class RecordedRequest:
    """One request, as the simulator saw and answered it.

    Attributes:
        method: `GET`, `POST`, ...
        path: the URL path, without the query.
        query: the raw query string (`""` if none).
        time: simulator clock time when it arrived.
        key: the bearer key, redacted (`sk-evo-…abcd`), or None if none was sent.
        body: the parsed JSON body, or None (no body, or not JSON).
        status: the status answered (for a dropped or timed-out answer, the status it
            would have had).
        request_id: the `X-Request-Id` sent back.
        idempotency_key: the `Idempotency-Key` header, if any.
        fault: the injected fault, if any (`"rate_limit"`, `"server_error"`,
            `"lost_response"`, `"slow"`, `"malformed_json"`).
        replayed: whether an idempotent replay answered it.
    """

    method: str
    path: str
    query: str
    time: float
    key: str | None
    body: Any
    status: int
    request_id: str
    idempotency_key: str | None = None
    fault: str | None = None
    replayed: bool = False
