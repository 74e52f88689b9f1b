"""Serving a `Simulator` over HTTP with uvicorn (an optional dependency)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evolink.testing._simulator import Simulator

STARTUP_TIMEOUT = 10.0


def _uvicorn() -> ModuleType:
    try:
        import uvicorn  # noqa: PLC0415 - optional: the `server` extra
    except ImportError as exc:  # pragma: no cover - uvicorn is in the test environment
        raise RuntimeError(
            "serving the simulator needs uvicorn: pip install 'evolink[server]'"
        ) from exc
    return uvicorn


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    simulator: Simulator | None = None,
    log_level: str = "info",
    **knobs: Any,
) -> None:
    """Serve a simulator until interrupted (blocking).

    Args:
        host: address to listen on.
        port: port to listen on.
        simulator: the simulator to serve; by default a new one made with `knobs`.
        log_level: uvicorn's log level.
        **knobs: `Simulator` keyword arguments, when `simulator` is None.
    """
    uvicorn = _uvicorn()
    if simulator is None:
        from evolink.testing._simulator import Simulator  # noqa: PLC0415 - import cycle

        simulator = Simulator(**knobs)
    uvicorn.run(simulator.app, host=host, port=port, log_level=log_level, lifespan="on")


@contextlib.contextmanager
def serve_in_thread(
    simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Serve `simulator` in a background thread; yield its base URL; stop on exit."""
    with serve_app_in_thread(simulator.app, host=host, port=port) as base_url:
        yield base_url


@contextlib.contextmanager
def serve_app_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve any ASGI app with uvicorn in a background thread; yield its base URL."""
    uvicorn = _uvicorn()
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
