"""Issue 15, part 4: a resume finds a lost create through the task listing.

Promise checked (issue 15 "Parts 4"): "A resumed run whose journal recorded a create as sent
but never recorded its task id consults the listing (and the idempotency key) before it
resends anything." The vendored manual documents no Idempotency-Key header at all, so a
platform that ignores it is one the docs allow: against it, only the listing keeps a resume
from paying twice.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from attack15_server import SECRET, Hostile, Lost, sku

from evolink import AsyncEvolink, OutcomeKind
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio


def forgetful_platform(server: Hostile, *, lose_answer_for: bytes) -> None:
    """Idempotency keys ignored; the answer to one create lost after the task was made; a
    listing of every task, newest first."""
    plain_create = server.create

    def create(request: httpx.Request) -> httpx.Response:
        server.keys.clear()  # Idempotency-Key is not a documented header: ignored here
        response = plain_create(request)
        if lose_answer_for in request.content and not getattr(server, "lost_once", False):
            server.lost_once = True  # type: ignore[attr-defined]
            raise Lost
        return response

    def listing(request: httpx.Request) -> httpx.Response:
        rows = [
            server.view(t)
            for t in sorted(
                server.tasks.values(), key=lambda t: (t["created"], t["id"]), reverse=True
            )
        ]
        return httpx.Response(
            200, json={"object": "list", "data": rows, "has_more": False, "total": len(rows)}
        )

    server.create = create  # type: ignore[method-assign]
    server.list_tasks = listing
    server.prices = [sku("gpt-image-2", "g", price=1)]


async def test_resume_finds_a_lost_create_in_the_listing_before_resending(
    a15_server: Hostile, a15_clock: VirtualClock, tmp_path: Path
) -> None:
    """The first run loses the answer to input 1's create (its task was made); the resume
    must find that task in GET /v1/tasks, not create it again on a platform that ignores
    the idempotency key."""
    forgetful_platform(a15_server, lose_answer_for=b"fox 1")
    journal = tmp_path / "journal.sqlite3"
    prompts = [f"fox {i}" for i in range(3)]
    async with AsyncEvolink(
        api_key=SECRET, transport=a15_server.transport(), clock=a15_clock, max_retries=0
    ) as client:
        async with a15_clock.running():
            first = await client.images.generate_many(prompts, journal=journal, max_in_flight=1)
    assert first.outcomes[1].kind is OutcomeKind.UNCERTAIN
    assert len(a15_server.tasks) == 3  # the lost one was made all the same

    async with AsyncEvolink(
        api_key=SECRET, transport=a15_server.transport(), clock=a15_clock, max_retries=0
    ) as client:
        async with a15_clock.running():
            second = await client.images.generate_many(prompts, journal=journal, max_in_flight=1)
    assert [o.index for o in second.outcomes] == [0, 1, 2]
    assert len(a15_server.tasks) == 3, "the resume paid for input 1 a second time"
    assert a15_server.count("/v1/tasks", "GET") >= 1, "the listing was never consulted"
