"""End to end through the public client against `evolink.testing.Simulator` on a
`VirtualClock`: the change's case (a sixth of liars, no estimates) on a client that has
seen a first wave, new vs old (`ReadPlan._corroborated` patched to always true)."""

from __future__ import annotations

import math

import anyio
import attrs
import pytest

from evolink import AsyncEvolink
from evolink._estimate import ReadPlan
from evolink.testing import TEST_API_KEY, Estimates, Simulator, Uniform, VirtualClock


@attrs.frozen
class SometimesShare:
    """Progress that reports 40 % of the truth (every task: a progress model sees only
    the fraction, so a mixture of liars needs the plan simulator, `_sim`)."""

    factor: float = 2.5

    def percent(self, fraction: float) -> int:
        return math.floor(100 * fraction / self.factor)


async def _wave(client: AsyncEvolink, sim: Simulator, clock: VirtualClock, n: int) -> list:
    delays: list[tuple[float, float]] = []

    async def one() -> None:
        task = await client.images.generate("a koi pond")
        done = await client.tasks.wait(task)
        truth = sim.task(done.id)
        end = truth.created + truth.duration
        delays.append((clock.time() - end, truth.duration))

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return delays


async def _run(*, old: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[float, float, float, float]:
    if old:
        monkeypatch.setattr(ReadPlan, "_corroborated", lambda self: True)
    clock = VirtualClock()
    sim = Simulator(
        clock=clock,
        seed=3,
        durations=Uniform(60.0, 300.0),
        estimates=Estimates(missing=True),
        progress=SometimesShare(),
    )
    async with (
        AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport(), clock=clock) as client,
        clock.running(),
    ):
        first = await _wave(client, sim, clock, 40)  # the record learns the lie
        gets = sim.count("GET", "/v1/tasks/")
        posts = sim.count("POST", "/v1/tasks/batch")
        delays = await _wave(client, sim, clock, 40)
        reads = sim.count("GET", "/v1/tasks/") - gets + sim.count("POST", "/v1/tasks/batch") - posts
    worst_share = max(delay / duration for delay, duration in delays)
    mean = sum(delay for delay, _ in delays) / len(delays)
    first_worst = max(delay / duration for delay, duration in first)
    return reads / len(delays), mean, worst_share, first_worst


def test_e2e_liars_waits_mature_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task lies (40 % of the truth), no estimates, 40 concurrent `tasks.wait`s on a
    client that has seen 40: each wait's delay within its task's duration (the age
    bound), and no more read requests a task than the old rule plus one."""
    new = anyio.run(lambda: _run(old=False, monkeypatch=monkeypatch))
    with monkeypatch.context() as patch:
        old = anyio.run(lambda: _run(old=True, monkeypatch=patch))
    figures = (
        f"new: {new[0]:.2f} requests a task, mean delay {new[1]:.2f} s, worst x{new[2]:.2f}; "
        f"old: {old[0]:.2f}, {old[1]:.2f} s, x{old[2]:.2f}"
    )
    assert new[2] <= 1.0, figures
    assert new[0] <= old[0] + 1.0, figures


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason=(
        "broken before and after alike: a fresh client's first 40 waits on liars (no "
        "estimates, 60-300 s) are trusted under (a): worst delay x1.2-1.8 of duration"
    ),
)
def test_e2e_fresh_client_first_wave(monkeypatch: pytest.MonkeyPatch) -> None:
    new = anyio.run(lambda: _run(old=False, monkeypatch=monkeypatch))
    assert new[3] <= 1.0, f"fresh wave worst delay x{new[3]:.2f} of its duration"
