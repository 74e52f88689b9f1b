"""`client.tasks.list(...)`: the account's tasks, page after page (`GET /v1/tasks`).

The listing is how a task that was created but never recorded (a crash between the send
and the journal's write) is found again. Pages are read lazily, one at a time; an entry
that is not a readable task is skipped (the rest of the page is still good).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from evolink import _lenient as read
from evolink._converter import parse_task
from evolink._errors import ResponseDecodeError, ValidationError
from evolink._models import Task, TaskStatus, TaskType
from evolink._retry import RequestKind

if TYPE_CHECKING:
    from evolink._transport import RequestCount, Transport

logger = logging.getLogger("evolink")

MAX_LIST_PAGE_SIZE = 100


def list_tasks(
    transport: Transport,
    *,
    status: TaskStatus | str | None = None,
    type: TaskType | str | None = None,  # noqa: A002 - the API's own name
    model: str | None = None,
    page_size: int = 50,
    limit: int | None = None,
    counts: Sequence[RequestCount] = (),
) -> AsyncIterator[Task]:
    """The account's tasks, newest first, read one page at a time as they are iterated.

    `counts` count each page's request (a batch's `BatchReport.requests`).

    Raises:
        ValidationError: a filter or `page_size` out of range (checked at once, before
            the first page is read).
    """
    query = _query(status=status, type=type, model=model, page_size=page_size, limit=limit)
    return _pages(transport, query, page_size=page_size, limit=limit, counts=counts)


def _query(
    *,
    status: TaskStatus | str | None,
    type: TaskType | str | None,  # noqa: A002
    model: str | None,
    page_size: int,
    limit: int | None,
) -> dict[str, str]:
    if not 1 <= page_size <= MAX_LIST_PAGE_SIZE:
        raise ValidationError("page_size", "range", f"must be 1-{MAX_LIST_PAGE_SIZE}")
    if limit is not None and limit < 1:
        raise ValidationError("limit", "range", "must be at least 1 (or None for all)")
    query: dict[str, str] = {}
    if status is not None:
        value = status.value if isinstance(status, TaskStatus) else status
        if value not in {s.value for s in TaskStatus}:
            allowed = ", ".join(s.value for s in TaskStatus)
            raise ValidationError("status", "one_of", f"{value!r} is not one of {allowed}")
        query["status"] = value
    if type is not None:
        value = type.value if isinstance(type, TaskType) else type
        if value not in {t.value for t in TaskType}:
            allowed = ", ".join(t.value for t in TaskType)
            raise ValidationError("type", "one_of", f"{value!r} is not one of {allowed}")
        query["type"] = value
    if model is not None:
        if not model or not model.isprintable():
            raise ValidationError("model", "format", "must be a model name")
        query["model"] = model
    return query


async def _pages(
    transport: Transport,
    query: Mapping[str, str],
    *,
    page_size: int,
    limit: int | None,
    counts: Sequence[RequestCount],
) -> AsyncIterator[Task]:
    yielded = 0
    page = 1
    seen: set[str] = set()  # a task created while listing shifts pages: no task twice
    while True:
        params = urlencode({**query, "page": page, "page_size": page_size})
        answer: Any = await transport.send(
            RequestKind.READ, "GET", f"/v1/tasks?{params}", counts=counts
        )
        rows, sent, total = _rows(answer)
        new = 0
        for row in rows:
            try:
                task = parse_task(row)
            except ResponseDecodeError as exc:
                logger.debug("task listing: skipped an unreadable entry (%s)", exc)
                continue
            if task.id in seen:
                continue
            seen.add(task.id)
            new += 1
            yield task
            yielded += 1
            if limit is not None and yielded >= limit:
                return
        if sent < page_size or (total is not None and page * page_size >= total):
            return
        if not new:  # a full page of tasks already seen: the server ignores `page`
            logger.debug("task listing: page %d brought no new task; stopping", page)
            return
        page += 1


_LIST_KEYS = ("data", "tasks", "list", "items")


def _rows(body: Any) -> tuple[list[Mapping[str, Any]], int, int | None]:
    """The page's task objects, how many entries it held, and the total, from
    `{data: [...], total}`, `{data: {tasks|list|items: [...], total}}` or the list under
    another of those names.

    Raises:
        ResponseDecodeError: no list of tasks anywhere: not the same as no tasks.
    """
    outer = read.mapping(body)
    total = read.integer(outer.get("total"))
    found: Any = next((outer[k] for k in _LIST_KEYS if k in outer), body)
    if isinstance(found, Mapping):
        total = read.integer(found.get("total", outer.get("total")))
        found = next((found[k] for k in _LIST_KEYS if k in found), body)
    if found is None:  # named, and null: an empty page
        found = []
    if not isinstance(found, list):
        raise ResponseDecodeError(
            "a task listing without a list of tasks", status_code=200, body=body
        )
    return read.items(found), len(found), total
