"""Reading one task: the one `GET /v1/tasks/{id}` every caller shares.

The id is checked before it becomes a path, and an answer about another task is a garbled
answer (retried as a read), wherever the read comes from: `client.tasks.get`, a batch
adopting a task, a resumed run re-reading one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evolink._converter import task_parser
from evolink._ids import task_path
from evolink._models import Task
from evolink._retry import RequestKind

if TYPE_CHECKING:
    from evolink._transport import Transport


async def read_task(transport: Transport, task_id: str, **sending: Any) -> Task:
    """Read `task_id` (`sending` goes on to `Transport.send`: counts, a pacer, retries)."""
    return await transport.send(
        RequestKind.READ, "GET", task_path(task_id), parse=task_parser(task_id), **sending
    )
