"""`client.tasks`: read tasks, wait for them to finish, save their images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from evolink._converter import parse_task
from evolink._downloads import DEFAULT_MAX_BYTES, Downloader, SaveHook, image_client, save_all
from evolink._errors import ValidationError, WaitTimeoutError
from evolink._estimate import ReadPlan
from evolink._ids import check_task_id
from evolink._models import Task, TaskStatus

if TYPE_CHECKING:
    from evolink._client import AsyncEvolink

#: A pending task stamped less than this long ago is taken as created now.
FRESH_AGE = 10.0


class Tasks:
    """Read and wait for tasks. Reached as `client.tasks`."""

    def __init__(self, client: AsyncEvolink) -> None:
        self._client = client

    async def get(self, task_id: str) -> Task:
        """Read a task (`GET /v1/tasks/{task_id}`).

        Args:
            task_id: the task's id (`task-unified-...`).

        Raises:
            ValidationError: `task_id` is not a task id (nothing was sent).
            NotFoundError: no such task, or it expired.
        """
        check_task_id(task_id)
        answer = await self._client._request("GET", f"/v1/tasks/{task_id}")  # noqa: SLF001
        return parse_task(answer.data)

    async def wait(
        self,
        task_or_id: Task | str,
        *,
        timeout: float | None = None,
        raise_on_failure: bool = False,
    ) -> Task:
        """Wait until the task is completed, failed or cancelled, and return it.

        Reads are timed from the server's `estimated_time` and the progress seen so far:
        usually one read part-way and one just after the task ends.

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
            task = await self.get(task_or_id)
        # The task's age by the server's stamp, so a wait that begins late reads at once;
        # but a task fresh from `generate` (pending, no progress, stamped seconds ago)
        # starts now by our clock: the stamp is whole seconds on the server's clock, and
        # that error would stretch every prediction made from progress.
        age = 0.0 if task.created is None else clock.time() - task.created.timestamp()
        if task.status is TaskStatus.PENDING and task.progress == 0 and age < FRESH_AGE:
            age = 0.0
        plan = ReadPlan(started=start - min(max(age, 0.0), 86_400.0))
        plan.observe(task, start)
        deadline = None if timeout is None else start + timeout
        while not task.is_terminal:
            now = clock.monotonic()
            wake = plan.next_read_at(now, task.status)
            if deadline is not None:
                if now >= deadline:
                    raise WaitTimeoutError(task, timeout or 0.0)
                wake = min(wake, deadline)
            await clock.sleep(wake - now)
            if deadline is not None and clock.monotonic() >= deadline:
                # One last look before giving up: the task may have just finished.
                task = await self.get(task.id)
                if not task.is_terminal:
                    raise WaitTimeoutError(task, timeout or 0.0)
                break
            task = await self.get(task.id)
            plan.observe(task, clock.monotonic())
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
        on_progress: SaveHook | None = None,
    ) -> list[Path]:
        """Download a completed task's images into `folder` and return their paths.

        Files are named `<name>-1.png`, `<name>-2.png`, ... (the extension follows the
        image's type). Each image is streamed under a size cap, checked to be an image,
        retried on transient errors within a deadline, and written under a temporary name
        first, so a file under its final name is always whole. The API key is never sent.

        Args:
            task: a completed task, as `wait` or `images.run` returns it.
            folder: where the images go (made if missing).
            name: the file names' stem; defaults to the task id.
            http_client: the HTTP client for the image URLs (e.g. one on
                `Simulator().transport()` in tests); by default a plain one, for this call.
            max_bytes: larger images are refused.
            on_progress: called with each `SavedImage` once it is on disk.

        Returns:
            The files, in the order of `task.results`.

        Raises:
            TaskFailedError: the task failed or was cancelled.
            ValidationError: the task is still running, or `name` is not a plain file name.
            DownloadError: an image could not be saved (those before it stay on disk).
        """
        task.raise_for_status()
        if not task.is_success:
            raise ValidationError("task", "completed", f"task {task.id} is still {task.status}")
        stem = task.id if name is None else name
        if not stem or stem.startswith(".") or Path(stem).name != stem or "\\" in stem:
            raise ValidationError("name", "file_name", "must be a plain file name")
        own_client = http_client is None
        client = image_client() if http_client is None else http_client
        try:
            downloader = Downloader(client=client, folder=Path(folder), max_bytes=max_bytes)
            return await save_all(downloader, task.results, stem, on_progress=on_progress)
        finally:
            if own_client:
                await client.aclose()
