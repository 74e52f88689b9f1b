"""`max_credits` holds from the very first create when prices are published: the budget
predicts from the estimate, then corrects itself from the server's reservations."""

from __future__ import annotations

from decimal import Decimal

import pytest
from _platform_support import client_for

from evolink import GenerationRequest, OutcomeKind, SkipReason
from evolink.testing import Simulator, VirtualClock

pytestmark = pytest.mark.anyio


def _requests(count: int) -> list[GenerationRequest]:
    # Reservations vary by request: n of 1 to 4 images at 2.5 credits each.
    return [GenerationRequest(prompt=f"fox {i}", n=1 + i % 4) for i in range(count)]


async def test_two_hundred_prompts_never_pass_the_budget(clock: VirtualClock):
    """200 prompts, a budget well below their total: at no moment does the reserved total
    pass it, from the first creates on, and the report counts the inputs skipped."""
    sim = Simulator(clock=clock, seed=11, durations=(20, 60))
    budget = Decimal(300)
    peak = Decimal(0)

    def watch(*_: object) -> None:
        nonlocal peak
        ledger = sim.ledger  # committed: what was charged plus what is still held
        peak = max(peak, ledger.reserved - ledger.released)

    async with clock.running(), client_for(sim) as client:
        report = await client.images.generate_many(
            _requests(200), max_credits=budget, max_in_flight=32, on_created=watch
        )

    assert peak <= budget
    assert report.charged <= budget
    skipped = [o for o in report.outcomes if o.kind is OutcomeKind.SKIPPED]
    assert skipped
    assert {SkipReason.BUDGET} == {o.reason for o in skipped}
    assert len(skipped) + len(report.completed) == 200


@pytest.mark.parametrize(
    ("publish", "charged"),
    [
        pytest.param(True, Decimal(0), id="published-prices-hold-from-the-first-create"),
        pytest.param(False, Decimal(10), id="without-prices-the-first-create-probes"),
    ],
)
async def test_the_very_first_create_is_held_to_the_budget(
    clock: VirtualClock, publish: bool, charged: Decimal
):
    """A first request of 4 images (10 credits) under a budget of 6: with published prices
    it is skipped unsent; without them it had to be sent to learn its price."""
    sim = Simulator(clock=clock, seed=2, publish_prices=publish, durations=(5, 5))
    async with clock.running(), client_for(sim) as client:
        report = await client.images.generate_many(
            [GenerationRequest(prompt="fox", n=4)], max_credits=Decimal(6)
        )
    assert charged == report.charged
    assert (0 if publish else 1) == sim.count("POST", "/v1/images/generations")


async def test_without_prices_the_budget_still_holds_by_probing(clock: VirtualClock):
    """No published prices: the first create of a kind probes, alone, as before."""
    sim = Simulator(clock=clock, seed=3, publish_prices=False, durations=(10, 10))
    async with clock.running(), client_for(sim) as client:
        report = await client.images.generate_many(
            _requests(20), max_credits=Decimal(40), max_in_flight=8
        )
    assert report.charged <= Decimal(40)


async def test_the_server_reservation_corrects_a_wrong_estimate(clock: VirtualClock):
    """Published prices lower than the server's: the first wave may be mispredicted, then
    the budget learns the real price and stops admitting what no longer fits."""
    sim = Simulator(clock=clock, seed=5, prices={"gpt-image-2": 5}, durations=(5, 5))
    platform = sim.app.platform
    assert platform is not None
    platform.models = {**platform.models}
    # Publish half the true price: the estimate is too low until reservations teach it.
    from evolink.testing._catalog import ModelSpec  # noqa: PLC0415

    platform.models["gpt-image-2"] = ModelSpec("gpt-image-2", Decimal("2.5"))
    async with clock.running(), client_for(sim) as client:
        report = await client.images.generate_many(
            [GenerationRequest(prompt=f"p{i}") for i in range(20)],
            max_credits=Decimal(50),
            max_in_flight=1,
        )
    assert report.charged <= Decimal(50)
    assert 10 == len(report.completed)
