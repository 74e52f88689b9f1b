"""Issue 15, part 4: the task listing, attacked from the docs alone.

Promises checked (issue 15 "Parts 4", docs/how-to/list-tasks.md, PLATFORM.md):
- "client.tasks.list(...) reads the account's tasks, newest first, a page at a time as you
  iterate. It is how a task that was created but never recorded ... is found again."
- "page_size (1-100) sets how many a request reads and limit stops early. A filter out of
  range raises ValidationError at the call, before any page is read."
- Tasks.list: "ValidationError: a filter or page_size (1-100) out of range, at once."
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from attack15_server import SECRET, Hostile, envelope_error

from evolink import AsyncEvolink, Evolink, EvolinkError, TaskStatus, ValidationError
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio


def task(i: int, status: str = "processing", **extra: Any) -> dict[str, Any]:
    row = {
        "id": f"task-unified-1767225600-{i:08d}",
        "status": status,
        "created": 1_767_225_600 + i,
        "model": "gpt-image-2",
        "object": "image.generation.task",
        "progress": 40,
        "type": "image",
    }
    row.update(extra)
    return row


def page_of(rows: list[dict[str, Any]], page: int, size: int, total: int) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "object": "list",
            "data": rows,
            "has_more": page * size < total,
            "page": page,
            "page_size": size,
            "total": total,
        },
    )


def params(request: httpx.Request) -> tuple[int, int]:
    return int(request.url.params.get("page", "1")), int(request.url.params.get("page_size", "50"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": "paused"},
        {"status": "PROCESSING!"},
        # ("text" is a task type in the manual's enum: not out of range.)
        {"type": "spreadsheet"},
        {"page_size": 0},
        {"page_size": 101},
        {"limit": -1},
    ],
)
async def test_out_of_range_filter_raises_at_the_call(
    a15_client: AsyncEvolink, a15_server: Hostile, kwargs: dict[str, Any]
) -> None:
    """'A filter out of range raises ValidationError at the call, before any page is read'
    (list-tasks.md): at the call itself, not at the first step of the iteration."""
    with pytest.raises(ValidationError):
        a15_client.tasks.list(**kwargs)
    assert a15_server.log == []


async def test_pages_shifted_by_new_tasks_yield_each_task_once(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """Newest first, by page number: two tasks created between the reads of page 1 and
    page 2 push page 1's last two onto page 2. Each task is found, and yielded once."""
    listing = [task(i) for i in range(10, 0, -1)]  # newest first

    def pages(request: httpx.Request) -> httpx.Response:
        page, size = params(request)
        if page == 2 and len(listing) == 10:
            listing[:0] = [task(12), task(11)]
        start = (page - 1) * size
        return page_of(listing[start : start + size], page, size, len(listing))

    a15_server.list_tasks = pages
    with anyio.fail_after(10):
        seen = [t.id async for t in a15_client.tasks.list(page_size=4)]
    assert len(seen) == len(set(seen)), f"duplicates: {len(seen) - len(set(seen))}"
    assert {task(i)["id"] for i in range(1, 11)} <= set(seen)


def runaway_guard(answer: Callable[[httpx.Request], httpx.Response]) -> Any:
    """A listing hook that ends a runaway reader with an empty last page after 30 reads."""
    calls = {"n": 0}

    def hook(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] > 30:
            return page_of([], 99, 1, 0)
        return answer(request)

    hook.calls = calls  # type: ignore[attr-defined]
    return hook


