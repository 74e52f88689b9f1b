"""`generate_many`'s handle: await it for the report, or read it after a cancellation.

A batch cut short (a timeout around the await, Ctrl-C, a cancelled scope) abandons its
running tasks; they go on, and are paid for, on the server. Keeping the handle keeps them
reachable: `report()` lists every input's outcome, abandoned ones with their task.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Generator, Iterable, Sized
from typing import TYPE_CHECKING, Any

from evolink._errors import EvolinkError
from evolink._models import GenerationRequest, Task
from evolink._outcomes import BatchReport

if TYPE_CHECKING:
    from evolink._batch import Batch
    from evolink._batch_options import BatchKwargs
    from evolink._client import AsyncEvolink

Requests = Iterable[str | GenerationRequest] | AsyncIterable[str | GenerationRequest]


class BatchRun:
    """A batch of `generate_many`, run when awaited (once).

    ```python
    run = client.images.generate_many(prompts, max_credits=500)
    try:
        report = await asyncio.wait_for(run, 600)
    except TimeoutError:
        report = run.report()  # abandoned outcomes carry their task, still running
    ```
    """

    def __init__(self, client: AsyncEvolink, requests: Requests, options: BatchKwargs) -> None:
        if "total" not in options and isinstance(requests, Sized):
            options["total"] = len(requests)
        self._client = client
        self._requests = requests
        self._options = options
        self._batch: Batch | None = None

    def __await__(self) -> Generator[Any, None, BatchReport]:
        return self._run().__await__()

    async def _run(self) -> BatchReport:
        if self._batch is not None:
            raise EvolinkError("this generate_many was already awaited: call it again")
        # Made here, so an invalid option raises where the call is awaited.
        self._batch = batch = self._client.batch(**self._options)
        async with batch:
            await batch.submit_all(self._requests)
        return batch.report()

    @property
    def batch(self) -> Batch | None:
        """The batch, once awaited (its `progress()`, `ledger`, `feed`)."""
        return self._batch

    def report(self) -> BatchReport:
        """Every outcome so far: the report, also after the await was cut short.

        Raises:
            EvolinkError: not awaited yet, or still running.
        """
        if self._batch is None:
            raise EvolinkError("generate_many has not started: await it first")
        return self._batch.report()

    def created(self) -> list[Task]:
        """Every task this run created (or adopted) so far, ended or not."""
        if self._batch is None:
            return []
        return self._batch.created()
