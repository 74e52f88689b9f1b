"""A transport whose first GET of a task answers late: what the task was when the request
arrived, returned only once the test says so (a loaded server, a slow network), so that a
callback can overtake it."""

from __future__ import annotations

import anyio
import httpx


class HeldFirstRead(httpx.AsyncBaseTransport):
    """Wraps `inner`; `held` is set once the first GET's answer is ready and held back,
    `release` lets it go."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.release = anyio.Event()
        self.held = anyio.Event()
        self._first = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.method == "GET" and request.url.path.startswith("/v1/tasks/") and self._first:
            self._first = False
            await response.aread()
            self.held.set()
            await self.release.wait()
        return response
