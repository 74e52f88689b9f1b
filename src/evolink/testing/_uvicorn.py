"""Serving an ASGI app with uvicorn (the `server` extra), in a thread or until stopped."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from evolink._extras import install_hint

#: Seconds a server may take to start listening.
STARTUP_TIMEOUT = 10.0


def uvicorn_module() -> ModuleType:
    try:
        import uvicorn  # noqa: PLC0415 - optional: the `server` extra
    except ImportError as exc:  # pragma: no cover - uvicorn is in the test environment
        raise RuntimeError(
            f"serving the simulator needs uvicorn, in {install_hint('server')}"
        ) from exc
    return uvicorn


@contextlib.contextmanager
def serve_app_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve any ASGI app with uvicorn in a background thread; yield its base URL."""
    uvicorn = uvicorn_module()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)

    def run() -> None:
        # uvicorn exits the process on a bind failure; here only the thread ends.
        with contextlib.suppress(SystemExit):
            server.run()

    thread = threading.Thread(target=run, name="evolink-simulator", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the simulator did not start on {host}:{port}")
            time.sleep(0.01)
        bound_port = server.servers[0].sockets[0].getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        yield f"http://{shown_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)
