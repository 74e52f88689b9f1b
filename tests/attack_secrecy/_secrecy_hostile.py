"""A hostile server that quotes the client's key back, and checks that it shows nowhere."""

from __future__ import annotations

import contextlib
import json
import pickle
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

# The documented shape, with a long, unique secret part.
SK_KEY = "sk-evo-Q7x9Lm2Vt4Rb8Nc1Zp6Wd3Hk5Jf0Gs"
# A key of another shape (base64-like, with `/`, `+` and `=`): hidden all the same.
ODD_KEY = "evk_live_Zm9vYmFy/Q7x9+Lm2Vt4Rb8Nc1Zp6=="
# A key of another shape made of plain characters only.
PLAIN_KEY = "EVKLIVE0Q7x9Lm2Vt4Rb8Nc1Zp6Wd3Hk5Jf0Gs"


def json_escaped(key: str) -> str:
    """The key as a JSON string's inside, every character `\\uXXXX`-escaped: the same
    string once decoded, other bytes on the wire."""
    return "".join(f"\\u{ord(c):04x}" for c in key)


def partly_escaped(key: str) -> str:
    """Only the first character escaped (what a server escaping `s` would send)."""
    return f"\\u{ord(key[0]):04x}" + key[1:]


def forms(key: str) -> list[str]:
    """The texts that give the key away once seen: itself and its URL-encoded form."""
    out = {key, quote(key, safe=""), quote(key)}
    return sorted(out)


def assert_clean(text: str, key: str, *, what: str = "") -> None:
    for form in forms(key):
        assert form not in text, f"key {form!r} shown in {what}: {text[:600]!r}"


def error_texts(exc: BaseException) -> str:
    """Everything a user may print of an error: str, repr, vars, the whole traceback
    (causes and contexts), and the same after a pickle round trip."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(getattr(current, "args", ()))]
        with contextlib.suppress(TypeError):
            parts.append(repr(vars(current)))
        current = current.__cause__ or current.__context__
    try:
        back = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
    except Exception as failed:  # noqa: BLE001 - an unpicklable error: show why
        parts.append(repr(failed))
    else:
        parts += [str(back), repr(back), "".join(traceback.format_exception(back))]
        with contextlib.suppress(TypeError):
            parts.append(repr(vars(back)))
    return "\n".join(parts)


def error_body(message_inside: str, *, code: str = "unauthorized") -> bytes:
    """An error envelope whose message (and param, and type) is `message_inside`, raw
    (already JSON-escaped as wanted)."""
    return (
        '{"error": {"code": "%s", "message": "refused key %s", "type": "x %s", '
        '"param": "p %s"}, "request_id": "r %s", "echo": "%s"}' % ((code,) + (message_inside,) * 5)
    ).encode()


def success_false_body(message_inside: str) -> bytes:
    m = message_inside
    text = f'{{"success": false, "code": 401, "msg": "refused key {m}", "data": {{"echo": "{m}"}}}}'
    return text.encode()


Handler = Callable[[httpx.Request], httpx.Response]


def refusing(status: int, body: bytes, **kw: Any) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, content=body, headers={"content-type": "application/json"}, **kw
        )

    return handler


def task_json(task_id: str, *, status: str = "completed", **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "id": task_id,
        "object": "image.generation.task",
        "created": 1_700_000_000,
        "model": "gpt-image-2",
        "status": status,
        "progress": 100 if status == "completed" else 10,
        "type": "image",
        "task_info": {"can_cancel": False, "estimated_time": 1},
        "usage": {"billing_rule": "per_call", "credits_reserved": 1, "user_group": "default"},
    }
    if status == "completed":
        task["results"] = ["https://cdn.example/r/0.png"]
    task.update(extra)
    return task


def dumps_escaped(data: Any, key: str) -> bytes:
    """`data` as JSON, with every occurrence of `key` `\\u`-escaped on the wire."""
    return json.dumps(data).replace(key, partly_escaped(key)).encode()


def _inject(data: Any, quoted: str) -> Any:
    """Every task-shaped object of `data` with the key quoted in an unknown field, in its
    error's message and in a result URL's query."""
    if isinstance(data, list):
        return [_inject(item, quoted) for item in data]
    if not isinstance(data, dict):
        return data
    data = {name: _inject(value, quoted) for name, value in data.items()}
    if "id" in data and "status" in data:
        data["echo"] = f"you sent {quoted}"
        error = data.get("error")
        if isinstance(error, dict):
            error["message"] = f"refused {quoted}"
            error["detail"] = quoted
    return data


class Quoting(httpx.AsyncBaseTransport):
    """Wraps a transport (the simulator's): each JSON answer's tasks quote the key, in the
    form `quote(key)` gives (verbatim, `\\u`-escaped, ...), and so does `X-Request-Id`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, key: str, quote: Callable[[str], str]):
        self.inner = inner
        self.key = key
        self.quote = quote

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        headers = dict(response.headers)
        headers.pop("content-length", None)
        headers.pop("content-encoding", None)
        headers["x-request-id"] = f"req {self.key}"
        if "json" in headers.get("content-type", ""):
            marker = "\x00QUOTED\x00"
            text = json.dumps(_inject(json.loads(body), marker))
            body = text.replace(json.dumps(marker)[1:-1], self.quote(self.key)).encode()
        return httpx.Response(response.status_code, headers=headers, content=body)


def verbatim(key: str) -> str:
    return key
