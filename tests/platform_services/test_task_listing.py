"""`client.tasks.list(...)`: the account's tasks page after page, filters checked first."""

from __future__ import annotations

import httpx
import pytest
import respx
from _platform_support import BASE_URL, client_for

from evolink import AsyncEvolink, Evolink, GenerationRequest, TaskStatus, ValidationError
from evolink.testing import TEST_API_KEY, Simulator, VirtualClock

pytestmark = pytest.mark.anyio


async def _make(client: AsyncEvolink, count: int) -> list[str]:
    return [(await client.images.generate(f"fox {i}")).id for i in range(count)]


async def test_every_task_newest_first_across_pages(client: AsyncEvolink, sim: Simulator):
    """Seven tasks in pages of three: all of them, newest first, three requests."""
    made = await _make(client, 7)

    listed = [task.id async for task in client.tasks.list(page_size=3)]

    assert list(reversed(made)) == listed
    assert 3 == sim.count("GET", "/v1/tasks")


async def test_filters_and_limit(client: AsyncEvolink, clock: VirtualClock):
    """`status` filters on the server; `limit` stops early without reading further pages."""
    await _make(client, 3)
    await clock.sleep(3600)  # the first three finish
    await _make(client, 2)

    completed = [t async for t in client.tasks.list(status=TaskStatus.COMPLETED)]
    first = [t async for t in client.tasks.list(limit=1, page_size=1)]

    assert 3 == len(completed)
    assert {TaskStatus.COMPLETED} == {t.status for t in completed}
    assert 1 == len(first)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"status": "paused"}, id="unknown-status"),
        pytest.param({"type": "hologram"}, id="unknown-type"),
        pytest.param({"page_size": 0}, id="page-size-0"),
        pytest.param({"page_size": 101}, id="page-size-101"),
        pytest.param({"limit": 0}, id="limit-0"),
        pytest.param({"model": ""}, id="empty-model"),
    ],
)
async def test_bad_filters_raise_at_once(
    client: AsyncEvolink, sim: Simulator, kwargs: dict[str, object]
):
    """A bad filter raises when `list` is called, before any page is read."""
    with pytest.raises(ValidationError):
        client.tasks.list(**kwargs)  # type: ignore[arg-type]
    assert [] == list(sim.requests)


async def test_odd_pages_are_read_leniently():
    """A nested `data.tasks` page, an unreadable entry and a repeated task: the readable,
    distinct tasks come through."""
    task = {"id": "task-unified-1", "status": "completed", "created": 1}
    pages = [
        {"data": {"tasks": [task, {"id": 7}, "junk"], "total": 4}},
        {"data": [task, {**task, "id": "task-unified-2"}], "total": 4},
    ]
    async with respx.mock() as mock:
        route = mock.get(f"{BASE_URL}/v1/tasks")
        route.side_effect = [httpx.Response(200, json=page) for page in pages]
        async with AsyncEvolink(
            api_key=TEST_API_KEY, base_url=BASE_URL, transport=httpx.MockTransport(mock.handler)
        ) as client:
            found = [t.id async for t in client.tasks.list(page_size=3)]
    assert ["task-unified-1", "task-unified-2"] == found


def test_the_blocking_listing_iterates_pages():
    """`Evolink().tasks.list` yields the same tasks, a page read as iteration needs it."""
    sim = Simulator(seed=1)
    with Evolink(api_key=TEST_API_KEY, base_url=BASE_URL, transport=sim.transport()) as client:
        for index in range(3):
            client.images.create(GenerationRequest(prompt=f"fox {index}"))
        listed = list(client.tasks.list(page_size=2))
        first = next(iter(client.tasks.list(page_size=1)))
    assert 3 == len(listed)
    assert listed[0].id == first.id


async def test_the_simulator_lists_only_the_callers_tasks(clock: VirtualClock):
    """Another key's tasks are not listed."""
    sim = Simulator(clock=clock)
    async with client_for(sim) as mine, client_for(sim, api_key="sk-evo-someone-else") as theirs:
        await _make(theirs, 2)
        assert [] == [t async for t in mine.tasks.list()]
