"""The HTTP transport under httpx: aiohttp's on asyncio when installed, httpx's otherwise."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import traceback

import httpx
import pytest
import sniffio

from evolink import APIConnectionError, AsyncEvolink, ConfigurationError, SubmissionUncertainError
from evolink._http_backend import default_transport

pytestmark = pytest.mark.anyio

LIMITS = httpx.Limits(max_connections=4)


async def test_httpx_backend_uses_httpx_own_transport():
    """`http_backend="httpx"` keeps httpx's own transport."""
    assert default_transport("httpx", LIMITS) is None


async def test_auto_picks_aiohttp_on_asyncio_when_installed(anyio_backend, monkeypatch):
    """`auto` takes aiohttp's transport on asyncio if the extra is installed, else httpx's."""
    pytest.importorskip("httpx_aiohttp")
    chosen = default_transport("auto", LIMITS)
    if sniffio.current_async_library() == "asyncio":
        from httpx_aiohttp import AiohttpTransport  # noqa: PLC0415 - optional

        assert isinstance(chosen, AiohttpTransport)
        await chosen.aclose()
    else:
        assert chosen is None
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)  # not installed
    assert default_transport("auto", LIMITS) is None


async def test_asking_for_aiohttp_where_it_cannot_run_is_an_error(anyio_backend, monkeypatch):
    """`aiohttp` on trio, or without the extra, is a clear configuration error."""
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)
    expected = "asyncio only" if anyio_backend == "trio" else r"pip install '\.\[aiohttp\]'"
    with pytest.raises(ConfigurationError, match=expected):
        default_transport("aiohttp", LIMITS)


@pytest.fixture
def dropping_server():
    """A loopback server that reads each request, then closes without answering."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize(
    "backend", [pytest.param("httpx", id="httpx"), pytest.param("auto", id="auto")]
)
async def test_a_dropped_create_is_uncertain_on_every_backend(dropping_server, backend):
    """A connection closed after the create was sent is uncertain, whatever the transport."""
    async with AsyncEvolink(
        api_key="sk-evo-test", base_url=dropping_server, max_retries=1, http_backend=backend
    ) as client:
        with pytest.raises(SubmissionUncertainError):
            await client.images.generate("a fox")


@pytest.mark.parametrize(
    "backend", [pytest.param("httpx", id="httpx"), pytest.param("auto", id="auto")]
)
async def test_a_refused_connection_is_certain_on_every_backend(backend):
    """Nothing listening: the create certainly made nothing, so it is a connection error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with AsyncEvolink(
        api_key="sk-evo-test",
        base_url=f"http://127.0.0.1:{port}",
        max_retries=1,
        http_backend=backend,
    ) as client:
        with pytest.raises(APIConnectionError):
            await client.images.generate("a fox")


class _Exploding(httpx.AsyncBaseTransport):
    """A transport failing with its own exception type, its message full of secrets."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError(f"boom {request.headers['Authorization']}")


async def test_an_unmapped_transport_error_is_typed_and_keyless():
    """A transport's own exception becomes an Evolink error (uncertain for a create), keyless."""
    async with AsyncEvolink(
        api_key="sk-evo-SECRET-unmapped", base_url="https://a.test", transport=_Exploding()
    ) as client:
        with pytest.raises(SubmissionUncertainError) as created:
            await client.images.generate("a fox")
        with pytest.raises(APIConnectionError) as read:
            await client.tasks.get("task-unified-1-abc")
    for error in (created.value, read.value):
        text = "".join(traceback.format_exception(error))
        assert "RuntimeError" in text
        assert "sk-evo-SECRET-unmapped" not in text
