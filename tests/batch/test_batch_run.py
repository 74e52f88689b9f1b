"""`generate_many`'s handle: awaited for the report, readable after a cancellation."""

from __future__ import annotations

import logging

import anyio
import pytest

from _fake_server import FakeEvolink
from evolink import AsyncEvolink, BatchRun, EvolinkError, OutcomeKind
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

KEY = "sk-evo-batch-run-test-key"


def client_for(fake: FakeEvolink, clock: VirtualClock) -> AsyncEvolink:
    return AsyncEvolink(
        api_key=KEY, base_url="https://api.test", transport=fake.transport(), clock=clock
    )


async def test_awaiting_the_handle_gives_the_report():
    """`await generate_many(...)` is the report, as before; outcomes have their timings."""
    clock = VirtualClock()
    fake = FakeEvolink(clock)
    async with clock.running(), client_for(fake, clock) as client:
        run = client.images.generate_many(["a", "b"])
        assert isinstance(run, BatchRun)
        report = await run
    assert report.ok
    assert report is not None
    assert all(o.elapsed is not None and o.elapsed > 0 for o in report.outcomes)
    assert 2 == len(run.created())


async def test_a_run_cut_short_keeps_every_created_task(caplog):
    """A timeout around the await abandons the running tasks; the handle still has them."""
    clock = VirtualClock()
    fake = FakeEvolink(clock, duration=100.0)
    prompts = [f"p{i}" for i in range(20)]
    caplog.set_level(logging.WARNING, logger="evolink")
    async with clock.running(), client_for(fake, clock) as client:
        run = client.images.generate_many(prompts, max_in_flight=20)
        async with anyio.create_task_group() as tg:

            async def time_out() -> None:  # a timeout on the virtual clock
                await clock.sleep(10)
                tg.cancel_scope.cancel()

            tg.start_soon(time_out)
            await run
    report = run.report()
    assert 20 == len(report.outcomes)
    assert {OutcomeKind.ABANDONED} == {o.kind for o in report.outcomes}
    made = set(fake.tasks)
    assert made == {o.task.id for o in report.outcomes if o.task is not None}
    assert made == {task.id for task in run.created()}
    assert "20 task(s) still running" in caplog.text


async def test_the_handle_is_awaited_once():
    """A second await says so; reading before the first says so too."""
    clock = VirtualClock()
    fake = FakeEvolink(clock)
    async with clock.running(), client_for(fake, clock) as client:
        run = client.images.generate_many(["a"])
        with pytest.raises(EvolinkError, match="await it first"):
            run.report()
        assert [] == run.created()
        assert run.batch is None
        await run
        assert run.batch is not None
        with pytest.raises(EvolinkError, match="already awaited"):
            await run
