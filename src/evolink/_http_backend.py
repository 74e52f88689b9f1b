"""Which HTTP transport carries the client's requests.

httpx is always the interface. Under it, the aiohttp transport (`evolink[aiohttp]`) costs
about a quarter of stock httpx's CPU per request here (benchmarks/transport.py). It is
opt-in (`http_backend="aiohttp"` or `"auto"`): httpx mocks such as respx patch httpx's own
transport only, so a silent switch would send a user's mocked tests to the network.
trio has only httpx's own.
"""

from __future__ import annotations

from typing import Literal

import httpx
import sniffio

from evolink._errors import ConfigurationError
from evolink._extras import install_hint

HttpBackend = Literal["auto", "httpx", "aiohttp"]


def default_transport(
    backend: HttpBackend, limits: httpx.Limits
) -> httpx.AsyncBaseTransport | None:
    """The transport for `backend` on the running event loop (None: httpx's own)."""
    if backend == "httpx":
        return None
    on_asyncio = sniffio.current_async_library() == "asyncio"
    if not on_asyncio:
        if backend == "aiohttp":
            raise ConfigurationError("the aiohttp transport runs on asyncio only")
        return None
    try:
        import aiohttp  # noqa: PLC0415 - an optional extra
        from httpx_aiohttp import AiohttpTransport  # noqa: PLC0415
    except ImportError:
        if backend == "aiohttp":
            raise ConfigurationError(
                f"the aiohttp transport needs {install_hint('aiohttp')}"
            ) from None
        return None

    class _SendAwareAiohttpTransport(AiohttpTransport):  # type: ignore[misc, unused-ignore]
        """httpx-aiohttp maps a connection dropped *after* the request was sent to
        `httpx.ConnectTimeout`, which reads as "nothing was sent". For a paid create that
        difference matters, so only failures to connect stay connect errors."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                response: httpx.Response = await super().handle_async_request(request)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                cause = exc.__cause__
                if isinstance(
                    cause, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
                ):
                    raise
                raise httpx.RemoteProtocolError(str(exc), request=request) from cause
            return response

    return _SendAwareAiohttpTransport(limits=limits)