async def test_server_ignoring_the_page_does_not_loop_forever(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """A listing that ignores `page` and answers the first full page every time (saying
    there is more): the iteration ends, each task once."""
    rows = [task(i) for i in range(5, 0, -1)]
    hook = runaway_guard(lambda r: page_of(rows, 1, 5, 1000))
    a15_server.list_tasks = hook
    with anyio.fail_after(10):
        seen = [t.id async for t in a15_client.tasks.list(page_size=5)]
    assert hook.calls["n"] <= 30, "the same page was read over and over"
    assert len(seen) == len(set(seen)) == 5


async def test_empty_page_that_claims_more_ends_the_listing(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """An empty page that still says has_more: the iteration ends (nothing is left to find
    on it), without reading on for ever."""
    hook = runaway_guard(
        lambda r: (
            page_of([task(1)], 1, 1, 50)
            if params(r)[0] == 1
            else httpx.Response(
                200, json={"object": "list", "data": [], "has_more": True, "total": 50}
            )
        )
    )
    a15_server.list_tasks = hook
    with anyio.fail_after(10):
        seen = [t.id async for t in a15_client.tasks.list(page_size=1)]
    assert seen == [task(1)["id"]]
    assert hook.calls["n"] <= 30


async def test_limit_holds_when_the_server_sends_more_than_asked(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """'limit stops early': a server ignoring page_size and sending 200 tasks at once."""
    a15_server.list_tasks = lambda r: page_of([task(i) for i in range(200, 0, -1)], 1, 200, 200)
    seen = [t.id async for t in a15_client.tasks.list(page_size=10, limit=7)]
    assert len(seen) == 7


async def test_odd_task_rows_are_read_leniently(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """docs/reference/models.md: 'Parsing is tolerant ... an unknown status or type becomes
    a readable pseudo-member'; PLATFORM.md: 'usage.cost may be an object', 'error.code may
    be missing or an integer'."""
    rows = [
        task(4, status="paused"),
        task(3, status="failed", error={"code": 500, "message": "upstream"}),
        task(2, status="completed", usage={"cost": {"credits": 2.5, "usd": 0.025, "cny": 0.18}}),
        {"id": "task-unified-1767225600-00000001", "status": "pending"},
    ]
    a15_server.list_tasks = lambda r: page_of(rows, 1, 50, 4)
    seen = [t async for t in a15_client.tasks.list()]
    assert [t.id for t in seen] == [r["id"] for r in rows]
    assert seen[0].status.is_known is False
    assert seen[3].status is TaskStatus.PENDING


async def test_filters_are_sent(a15_client: AsyncEvolink, a15_server: Hostile) -> None:
    """Filters: status, type, model (list-tasks.md)."""
    a15_server.list_tasks = lambda r: page_of([], 1, 20, 0)
    _ = [
        t
        async for t in a15_client.tasks.list(
            status=TaskStatus.PROCESSING,
            type="video",
            model="veo-3.1-generate-preview",
            page_size=20,
        )
    ]
    sent = a15_server.log[-1].url.params
    assert sent.get("status") == "processing"
    assert sent.get("type") == "video"
    assert sent.get("model") == "veo-3.1-generate-preview"


async def test_unreadable_listing_is_an_error_not_an_empty_account(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """The listing is how a lost task 'is found again': a 2xx body holding its list under
    another name must not pass for 'no tasks' (errors.md, ResponseDecodeError: 'A success
    status whose body is not JSON or not the documented shape'). Read leniently (the task
    found) or refused; never an empty account. A body with no list at all is refused."""
    a15_server.list_tasks = lambda r: httpx.Response(
        200, json={"tasks": [task(1)], "page": 1, "total": 1}
    )
    try:
        found = [t async for t in a15_client.tasks.list()]
    except EvolinkError:
        found = None
    assert found is None or len(found) == 1
    a15_server.list_tasks = lambda r: httpx.Response(200, json={"page": 1, "total": 1})
    with pytest.raises(EvolinkError):
        _ = [t async for t in a15_client.tasks.list()]


async def test_key_quoted_in_a_listing_error_never_leaks(
    a15_server: Hostile, a15_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """errors.md: 'No error carries the API key, in its message, attributes or cause.'"""
    caplog.set_level("DEBUG")
    a15_server.list_tasks = lambda r: envelope_error(403, "forbidden", f"key {SECRET} may not list")
    async with AsyncEvolink(
        api_key=SECRET, transport=a15_server.transport(), clock=a15_clock, max_retries=0
    ) as client:
        with pytest.raises(EvolinkError) as caught:
            _ = [t async for t in client.tasks.list()]
    err = caught.value
    texts = [str(err), repr(err), repr(err.args), repr(vars(err)), repr(err.__cause__)]
    texts += [r.getMessage() for r in caplog.records]
    assert not [t for t in texts if SECRET[8:] in t]


def test_blocking_client_lists_as_an_ordinary_iterator(a15_server: Hostile) -> None:
    """'The blocking client iterates the same way: for task in
    Evolink().tasks.list(status="processing")' (list-tasks.md), page after page."""
    rows = [task(i) for i in range(7, 0, -1)]

    def pages(request: httpx.Request) -> httpx.Response:
        page, size = params(request)
        return page_of(rows[(page - 1) * size : page * size], page, size, len(rows))

    a15_server.list_tasks = pages
    client = Evolink(api_key=SECRET, transport=a15_server.transport())
    try:
        seen = [t.id for t in client.tasks.list(status="processing", page_size=3)]
    finally:
        client.close()
    assert seen == [r["id"] for r in rows]
