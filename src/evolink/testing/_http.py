"""Plain ASGI plumbing: the request the simulator reads and the reply it sends."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, unquote

import attrs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: Where the in-process transport puts the client's read timeout (seconds or None).
READ_TIMEOUT_EXTENSION = "evolink.read_timeout"


@attrs.frozen
class Request:
    """What a handler needs of an HTTP request."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    origin: str

    @classmethod
    def from_scope(cls, scope: Scope, body: bytes) -> Request:
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        host = headers.get("host")
        if not host:
            server = scope.get("server") or ("localhost", None)
            host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
        return cls(
            method=scope["method"].upper(),
            path=unquote(scope["path"]),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            origin=f"{scope.get('scheme', 'http')}://{host}",
        )

    def json(self) -> Any:
        """The parsed body, or None if empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def params(self) -> dict[str, str]:
        """Query parameters (the last value of each)."""
        return {name: values[-1] for name, values in parse_qs(self.query).items()}

    def bearer(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None


@attrs.frozen
class Reply:
    """What to send back, and how (late, or cut off)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    drop: bool = False

    def with_headers(self, *headers: tuple[str, str]) -> Reply:
        return attrs.evolve(self, headers=self.headers + headers)


def json_reply(status: int, data: Any, *headers: tuple[str, str]) -> Reply:
    return Reply(status, json.dumps(data, separators=(",", ":")).encode(), headers=headers)


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
