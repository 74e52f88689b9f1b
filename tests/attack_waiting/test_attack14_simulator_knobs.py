"""The simulator's server behaviours, as a user turns them in their own tests.

Issue 14: "The simulator can behave like the servers above: progress models (linear, coarse
steps, none, non-linear), estimates biased, noisy or missing, heavy-tailed durations,
per-model timing. These are knobs a user can also turn in their own tests."
docs/simulator.md, "Servers that behave otherwise": "Each is a small frozen value, checked
when it is made (a bad value raises `ValueError`), and drawn from the seed: every task
takes one draw for its duration and one for its estimate whichever knobs are on, so turning
a knob never changes another task's duration or fate. Every answer still validates against
the OpenAPI schemas."
"""

from __future__ import annotations

import random
from typing import Any

import anyio
import pytest

from evolink import AsyncEvolink
from evolink.testing import (
    TEST_API_KEY,
    ByModel,
    Estimates,
    LinearProgress,
    LogNormal,
    NoProgress,
    Pareto,
    PowerProgress,
    Simulator,
    SteppedProgress,
    Uniform,
    VirtualClock,
)

pytestmark = pytest.mark.anyio


def _client(sim: Simulator, clock: VirtualClock) -> AsyncEvolink:
    return AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport(), clock=clock)


async def _reads_along(sim: Simulator, clock: VirtualClock, model: str) -> tuple[Any, list[Any]]:
    """Create one task, read it at 10 %, 30 %, ..., 90 % of its duration and at its end."""
    async with _client(sim, clock) as client:
        task = await client.images.generate("a heron in fog", model=model)
        truth = sim.task(task.id)
        reads = []
        for fraction in (0.1, 0.3, 0.5, 0.7, 0.9, 1.01):
            clock.advance(truth.created + truth.duration * fraction - clock.time())
            reads.append(await client.tasks.get(task.id))
    return truth, reads


async def test_attack14_stepped_progress_and_biased_estimates_show_in_reads() -> None:
    """Promise: `progress=SteppedProgress(25)` reads "0, 25, 50, 75, then 100 when done",
    and `Estimates(factor=2.0, step=10)` reports about twice the truth in multiples of 10."""
    clock = VirtualClock()
    sim = Simulator(
        clock=clock,
        seed=11,
        progress=SteppedProgress(25),
        estimates=Estimates(factor=2.0, step=10, error=0.0),
        durations=Uniform(100, 200),
    )
    truth, reads = await _reads_along(sim, clock, "gpt-image-2")
    running = [r.progress for r in reads[:-1] if r.status.value == "processing"]
    assert running
    assert all(p % 25 == 0 and p < 100 for p in running), running
    assert reads[-1].status.value == "completed"
    assert reads[-1].progress == 100
    assert truth.estimated_time is not None
    assert truth.estimated_time % 10 == 0
    assert abs(truth.estimated_time - 2 * truth.full_duration) <= 10


async def test_attack14_no_progress_and_missing_estimates_show_in_reads() -> None:
    """Promise: `NoProgress()` reads "0 until the task ends" and `Estimates(missing=True)`
    sends "no `estimated_time` at all"."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=2, progress=NoProgress(), estimates=Estimates(missing=True))
    truth, reads = await _reads_along(sim, clock, "gpt-image-2")
    assert truth.estimated_time is None
    for read in reads[:-1]:
        assert read.progress == 0
        assert read.task_info is None or read.task_info.estimated_time is None
    assert reads[-1].progress == 100


async def test_attack14_per_model_behaviours_apply_to_their_model_only() -> None:
    """Promise: "`progress=` and `estimates=` also take a mapping of model to a value [...]
    models not listed get `default`: linear progress, honest estimates", "as `durations=`
    does (`ByModel`)"."""
    clock = VirtualClock()
    sim = Simulator(
        clock=clock,
        seed=5,
        durations={"gpt-image-2": Uniform(2, 6), "gpt-image-1.5": Uniform(200, 400)},
        progress={"gpt-image-2": SteppedProgress(50)},
        estimates={"gpt-image-1.5": Estimates(missing=True)},
    )
    stepped, stepped_reads = await _reads_along(sim, clock, "gpt-image-2")
    plain, plain_reads = await _reads_along(sim, clock, "gpt-image-1.5")
    assert 2 <= stepped.duration <= 6 + sim.pending_time
    assert 200 <= plain.duration <= 400 + sim.pending_time
    assert all(r.progress in (0, 50, 100) for r in stepped_reads)
    assert stepped.estimated_time is not None
    assert plain.estimated_time is None
    assert {r.progress for r in plain_reads[:-1]} - {0, 100}, "no linear progress"


async def test_attack14_a_users_own_progress_and_durations() -> None:
    """Promise: "Anything with `percent(fraction) -> int` is a progress model" and
    durations may be "any object with `sample(rng) -> float` (`Durations`)"."""

    class Stuck:
        def percent(self, fraction: float) -> int:
            return 99 if fraction > 0.05 else 0

    class Always:
        def sample(self, rng: random.Random) -> float:
            return 70.0 + 7.0 * (rng.random() >= 0)  # 77 s, whatever the draw

    clock = VirtualClock()
    sim = Simulator(clock=clock, progress=Stuck(), durations=Always())
    truth, reads = await _reads_along(sim, clock, "gpt-image-2")
    assert truth.full_duration == 77.0 or truth.duration == pytest.approx(77.0, abs=2.0)
    assert {r.progress for r in reads[1:-1]} == {99}
    assert reads[-1].status.value == "completed"


