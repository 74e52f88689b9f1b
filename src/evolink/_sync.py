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
import functools
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    TypeVar,
    cast,
    overload,
)

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from evolink._batch import Batch
from evolink._client import DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUT, AsyncEvolink
from evolink._cost import estimate_with
from evolink._errors import ConfigurationError, EvolinkError
from evolink._files import Files
from evolink._generations import Audios, Generations, Videos, _Media
from evolink._images import Images
from evolink._model_catalog import ModelCatalog
from evolink._models import MediaKind, Task, TaskStatus, TaskType
from evolink._outcomes import BatchReport
from evolink._progress import BatchProgress
from evolink._secret import Secret
from evolink._tasks import Tasks

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from evolink._batch_options import BatchKwargs
    from evolink._http_backend import HttpBackend
    from evolink._retry import RetryPolicy
    from evolink._typed_resources import (
        TypedSyncAudios,
        TypedSyncImages,
        TypedSyncVideos,
    )

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
    """A blocking method that runs the async method it was made from on the portal.

    What it hands out looks like the async method to `help()`, `inspect.signature` and
    notebooks: its name, docstring and signature (less `self`), and `__wrapped__`.
    """

    def __init__(
        self,
        method: Callable[Concatenate[Any, P], Awaitable[R]],
        *,
        returns: type[Any] | None = None,
    ) -> None:
        """Wrap `method`; `returns` names the result where `method` returns an awaitable
        (`generate_many`'s `BatchRun`) rather than being `async def` itself."""
        self._method = method
        self.__doc__ = method.__doc__
        self.__name__ = method.__name__
        signature = inspect.signature(method)
        parameters = list(signature.parameters.values())[1:]  # `self` is the door's
        self.__signature__ = signature.replace(
            parameters=parameters,
            return_annotation=signature.return_annotation if returns is None else returns,
        )

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

        functools.update_wrapper(blocking, method, updated=())
        blocking.__qualname__ = f"{owner.__qualname__}.{self.__name__}"
        # Set last: `update_wrapper` copied none, and `inspect` reads this before
        # following `__wrapped__` (whose first parameter is the resource's `self`).
        blocking.__signature__ = self.__signature__  # type: ignore[attr-defined]
        return blocking


class SyncBatch(_Door):
    """A batch, blocking: `with client.images.batch(max_in_flight=8) as batch:`.

    `submit`, `submit_all` and `adopt` are the async batch's, blocking; `report()`,
    `progress()` and `created()` read it; `feed` hands it a callback body. The batch runs
    on the client's own loop, in one task from `with` to its end, as `async with` would.
    """

    submit = _Blocking(Batch.submit)
    submit_all = _Blocking(Batch.submit_all)
    adopt = _Blocking(Batch.adopt)

    def __init__(self, owner: Evolink, make: Callable[[], Batch]) -> None:
        self._owner = owner
        self._make = make
        self._batch: Batch | None = None
        self._scope: contextlib.AbstractContextManager[Batch] | None = None

    def _target(self) -> Batch:
        if self._batch is None:
            raise EvolinkError("use the batch as `with client.images.batch(...) as batch:`")
        return self._batch

    def __enter__(self) -> SyncBatch:
        self._owner._async_client()  # noqa: SLF001 - starts the portal on first use
        portal = self._owner._portal  # noqa: SLF001
        assert portal is not None  # noqa: S101 - started just above
        batch = portal.call(self._make)
        # The batch's task group is entered and left by one task on the portal's loop.
        self._scope = portal.wrap_async_context_manager(batch)
        self._scope.__enter__()
        self._batch = batch
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._scope is not None  # noqa: S101 - entered before exited
        return self._scope.__exit__(exc_type, exc, tb)

    def report(self) -> BatchReport:
        """Every outcome in input order (after the `with`); see `Batch.report`."""
        return self._target().report()

    def progress(self) -> BatchProgress:
        """A snapshot of the batch now."""
        return self._target().progress()

    def created(self) -> list[Task]:
        """Every task created or adopted so far."""
        return self._target().created()

    def feed(self, payload: Mapping[str, Any] | Task) -> bool:
        """Take a callback body; True if it is this batch's (see `Batch.feed`)."""
        batch = self._target()
        return self._owner._run_sync(lambda: batch.feed(payload))  # noqa: SLF001


class _SyncGenerations(_Door):
    """What every blocking media door has: `create`, `generate_many`, `batch`, its kind."""

    kind: MediaKind = "image"
    create = _Blocking(Generations.create)
    generate_many = _Blocking(Generations.generate_many, returns=BatchReport)

    def __init__(self, owner: Evolink) -> None:
        self._owner = owner

    def _target(self) -> Any:
        """The async resource of this kind (`images`, `videos` or `audios`)."""
        return getattr(self._owner._async_client(), f"{self.kind}s")  # noqa: SLF001

    def batch(self, **options: Unpack[BatchKwargs]) -> SyncBatch:
        """A blocking batch of this kind; the options are `evolink.BatchOptions`'s."""
        return SyncBatch(self._owner, lambda: self._target().batch(**options))


