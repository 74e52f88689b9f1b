"""`Evolink`: the blocking face of `AsyncEvolink`, one async core behind two doors.

Every blocking call is forwarded, arguments as given, to the same method of the async client,
run on an event loop of its own in a background thread (an anyio blocking portal). Nothing
here sends a request, waits on a task or runs a batch: each method is one `_Blocking(...)`
line, and its signature and return type are the async method's (a ParamSpec), so a type
checker sees `client.images.run(...) -> Task` exactly as it sees the async one.

Because the loop is the portal's, a blocking call works from a script, from any thread, and
from inside a running event loop (a Jupyter cell): the caller's thread only waits.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from evolink._client import DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUT, AsyncEvolink
from evolink._errors import ConfigurationError
from evolink._images import Images
from evolink._tasks import Tasks

if TYPE_CHECKING:
    from evolink._http_backend import HttpBackend
    from evolink._retry import RetryPolicy
    from evolink._typed_resources import TypedImages, TypedSyncImages

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class _Door:
    """What a `_Blocking` method needs: the async object it forwards to, and the portal."""

    _owner: Evolink

    def _target(self) -> Any:
        """The async counterpart (the client, or one of its resources)."""
        raise NotImplementedError


class _Blocking(Generic[P, R]):
    """A blocking method that runs the async method it was made from on the portal."""

    def __init__(self, method: Callable[Concatenate[Any, P], Awaitable[R]]) -> None:
        self._method = method
        self.__doc__ = method.__doc__
        self.__name__ = method.__name__

    @overload
    def __get__(self, door: None, owner: type[Any]) -> _Blocking[P, R]: ...

    @overload
    def __get__(self, door: _Door, owner: type[Any]) -> Callable[P, R]: ...

    def __get__(self, door: _Door | None, owner: type[Any]) -> _Blocking[P, R] | Callable[P, R]:
        if door is None:
            return self
        method = self._method

        def blocking(*args: P.args, **kwargs: P.kwargs) -> R:
            target = door._target()  # noqa: SLF001 - the door's own forwarding hook

            async def call() -> R:
                return await method(target, *args, **kwargs)

            return door._owner._run(call)  # noqa: SLF001

        blocking.__doc__ = self.__doc__
        blocking.__name__ = self.__name__
        return blocking


class SyncImages(_Door):
    """Create image-generation tasks, blocking. Reached as `Evolink().images`.

    The methods are `AsyncEvolink().images`'s, with the same arguments and results.
    """

    generate = _Blocking(Images.generate)
    run = _Blocking(Images.run)
    create = _Blocking(Images.create)
    generate_many = _Blocking(Images.generate_many)

    def __init__(self, owner: Evolink) -> None:
        self._owner = owner

    def _target(self) -> TypedImages:
        return self._owner._async_client().images  # noqa: SLF001


class SyncTasks(_Door):
    """Read, wait for and save tasks, blocking. Reached as `Evolink().tasks`.

    The methods are `AsyncEvolink().tasks`'s, with the same arguments and results.
    """

    get = _Blocking(Tasks.get)
    wait = _Blocking(Tasks.wait)
    save = _Blocking(Tasks.save)

    def __init__(self, owner: Evolink) -> None:
        self._owner = owner

    def _target(self) -> Tasks:
        return self._owner._async_client().tasks  # noqa: SLF001


class Evolink(_Door):
    """The blocking client: `AsyncEvolink`'s resources and names, without `await`.

    It runs an `AsyncEvolink` on an event loop of its own, in a background thread started
    on the first call, and blocks the caller until each call is done. So it works in a
    script, from several threads at once (they share one connection pool), and inside a
    running event loop such as a Jupyter cell. Close it with `close()` or `with`.

    Callbacks (`generate_many`'s `on_progress`, `tasks.save`'s `on_progress`) run on the
    client's own thread: keep them short, and do not call the client from them.

    The keyword arguments are `AsyncEvolink`'s, but for `clock` and `http_client`, which
    would belong to the caller's event loop rather than the client's.

    Raises:
        ConfigurationError: on the first call, as `AsyncEvolink(...)` would (no API key,
            ...); a call after `close()`; a call from one of its own callbacks.
    """

    credits = _Blocking(AsyncEvolink.credits)

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        transport: httpx.AsyncBaseTransport | None = None,
        allow_local_callbacks: bool = False,
        retry_policy: RetryPolicy | None = None,
        http_backend: HttpBackend = "httpx",
    ) -> None:
        self._options: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
            "max_connections": max_connections,
            "transport": transport,
            "allow_local_callbacks": allow_local_callbacks,
            "retry_policy": retry_policy,
            "http_backend": http_backend,
        }
        self._owner = self
        self._lock = threading.Lock()
        self._portal_exit = contextlib.ExitStack()
        self._portal: BlockingPortal | None = None
        self._client: AsyncEvolink | None = None
        self._loop_thread: int | None = None
        self._closed = False
        self.images: TypedSyncImages = SyncImages(self)
        self.tasks = SyncTasks(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._client else "not started"
        return f"Evolink({self._client!r}, {state})" if self._client else f"Evolink({state})"

    def __enter__(self) -> Evolink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def is_closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    def close(self) -> None:
        """Close the connection pool and stop the client's thread (a second call does nothing).

        Raises:
            ConfigurationError: called from one of the client's own callbacks.
        """
        self._refuse_own_thread()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            portal, client = self._portal, self._client
        try:
            if portal is not None and client is not None:
                portal.call(client.aclose)
        finally:
            self._portal_exit.close()

    # -- the portal ---------------------------------------------------------------------

    def _target(self) -> AsyncEvolink:
        return self._async_client()

    def _async_client(self) -> AsyncEvolink:
        """The async client, made on the portal's loop by the first call."""
        with self._lock:
            if self._closed:
                raise ConfigurationError("this Evolink is closed")
            if self._client is None:
                portal = self._portal_exit.enter_context(start_blocking_portal(name="evolink"))
                try:
                    self._client = portal.call(self._open)
                except BaseException:
                    self._portal_exit.close()
                    raise
                self._portal = portal
            return self._client

    async def _open(self) -> AsyncEvolink:
        # On the portal's loop, so the client binds to it (and to nothing else).
        self._loop_thread = threading.get_ident()
        return await AsyncEvolink(**self._options).__aenter__()

    def _run(self, call: Callable[[], Awaitable[T]]) -> T:
        self._refuse_own_thread()
        portal = self._portal
        if portal is None or self._closed:
            raise ConfigurationError("this Evolink is closed")
        return portal.call(call)

    def _refuse_own_thread(self) -> None:
        if self._loop_thread is not None and threading.get_ident() == self._loop_thread:
            # Blocking the loop that would answer is a deadlock.
            raise ConfigurationError(
                "Evolink was called from one of its own callbacks (they run on its event "
                "loop's thread); return from the callback, or use AsyncEvolink there"
            )
