"""FastAPI integration: one client per app, a callback receiver, hybrid waiting.

    evolink = EvolinkIntegration(public_url="https://my.app")
    app = FastAPI(lifespan=evolink.lifespan)
    app.include_router(evolink.callback_router)

    @app.post("/images")
    async def create(prompt: str, client: AsyncEvolink = Depends(evolink.client)):
        task = await client.images.generate(prompt, callback_url=evolink.callback_url())
        return {"task_id": task.id}

Evolink's callbacks are not signed, so a delivery is only a hint: the receiver checks the
secret token in its URL (in constant time), answers 202 at once, and confirms the task with
one read before anything waiting on it counts it. Every `wait` and batch of the app reads
through the client's one waiting engine, so that read is shared by all of them (and by
the batch read it may ride in).

With `journal="postgresql://..."`, several replicas of the app share their callbacks: the
replica that receives one tells the others (`_replicas`, LISTEN/NOTIFY), and the replica
holding the waiter confirms and wakes it.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sized
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs
from fastapi import APIRouter, FastAPI, Request, Response

from evolink._batch import Batch
from evolink._batch_options import BatchKwargs
from evolink._client import AsyncEvolink
from evolink._engine import engine_of
from evolink._errors import ConfigurationError, EvolinkError
from evolink._ids import TASK_ID_PREFIX, check_task_id
from evolink._models import GenerationRequest, Task, TaskStatus
from evolink._postgres import is_postgres_url
from evolink._replicas import ReplicaChannel, open_replica_channel

if TYPE_CHECKING:
    from typing_extensions import Unpack

logger = logging.getLogger("evolink.fastapi")

#: Callback bodies larger than this are refused (a task body is a few KB).
MAX_CALLBACK_BYTES = 256 * 1024
#: Confirmed terminal tasks remembered for late `wait` calls and duplicate deliveries.
REMEMBERED_TASKS = 10_000
#: Batches started with `start_batch` remembered for their progress and report.
REMEMBERED_BATCHES = 100
#: A callback is this late (past the predicted end) before `wait` reads the task itself.
CALLBACK_GRACE = 5.0


@attrs.define(eq=False)
class _Waiter:
    event: anyio.Event = attrs.field(factory=anyio.Event)
    task: Task | None = None
    count: int = 0  # wait() calls sharing it


class EvolinkIntegration:
    """Wires one `AsyncEvolink` and Evolink's callbacks into a FastAPI app.

    Args:
        public_url: the app's public base URL, as Evolink will reach it (https).
        secret: the token that makes callback URLs unguessable; one is generated per
            process when not given (set it when several workers share callbacks).
        path: where the callback route lives.
        client_factory: makes the app's client (default: `AsyncEvolink()`, configured from
            `EVOLINK_API_KEY` and `EVOLINK_BASE_URL`).
        callback_grace: seconds past a task's predicted end before `wait` stops trusting
            the callback to come and reads the task itself.
        journal: a PostgreSQL URL (`postgresql://...`, the `postgres` extra, asyncio) shared
            by the app's replicas: a callback received by any replica wakes the waiter on
            the replica that holds it, and without `secret` the replicas share one kept in
            the database. None (the default): callbacks stay in this process.

    Raises:
        ConfigurationError: `journal` is not a PostgreSQL URL.
    """

    def __init__(
        self,
        *,
        public_url: str,
        secret: str | None = None,
        path: str = "/evolink/callbacks",
        client_factory: Callable[[], AsyncEvolink] | None = None,
        callback_grace: float = CALLBACK_GRACE,
        journal: str | None = None,
    ) -> None:
        if journal is not None and not is_postgres_url(journal):
            raise ConfigurationError("journal= takes a PostgreSQL URL (postgresql://...)")
        self.public_url = public_url.rstrip("/")
        self._journal = journal
        # Replicas with a database and no configured secret take theirs from it at start.
        self._token: str | None = secret or (
            None if journal is not None else secrets.token_urlsafe(32)
        )
        self._replicas: ReplicaChannel | None = None
        self.path = "/" + path.strip("/")
        self._client_factory = client_factory or AsyncEvolink
        self.callback_grace = callback_grace
        self._client: AsyncEvolink | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._waiters: dict[str, _Waiter] = {}
        self._done: OrderedDict[str, Task] = OrderedDict()
        self._confirming: set[str] = set()
        self._batches: list[Batch] = []
        self._batches_by_id: OrderedDict[str, Batch] = OrderedDict()
        self.deliveries = 0
        self.rejected = 0
        self.callback_router = APIRouter()
        self.callback_router.add_api_route(
            self.path + "/{token}",
            self._receive,
            methods=["POST"],
            status_code=202,
            include_in_schema=False,
        )

    def __repr__(self) -> str:
        return f"EvolinkIntegration(public_url={self.public_url!r}, path={self.path!r})"

    # -- lifecycle --------------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:  # noqa: ARG002 - FastAPI's signature
        """The app's lifespan: opens the one client and the background work, then closes them.

        With a PostgreSQL journal it also listens for the other replicas' callbacks.
        """
        access_log = logging.getLogger("uvicorn.access")
        async with AsyncExitStack() as stack:
            if self._journal is not None:
                self._replicas = await stack.enter_async_context(
                    open_replica_channel(self._journal, on_hint=self._hint)
                )
                stack.callback(setattr, self, "_replicas", None)
                if self._token is None:
                    self._token = await self._replicas.shared_secret(self.path)
            masker = _TokenMask(self._secret())
            access_log.addFilter(masker)
            stack.callback(access_log.removeFilter, masker)
            async with self._client_factory() as client, anyio.create_task_group() as tg:
                self._client, self._tg = client, tg
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
                    self._client, self._tg = None, None

    def client(self) -> AsyncEvolink:
        """A FastAPI dependency: the app's one client (`Depends(evolink.client)`)."""
        if self._client is None:
            raise ConfigurationError("the app's lifespan has not started: FastAPI(lifespan=...)")
        return self._client

    def _secret(self) -> str:
        """The secret part of the callback URL (never in repr or logs)."""
        if self._token is None:
            raise ConfigurationError(
                "the callback secret comes from the database when the app's lifespan starts"
            )
        return self._token

    def callback_url(self) -> str:
        """The URL to pass as `callback_url` when creating tasks.

        Raises:
            ConfigurationError: the secret is shared through the database and the app's
                lifespan has not started yet.
        """
        return f"{self.public_url}{self.path}/{self._secret()}"

    def start_batch(
        self,
        requests: Iterable[str | GenerationRequest],
        **options: Unpack[BatchKwargs],
    ) -> str:
        """Run a batch in the app's background, with callbacks; return its id.

        Every task is created with this app's callback URL; callbacks are fed to the batch,
        which confirms each with a read and polls any task whose callback is late. Read it
        back with `batch(batch_id)` (its `progress()`, `progress_events()`, `report()`).

        Pass `journal=` (a path or a `JournalStore`) and `run=` to make it resumable: an app
        restarted mid-batch that starts the same batch on the same journal and run adopts
        what ended, reads the tasks already made and creates only the rest (see
        `BatchOptions.journal`).

        Raises:
            ConfigurationError: the app's lifespan has not started.
        """
        client = self.client()
        if self._tg is None:  # pragma: no cover - set together with the client
            raise ConfigurationError("the app's lifespan has not started")
        if "total" not in options and isinstance(requests, Sized):
            options["total"] = len(requests)
        options["callback_url"] = self.callback_url()
        batch = client.batch(**options)
        batch_id = secrets.token_urlsafe(9)
        self._batches_by_id[batch_id] = batch
        self._forget_finished_batches()
        self._tg.start_soon(self._run_batch, batch, requests)
        return batch_id

    def batch(self, batch_id: str) -> Batch:
        """A batch started with `start_batch`.

        Raises:
            KeyError: no such batch (or it is long finished and forgotten).
        """
        return self._batches_by_id[batch_id]

    def _forget_finished_batches(self) -> None:
        """Keep at most REMEMBERED_BATCHES: drop the oldest finished ones, never a running one."""
        excess = len(self._batches_by_id) - REMEMBERED_BATCHES
        if excess <= 0:
            return
        for batch_id in [b for b, batch in self._batches_by_id.items() if batch.finished][:excess]:
            del self._batches_by_id[batch_id]

    async def _run_batch(self, batch: Batch, requests: Iterable[str | GenerationRequest]) -> None:
        try:
            async with batch:
                self.attach(batch)
                await batch.submit_all(requests)
        except Exception:
            # A batch failing must not take the app's lifespan (and its client) down with it.
            logger.exception("a background batch stopped on an error")
        finally:
            self.detach(batch)

    def attach(self, batch: Batch) -> None:
        """Feed confirmed callbacks to a running batch (it confirms them again with a read)."""
        self._batches.append(batch)

    def detach(self, batch: Batch) -> None:
        """Stop feeding a batch."""
        if batch in self._batches:
            self._batches.remove(batch)

    # -- the receiver -----------------------------------------------------------------------

    async def _receive(self, token: str, request: Request) -> Response:
        if self._token is None or not hmac.compare_digest(token.encode(), self._token.encode()):
            self.rejected += 1
            logger.warning("callback with a wrong token refused (from %s)", _peer(request))
            return Response(status_code=404)
        body = await _read_limited(request, MAX_CALLBACK_BYTES)
        if body is None:
            self.rejected += 1
            return Response(status_code=413)
        task_id = _task_id_of(body)
        if task_id is None or self._quotes_key(task_id):
            # (An id quoting the key would go into logs and a read's address: refused.)
            self.rejected += 1
            return Response(status_code=400)
        self.deliveries += 1
        if self._replicas is not None and self._tg is not None:
            self._tg.start_soon(self._replicas.publish, task_id)  # the waiter may be elsewhere
        self._hint(task_id, json.loads(body))
        return Response(status_code=202)

    def _quotes_key(self, task_id: str) -> bool:
        key = None if self._client is None else self._client._api_key  # noqa: SLF001
        return key is not None and bool(key.reveal()) and key.reveal() in task_id

    def _hint(self, task_id: str, payload: Mapping[str, Any] | None = None) -> None:
        """A callback came for `task_id` (here or, by the replica channel, elsewhere).

        Whatever here waits for it (a `wait`, a batch) shares the engine's one confirming
        read. Otherwise, without replicas, it is confirmed in the background (a `wait` may
        come for it later); with replicas, it is read only where something waits for it.
        """
        engine = None if self._client is None else engine_of(self._client)
        if engine is not None and engine.feed(
            payload or {"id": task_id, "status": TaskStatus.PROCESSING.value}
        ):
            return  # (or a wait's first read is out: it confirms when it watches the task)
        if self._replicas is None or task_id in self._waiters:
            self._confirm_soon(task_id)
            return
        for batch in self._batches:
            batch.feed({"id": task_id, "status": TaskStatus.PROCESSING.value})

    def _confirm_soon(self, task_id: str) -> None:
        if task_id not in self._done and task_id not in self._confirming and self._tg is not None:
            self._confirming.add(task_id)
            self._tg.start_soon(self._confirm, task_id)

    async def _confirm(self, task_id: str) -> None:
        """Read the task the callback named; only what the read says counts."""
        try:
            # Through the engine: a wait that starts meanwhile takes this read as its own.
            task = await engine_of(self.client()).first_read(task_id)
        except EvolinkError as exc:
            logger.warning("could not confirm callback for %s: %s", task_id, type(exc).__name__)
            return
        finally:
            self._confirming.discard(task_id)
        for batch in self._batches:
            batch.feed(task)
        if task.is_terminal:
            self._settled(task)

    def _settled(self, task: Task) -> None:
        self._done[task.id] = task
        self._done.move_to_end(task.id)
        while len(self._done) > REMEMBERED_TASKS:
            self._done.popitem(last=False)
        waiter = self._waiters.pop(task.id, None)
        if waiter is not None:
            waiter.task = task
            waiter.event.set()

    # -- waiting ----------------------------------------------------------------------------

    async def wait(self, task_or_id: Task | str, *, timeout: float | None = None) -> Task:
        """Wait for a task to end: by its callback when it comes, by reading it when late.

        Args:
            task_or_id: a task or a task id.
            timeout: seconds to wait at most; `None` waits as long as the task runs.

        Returns:
            The terminal task (completed, failed or cancelled), as confirmed by a read.

        Raises:
            WaitTimeoutError: still unfinished after `timeout` seconds.
            ConfigurationError: the app's lifespan has not started.
        """
        client = self.client()
        clock = client.clock
        task_id = task_or_id.id if isinstance(task_or_id, Task) else check_task_id(task_or_id)
        if task_id in self._done:
            return self._done[task_id]
        start = clock.monotonic()
        if isinstance(task_or_id, Task):
            last = task_or_id
        else:  # read with the other waits by id (or known already)
            last = await engine_of(client).first_read(task_id)
        if not last.is_terminal:
            waiter = self._waiters.setdefault(task_id, _Waiter())
            waiter.count += 1
            try:
                # The callback should come by the predicted end: each read after the first
                # is put off by the grace, and a confirmed callback ends the wait at once.
                last = await engine_of(client).wait(
                    last,
                    started=start,
                    timeout=timeout,
                    since=start,  # the first read counts against the timeout
                    grace=self.callback_grace,
                    woken=waiter.event,
                )
            finally:
                waiter.count -= 1
                if waiter.count == 0 and self._waiters.get(task_id) is waiter:
                    del self._waiters[task_id]  # no one waits any more: forget it
            if waiter.task is not None:
                return waiter.task
        self._settled(last)
        return last


class _TokenMask(logging.Filter):
    """Masks the callback token in access-log lines (uvicorn logs every request path)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.replace(self._token, "***") if isinstance(arg, str) else arg
                for arg in record.args
            )
        if isinstance(record.msg, str) and self._token in record.msg:
            record.msg = record.msg.replace(self._token, "***")
        return True


async def _read_limited(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _task_id_of(body: bytes) -> str | None:
    """The task id of a callback body, parsed strictly; None if it is not a task."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(data, Mapping):
        return None
    task_id = data.get("id")
    status = data.get("status")
    if not isinstance(task_id, str) or not isinstance(status, str):
        return None
    if not task_id.startswith(TASK_ID_PREFIX) or len(task_id) > 200:
        return None
    try:
        check_task_id(task_id)
    except EvolinkError:
        return None
    return task_id


def _peer(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


__all__ = ["EvolinkIntegration"]