class SyncImages(_SyncGenerations):
    """Create image-generation tasks, blocking. Reached as `Evolink().images`.

    The methods are `AsyncEvolink().images`'s, with the same arguments and results.
    """

    kind = Images.kind
    generate = _Blocking(Images.generate)
    run = _Blocking(Images.run)


class _SyncMedia(_SyncGenerations):
    """Videos and audio: `generate` and `run` take a model and its own parameters."""

    generate = _Blocking(_Media.generate)
    run = _Blocking(_Media.run)


class SyncVideos(_SyncMedia):
    """Create video-generation tasks, blocking. Reached as `Evolink().videos`.

    The methods are `AsyncEvolink().videos`'s, with the same arguments and results.
    """

    kind = Videos.kind


class SyncAudios(_SyncMedia):
    """Create audio-generation tasks, blocking. Reached as `Evolink().audios`.

    The methods are `AsyncEvolink().audios`'s, with the same arguments and results.
    """

    kind = Audios.kind


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

    def list(
        self,
        *,
        status: TaskStatus | str | None = None,
        type: TaskType | str | None = None,  # noqa: A002 - the API's own name
        model: str | None = None,
        page_size: int = 50,
        limit: int | None = None,
    ) -> Iterator[Task]:
        """The account's tasks, newest first, a page read as iteration reaches it.

        Raises:
            ValidationError: a filter or `page_size` (1-100) out of range, at once.
        """
        pages = self._target().list(
            status=status, type=type, model=model, page_size=page_size, limit=limit
        )
        return _blocking_pages(self._owner, pages)


class SyncFiles(_Door):
    """Evolink's files API, blocking. Reached as `Evolink().files`.

    The methods are `AsyncEvolink().files`'s, with the same arguments and results.
    """

    upload = _Blocking(Files.upload)
    list = _Blocking(Files.list)
    quota = _Blocking(Files.quota)
    delete = _Blocking(Files.delete)

    def __init__(self, owner: Evolink) -> None:
        self._owner = owner

    def _target(self) -> Files:
        return self._owner._async_client().files  # noqa: SLF001


class SyncModels(_Door):
    """The platform's model catalog, blocking. Reached as `Evolink().models`."""

    list = _Blocking(ModelCatalog.list)
    get = _Blocking(ModelCatalog.get)
    check = _Blocking(ModelCatalog.check)

    def __init__(self, owner: Evolink) -> None:
        self._owner = owner

    def _target(self) -> ModelCatalog:
        return self._owner._async_client().models  # noqa: SLF001


def _blocking_pages(owner: Evolink, pages: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator of the client's loop from the caller's thread."""
    end = object()

    async def next_or_end() -> object:
        try:
            return await pages.__anext__()
        except StopAsyncIteration:
            return end

    try:
        while (item := owner._run(next_or_end)) is not end:  # noqa: SLF001
            yield cast("T", item)
    finally:
        close = getattr(pages, "aclose", None)
        if close is not None and not owner.is_closed:
            owner._run(close)  # noqa: SLF001 - a listing left early stops reading pages


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
    estimate = _Blocking(estimate_with)

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
        max_poll_interval: float | None = None,
    ) -> None:
        self._options: dict[str, Any] = {
            # Held masked: a dump of the client's attributes (an error tracker's) shows it
            # as its `Secret`'s '***'; revealed only into the async client it builds.
            "api_key": None if api_key is None else Secret(api_key),
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
            "max_connections": max_connections,
            "transport": transport,
            "allow_local_callbacks": allow_local_callbacks,
            "retry_policy": retry_policy,
            "http_backend": http_backend,
            "max_poll_interval": max_poll_interval,
        }
        self._owner = self
        self._lock = threading.Lock()
        self._portal_exit = contextlib.ExitStack()
        self._portal: BlockingPortal | None = None
        self._client: AsyncEvolink | None = None
        self._loop_thread: int | None = None
        self._closed = False
        self.images: TypedSyncImages = SyncImages(self)
        self.videos: TypedSyncVideos = SyncVideos(self)
        self.audios: TypedSyncAudios = SyncAudios(self)
        self.tasks = SyncTasks(self)
        self.files = SyncFiles(self)
        self.models = SyncModels(self)

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
        secret: Secret | None = self._options["api_key"]
        # Revealed inline: no local of this frame holds the key as a plain string.
        return await AsyncEvolink(
            **{**self._options, "api_key": None if secret is None else secret.reveal()}
        ).__aenter__()

    def _run_sync(self, call: Callable[[], T]) -> T:
        """Run a plain function on the client's loop (where the batch's state lives)."""
        self._refuse_own_thread()
        portal = self._portal
        if portal is None or self._closed:
            raise ConfigurationError("this Evolink is closed")
        return portal.call(call)

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