def test_attack14_bad_knob_values_are_refused() -> None:
    """Promise: "Each is a small frozen value, checked when it is made (a bad value raises
    `ValueError`)"."""
    bad = [
        lambda: SteppedProgress(0),
        lambda: SteppedProgress(-25),
        lambda: PowerProgress(0),
        lambda: PowerProgress(-1),
        lambda: Estimates(factor=0),
        lambda: Estimates(factor=-2.0),
        lambda: Estimates(error=-0.1),
        lambda: Estimates(noise=-1.0),
        lambda: Estimates(step=0),
        lambda: LogNormal(median=0, sigma=0.8),
        lambda: LogNormal(median=10, sigma=-1),
        lambda: Pareto(minimum=0, alpha=1.5),
        lambda: Pareto(minimum=5, alpha=0),
        lambda: Uniform(10, 5),
    ]
    accepted = []
    for i, make in enumerate(bad):
        try:
            make()
        except ValueError:
            continue
        accepted.append(i)
    assert not accepted, f"bad values accepted: cases {accepted}"


def test_attack14_turning_a_knob_never_changes_durations_or_fates() -> None:
    """Promise: "every task takes one draw for its duration and one for its estimate
    whichever knobs are on, so turning a knob never changes another task's duration or
    fate"."""

    async def durations(**knobs: Any) -> list[tuple[float, str]]:
        clock = VirtualClock()
        sim = Simulator(clock=clock, seed=21, **knobs)
        out = []
        async with _client(sim, clock) as client:
            for i in range(12):
                task = await client.images.generate(f"a kite, {i}")
                truth = sim.task(task.id)
                out.append((round(truth.full_duration, 9), truth.final_status.value))
        return out

    base = anyio.run(durations)
    for knobs in (
        {"progress": SteppedProgress(25)},
        {"progress": PowerProgress(3)},
        {"estimates": Estimates(missing=True)},
        {"estimates": Estimates(noise=0.5)},
        {"estimates": Estimates(factor=2.0, step=10)},
    ):
        assert anyio.run(lambda knobs=knobs: durations(**knobs)) == base, knobs


async def test_attack14_heavy_tails_are_capped_and_floored() -> None:
    """Promise: `LogNormal(median=, sigma=, cap=)` and `Pareto(minimum=, alpha=, cap=)`:
    "`cap` bounds the tail" and Pareto is "at least `minimum` seconds"."""
    rng = random.Random(4)
    lognormal = LogNormal(median=20, sigma=2.0, cap=300)
    pareto = Pareto(minimum=5, alpha=0.8, cap=1000)
    draws = [lognormal.sample(rng) for _ in range(2000)]
    assert max(draws) <= 300
    assert min(draws) > 0
    assert sum(d > 100 for d in draws) > 0, "no tail at all"
    tail = [pareto.sample(rng) for _ in range(2000)]
    assert min(tail) >= 5
    assert max(tail) <= 1000


BEHAVIOURS = {
    "linear-honest": (LinearProgress(), Estimates()),
    "steps-honest": (SteppedProgress(25), Estimates()),
    "none-missing": (NoProgress(), Estimates(missing=True)),
    "slow-then-fast-honest": (PowerProgress(3), Estimates()),
    "fast-then-slow-noisy": (PowerProgress(1 / 3), Estimates(noise=0.5)),
    "linear-double": (LinearProgress(), Estimates(factor=2.0)),
    "steps-missing": (SteppedProgress(25), Estimates(missing=True)),
}


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
async def test_attack14_waiting_on_every_simulated_behaviour(behaviour: str) -> None:
    """Promise: every server behaviour of the matrix, turned on in a user's test, lets a
    batch of 60 and 20 concurrent `tasks.wait` calls end right and bounded: every outcome
    completed, each wait seen by max(2 x duration, 30 s), and fewer read requests than a
    1 s loop would send (the loop reads each task about once per second of its life)."""
    progress, estimates = BEHAVIOURS[behaviour]
    clock = VirtualClock()
    sim = Simulator(
        clock=clock,
        seed=9,
        progress=progress,
        estimates=estimates,
        durations=ByModel({"gpt-image-2": LogNormal(median=15, sigma=0.6, cap=120)}),
    )
    async with _client(sim, clock) as client, clock.running():
        report = await client.images.generate_many(
            [f"a crane, {i}" for i in range(60)], max_in_flight=30
        )
        tasks = [await client.images.generate(f"an egret, {i}") for i in range(20)]
        seen: dict[str, float] = {}

        async def one(task: Any) -> None:
            done = await client.tasks.wait(task)
            assert done.id == task.id
            assert done.status.value == "completed"
            seen[task.id] = clock.time()

        async with anyio.create_task_group() as group:
            for task in tasks:
                group.start_soon(one, task)
    assert [o.kind.value for o in report.outcomes] == ["completed"] * 60
    for task in tasks:
        truth = sim.task(task.id)
        assert seen[task.id] - truth.created <= max(2 * truth.duration, 30.0) + 1.0
    reads = sim.count("GET", "/v1/tasks/") + sim.count("POST", "/v1/tasks/batch")
    lived = sum(sim.task(t.id).duration for t in tasks) + sum(
        sim.task(o.task.id).duration for o in report.outcomes
    )
    assert reads < lived / 4, (reads, lived)
