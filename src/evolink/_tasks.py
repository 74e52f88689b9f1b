"""`client.tasks`: read tasks, wait for them to finish, save their images."""

from __future__ import annotations

import builtins
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx

from evolink._downloads import (
    DEFAULT_MAX_BYTES,
    Downloader,
    SaveHook,
    image_client,
    save_all,
    unsafe_name,
)
from evolink._engine import engine_of
from evolink._errors import DownloadError, ValidationError, WaitTimeoutError
from evolink._ids import check_task_id
from evolink._models import Task, TaskStatus, TaskType
from evolink._reads import read_task
from evolink._task_listing import list_tasks

if TYPE_CHECKING:
    from evolink._client import AsyncEvolink
    from evolink._transport import Transport

#: A pending task stamped less than this long ago is taken as created now.
FRESH_AGE = 10.0
#: Seconds `save` may take by default, every file included.
DEFAULT_SAVE_TIMEOUT = 300.0


class Tasks:
    """Read and wait for tasks. Reached as `client.tasks`."""

    def __init__(self, client: AsyncEvolink, transport: Transport) -> None:
        self._client = client
        self._transport = transport

    async def get(self, task_id: str) -> Task:
        """Read a task (`GET /v1/tasks/{task_id}`).

        Args:
            task_id: the task's id (`task-unified-...`).

        Raises:
            ValidationError: `task_id` is not a task id (nothing was sent).
            NotFoundError: no such task, or it expired.
        """
        return await read_task(self._transport, task_id)

    def list(
        self,
        *,
        status: TaskStatus | str | None = None,
        type: TaskType | str | None = None,  # noqa: A002 - the API's own name
        model: str | None = None,
        page_size: int = 50,
        limit: int | None = None,
    ) -> AsyncIterator[Task]:
        """The account's tasks, newest first (`GET /v1/tasks`): `async for task in ...`.

        Pages are read as the iteration reaches them. Filters: `status`, `type`, `model`;
        `limit` stops after that many tasks.

        Raises:
            ValidationError: a filter or `page_size` (1-100) out of range, at once.
        """
        return list_tasks(
            self._transport, status=status, type=type, model=model, page_size=page_size, limit=limit
        )

    async def wait(
        self,
        task_or_id: Task | str,
        *,
        timeout: float | None = None,
        raise_on_failure: bool = False,
    ) -> Task:
        """Wait until the task is completed, failed or cancelled, and return it.

        The task is read by the client's one waiting engine, with every other wait and
        batch of the client (in shared batch reads where the server has them), when what
        the engine has learned of the model's timing says it is likely done.

        Args:
            task_or_id: a task (as `images.generate` returns it) or a task id.
            timeout: seconds to wait at most; `None` waits as long as the task runs.
            raise_on_failure: raise `TaskFailedError` instead of returning a failed or
                cancelled task.

        Raises:
            WaitTimeoutError: still unfinished after `timeout` (it carries the last read).
            TaskFailedError: with `raise_on_failure`, the task failed or was cancelled.
        """

        clock = self._client.clock
        start = clock.monotonic()
        if isinstance(task_or_id, Task):
            task = task_or_id
        else:
            # Read with every other wait by id (or known already), else alone.
            check_task_id(task_or_id)
            task = await engine_of(self._client).first_read(task_or_id)
        if not task.is_terminal:
            if timeout is not None and timeout <= 0:
                raise WaitTimeoutError(task, timeout)
            # The task's age by the server's stamp (on the server's clock, as far as its
            # answers tell it), so a wait that begins late reads at once; but a task fresh
            # from `generate` (pending, no progress, stamped seconds ago) starts now by our
            # clock: the stamp is whole seconds, and that error would stretch every
            # prediction made from progress.
            age = 0.0
            if task.created is not None:
                server_now = clock.time() + self._transport.server_clock.offset()
                age = server_now - task.created.timestamp()
            if task.status is TaskStatus.PENDING and task.progress == 0 and age < FRESH_AGE:
                age = 0.0
            started = start - min(max(age, 0.0), 86_400.0)
            engine = engine_of(self._client)
            task = await engine.wait(task, started=started, timeout=timeout, since=start)
        if raise_on_failure:
            task.raise_for_status()
        return task

    async def save(
        self,
        task: Task,
        folder: str | os.PathLike[str],
        *,
        name: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = DEFAULT_SAVE_TIMEOUT,
        on_progress: SaveHook | None = None,
    ) -> builtins.list[Path]:
        """Download a completed task's results into `folder` and return their paths.

        Files are named `<name>-1.png`, `<name>-2.png`, ...; the extension is the file's
        type as its bytes tell it (`.png`, `.jpg`, `.webp`, `.gif`; `.mp4`, `.webm`;
        `.mp3`, `.wav`, `.ogg`, `.m4a`), which must agree with the `Content-Type` the host
        sent. Each file is streamed under a size cap, retried on transient errors, and
        written under a temporary name first, so a file under its final name is always
        whole. Redirects are followed (5 at most, http(s) only, whichever client fetches).
        The API key is never sent.

        Args:
            task: a completed task, as `wait` or `images.run` returns it.
            folder: where the files go (made if missing).
            name: the file names' stem; defaults to the task id.
            http_client: the HTTP client for the result URLs (e.g. one on
                `Simulator().transport()` in tests); by default a plain one, for this call.
            max_bytes: larger files are refused.
            timeout: seconds the whole save may take, every file, try and wait included
                (300 by default): a host sending a trickle cannot hold it longer.
            on_progress: called with each `SavedImage` once it is on disk.

        Returns:
            The files, in the order of `task.results`.

        Raises:
            TaskFailedError: the task failed or was cancelled.
            ValidationError: the task is still running, `name` is not a plain file name
                (a path, a separator, a NUL, a control character, a leading dot), or
                `timeout` is not positive; nothing is fetched then.
            DownloadError: a file could not be saved (those before it stay on disk), the
                folder cannot be made, or `timeout` passed (`transient`).
        """
        task.raise_for_status()
        if not task.is_success:
            raise ValidationError("task", "completed", f"task {task.id} is still {task.status}")
        stem = task.id if name is None else name
        problem = "starts with a dot" if stem.startswith(".") else unsafe_name(stem)
        if problem is not None:
            raise ValidationError("name", "file_name", f"must be a plain file name: {problem}")
        if not timeout > 0:
            raise ValidationError("timeout", "positive", "must be more than 0 seconds")
        own_client = http_client is None
        client = image_client() if http_client is None else http_client
        downloader = Downloader(
            client=client, folder=Path(folder), max_bytes=max_bytes, deadline=timeout
        )
        try:
            with anyio.fail_after(timeout):
                return await save_all(downloader, task.results, stem, on_progress=on_progress)
        except TimeoutError:
            raise DownloadError(
                f"saving task {task.id} took more than {timeout:g} s", transient=True
            ) from None
        finally:
            if own_client:
                await client.aclose()
