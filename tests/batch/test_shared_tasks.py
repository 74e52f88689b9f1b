"""Inputs the server answers with one task: each ends, the task is paid once."""

from __future__ import annotations

import httpx
import pytest

from _fake_server import FakeEvolink
from evolink import AsyncEvolink, GenerationRequest, OutcomeKind
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

KEY = "sk-evo-shared-task-test-key"


def client_for(fake: FakeEvolink, clock: VirtualClock) -> AsyncEvolink:
    return AsyncEvolink(
        api_key=KEY, base_url="https://api.test", transport=fake.transport(), clock=clock
    )


@pytest.mark.parametrize("fate", ["a fox", "fail:content_policy_violation"])
async def test_a_server_reusing_one_id_ends_every_input(fate):
    """Two creates answered with the same task id: both inputs end, with that task."""
    clock = VirtualClock()
    fake = FakeEvolink(clock)
    original = fake.handle

    def one_id(request: httpx.Request) -> httpx.Response:
        response = original(request)
        if request.url.path == "/v1/images/generations" and len(fake.tasks) > 1:
            # Every create after the first is answered with the first task.
            first = next(iter(fake.tasks.values()))
            return httpx.Response(200, json=fake.view(first))
        return response

    fake.handle = one_id  # type: ignore[method-assign]
    async with clock.running(), client_for(fake, clock) as client:
        report = await client.images.generate_many([fate, fate, fate], max_in_flight=3)
    assert 3 == len(report.outcomes)
    ids = {o.task.id for o in report.outcomes if o.task is not None}
    assert 1 == len(ids)
    kinds = {o.kind for o in report.outcomes}
    assert {OutcomeKind.COMPLETED if fate == "a fox" else OutcomeKind.FAILED} == kinds
    # Paid once, however many inputs it ended.
    assert fake.price == report.reserved


async def test_adopting_a_task_then_resending_its_key_ends_both():
    """An adopted task, and a resend of the key that made it: two inputs, one task."""
    clock = VirtualClock()
    fake = FakeEvolink(clock)
    async with clock.running(), client_for(fake, clock) as client:
        first = await client.images.generate("a fox", idempotency_key="evl-shared-key-0001")
        async with client.batch() as batch:
            request = GenerationRequest(prompt="a fox")
            await batch.adopt(first.id, request)
            await batch.submit(request, idempotency_key="evl-shared-key-0001")
    report = batch.report()
    assert [OutcomeKind.COMPLETED, OutcomeKind.COMPLETED] == [o.kind for o in report.outcomes]
    assert 1 == len(fake.tasks)
