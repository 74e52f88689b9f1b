"""An httpx transport that calls an ASGI app in-process, with a network's failure modes.

Unlike `httpx.ASGITransport`, it honours the request's read timeout (the app is told it,
and a reply slower than that raises `httpx.ReadTimeout`) and turns a reply cut off
mid-body into `httpx.RemoteProtocolError`, as a dropped connection would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import httpx

from evolink.testing._http import READ_TIMEOUT_EXTENSION, Message, Receive, Scope, Send

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@attrs.define
class SimulatorTransport(httpx.AsyncBaseTransport):
    """Send httpx requests straight to an ASGI app, no sockets."""

    _app: ASGIApp

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        timeout = request.extensions.get("timeout", {}).get("read")
        url = request.url
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "server": (url.host, url.port),
            "client": ("127.0.0.1", 0),
            "extensions": {READ_TIMEOUT_EXTENSION: timeout},
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        status: int | None = None
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        complete = False

        async def send(message: Message) -> None:
            nonlocal status, headers, complete
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)

        await self._app(scope, receive, send)
        if status is None:
            raise httpx.ReadTimeout("the simulator did not answer in time", request=request)
        if not complete:
            raise httpx.RemoteProtocolError(
                "the simulator closed the connection mid-response", request=request
            )
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        return httpx.Response(
            status,
            headers=headers,
            content=b"".join(chunks),
            request=request,
            extensions=extensions,
        )
