"""The `Estimates` knob: what `task_info.estimated_time` says about a task's duration."""

from __future__ import annotations

import math
import random
import statistics
import string

import pytest
from _sim_support import api, create, create_validator, task_validator

from evolink.testing import Estimates, Fixed, Simulator, Uniform, VirtualClock

pytestmark = pytest.mark.anyio


async def estimates_of(sim: Simulator, count: int) -> list[tuple[float, int | None]]:
    """(true full duration, estimate in the create's answer) for `count` new tasks."""
    out = []
    async with api(sim) as client:
        for _ in range(count):
            body = (await create(client)).json()
            out.append(
                (sim.task(body["id"]).full_duration, body["task_info"].get("estimated_time"))
            )
    return out


async def test_default_estimates_are_unchanged() -> None:
    """Without the knob, estimates are drawn exactly as before: `round(full x (1 + U(±15%)))`."""
    sim = Simulator(clock=VirtualClock(), seed=7, durations=Uniform(2, 100))
    pairs = await estimates_of(sim, 50)
    rng = random.Random("t:7")  # the simulator's task stream, drawn as it always was
    expected = []
    for _ in range(50):
        full = rng.uniform(2, 100)
        error = rng.uniform(-0.15, 0.15)
        for _ in range(4):  # the fate draws
            rng.random()
        for _ in range(8):  # the id's characters
            rng.choice(string.ascii_lowercase + string.digits)
        expected.append((full, max(1, round(full * (1 + error)))))
    assert expected == pairs
    assert Estimates() == Estimates(error=0.15, factor=1.0, noise=0.0, step=1, missing=False)


async def test_estimate_error_is_shorthand_for_estimates() -> None:
    """`estimate_error=` means `Estimates(error=...)`; `estimates=` wins when both are given."""
    a = Simulator(clock=VirtualClock(), estimate_error=0.3)
    b = Simulator(clock=VirtualClock(), estimates=Estimates(error=0.3))
    c = Simulator(clock=VirtualClock(), estimate_error=0.3, estimates=Estimates(error=0))
    assert await estimates_of(a, 20) == await estimates_of(b, 20)
    assert all(round(full) == estimate for full, estimate in await estimates_of(c, 20))


async def test_biased_estimates() -> None:
    """`factor=2` reports twice the truth (with `error=0`, exactly, rounded)."""
    sim = Simulator(
        clock=VirtualClock(), durations=Uniform(2, 60), estimates=Estimates(factor=2, error=0)
    )
    assert all(estimate == round(2 * full) for full, estimate in await estimates_of(sim, 50))


async def test_noisy_estimates_are_lognormal_and_seeded() -> None:
    """`noise=0.5`: log(estimate / truth) has mean about 0 and spread about 0.5; the same
    seed gives the same estimates, another seed others."""
    knobs = {"durations": Uniform(50, 500), "estimates": Estimates(noise=0.5)}
    pairs = await estimates_of(Simulator(clock=VirtualClock(), seed=3, **knobs), 600)
    logs = [math.log(estimate / full) for full, estimate in pairs if estimate is not None]
    assert abs(statistics.fmean(logs)) < 0.06
    assert 0.44 < statistics.stdev(logs) < 0.56
    again = await estimates_of(Simulator(clock=VirtualClock(), seed=3, **knobs), 600)
    other = await estimates_of(Simulator(clock=VirtualClock(), seed=4, **knobs), 600)
    assert pairs == again
    assert pairs != other


async def test_coarse_estimates() -> None:
    """`step=10` reports multiples of 10 s (at least 10), near the truth."""
    sim = Simulator(clock=VirtualClock(), durations=Uniform(1, 200), estimates=Estimates(step=10))
    for full, estimate in await estimates_of(sim, 100):
        assert estimate is not None
        assert estimate % 10 == 0
        assert estimate >= 10
        assert abs(estimate - full) <= 0.15 * full + 5 or estimate == 10


async def test_missing_estimates_are_absent_and_valid() -> None:
    """`missing=True` sends no `estimated_time` in the create's answer or any read; each
    answer still validates against the OpenAPI schemas."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, durations=Fixed(10), estimates=Estimates(missing=True))
    create_schema, task_schema = create_validator(), task_validator()
    async with api(sim) as client:
        created = (await create(client)).json()
        create_schema.validate(created)
        reads = []
        for _ in range(3):
            clock.advance(4)
            reads.append((await client.get(f"/v1/tasks/{created['id']}")).json())
    for body in [created, *reads]:
        assert "estimated_time" not in body["task_info"]
    for body in reads:
        task_schema.validate(body)
    assert sim.task(created["id"]).estimated_time is None


@pytest.mark.parametrize(
    "estimates",
    [
        pytest.param(Estimates(), id="honest"),
        pytest.param(Estimates(factor=0.3), id="biased-low"),
        pytest.param(Estimates(noise=1.5), id="noisy"),
        pytest.param(Estimates(step=30), id="coarse"),
    ],
)
async def test_every_estimate_validates(estimates: Estimates) -> None:
    """Create answers and reads under each knob validate (an integer, at least 1)."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, durations=Uniform(0.5, 20), estimates=estimates)
    create_schema, task_schema = create_validator(), task_validator()
    async with api(sim) as client:
        for _ in range(30):
            body = (await create(client)).json()
            create_schema.validate(body)
            assert body["task_info"]["estimated_time"] >= 1
            clock.advance(0.2)
            task_schema.validate((await client.get(f"/v1/tasks/{body['id']}")).json())


async def test_estimates_never_shift_durations_or_fates() -> None:
    """The same seed gives the same ids, durations and fates whatever `estimates` is."""

    async def truth(estimates: Estimates) -> list[tuple[str, float]]:
        sim = Simulator(clock=VirtualClock(), seed=5, estimates=estimates)
        await estimates_of(sim, 20)
        return [(t.id, t.duration) for t in sim.tasks.values()]

    baseline = await truth(Estimates())
    for knob in (Estimates(noise=0.8), Estimates(missing=True), Estimates(factor=3, step=10)):
        assert baseline == await truth(knob)


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"factor": 0}, id="factor-0"),
        pytest.param({"factor": -1}, id="factor-negative"),
        pytest.param({"factor": math.inf}, id="factor-inf"),
        pytest.param({"error": -0.1}, id="error-negative"),
        pytest.param({"error": 1.0}, id="error-1"),
        pytest.param({"noise": -0.5}, id="noise-negative"),
        pytest.param({"noise": math.nan}, id="noise-nan"),
        pytest.param({"step": 0}, id="step-0"),
        pytest.param({"step": 2.5}, id="step-fraction"),
        pytest.param({"step": True}, id="step-bool"),
    ],
)
def test_invalid_knobs_are_refused(knobs: dict[str, float]) -> None:
    """Out-of-range values raise ValueError when the knob is made."""
    with pytest.raises(ValueError, match=r"must be|is a fraction"):
        Estimates(**knobs)  # type: ignore[arg-type]


def test_estimates_are_keyword_only_frozen_values() -> None:
    """Knobs are named, compare by value and cannot be changed."""
    with pytest.raises(TypeError):
        Estimates(2.0)  # type: ignore[misc]
    assert Estimates(factor=2) == Estimates(factor=2.0)
    with pytest.raises(AttributeError):
        Estimates().factor = 3  # type: ignore[misc]
