"""Progress models: the shape of the `progress` a simulated task reports while it runs."""

from __future__ import annotations

import math

import pytest
from _sim_support import api, create_id, task_validator
from hypothesis import given
from hypothesis import strategies as st

from evolink.testing import (
    Fixed,
    LinearProgress,
    NoProgress,
    PowerProgress,
    ProgressModel,
    ShareProgress,
    Simulator,
    SteppedProgress,
    VirtualClock,
)

MODELS = [
    pytest.param(LinearProgress(), id="linear"),
    pytest.param(SteppedProgress(25), id="steps-25"),
    pytest.param(SteppedProgress(10), id="steps-10"),
    pytest.param(NoProgress(), id="none"),
    pytest.param(PowerProgress(3), id="slow-then-fast"),
    pytest.param(PowerProgress(1 / 3), id="fast-then-slow"),
    pytest.param(ShareProgress(0.4), id="share-0.4"),
]


async def progress_over_life(
    model: ProgressModel, at: list[float], *, seconds: float = 100
) -> list[int]:
    """Progress of one task of `seconds` read at each of the times `at` after creation."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, durations=Fixed(seconds), progress=model)
    seen = []
    async with api(sim) as client:
        task_id = await create_id(client)
        now = 0.0
        for t in at:
            clock.advance(t - now)
            now = t
            seen.append((await client.get(f"/v1/tasks/{task_id}")).json()["progress"])
    return seen


pytestmark = pytest.mark.anyio


async def test_default_is_linear() -> None:
    """Without the knob, progress is linear in time since creation, as it always was."""
    assert LinearProgress() == Simulator().progress
    assert [0, 30, 50, 99, 100] == await progress_over_life(
        Simulator().progress, [0.5, 30.2, 50, 99.9, 100]
    )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param(LinearProgress(), [0, 20, 49, 75, 99, 100], id="linear"),
        pytest.param(SteppedProgress(25), [0, 0, 25, 75, 75, 100], id="steps-25"),
        pytest.param(NoProgress(), [0, 0, 0, 0, 0, 100], id="none"),
        pytest.param(PowerProgress(3), [0, 0, 12, 42, 97, 100], id="slow-then-fast"),
        pytest.param(PowerProgress(1 / 3), [0, 58, 79, 90, 99, 100], id="fast-then-slow"),
        pytest.param(ShareProgress(0.4), [0, 8, 19, 30, 39, 100], id="share-0.4"),
    ],
)
async def test_progress_follows_the_model(model: ProgressModel, expected: list[int]) -> None:
    """Each model reads as its curve says at 0.5, 20, 49.5, 75, 99 and 100 s of 100."""
    assert expected == await progress_over_life(model, [0.5, 20, 49.5, 75, 99, 100])


@pytest.mark.parametrize("model", MODELS)
async def test_progress_never_goes_back_and_validates(model: ProgressModel) -> None:
    """Read every second, progress never decreases, stays below 100 until the task is
    completed, and every read validates against the task-detail schema."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, durations=Fixed(30), progress=model)
    schema = task_validator()
    seen = []
    async with api(sim) as client:
        task_id = await create_id(client)
        for _ in range(31):
            clock.advance(1)
            body = (await client.get(f"/v1/tasks/{task_id}")).json()
            schema.validate(body)
            seen.append((body["status"], body["progress"]))
        batch = await client.post("/v1/tasks/batch", json={"task_ids": [task_id]})
        schema.validate(batch.json()["data"][0])
    progress = [p for _, p in seen]
    assert sorted(progress) == progress
    assert all(p <= 99 for status, p in seen if status != "completed")
    assert ("completed", 100) == seen[-1]


async def test_pending_reads_zero_whatever_the_model() -> None:
    """A pending task reads 0 even under a model that starts fast."""
    assert [0] == await progress_over_life(PowerProgress(0.1), [0.5])


async def test_failed_task_keeps_its_last_progress() -> None:
    """A task that fails part-way reports the progress the model gave at its end."""
    from evolink.testing import Faults  # noqa: PLC0415

    clock = VirtualClock()
    sim = Simulator(
        clock=clock,
        durations=Fixed(100),
        progress=SteppedProgress(25),
        faults=Faults(task_failure=1.0),
        seed=4,
    )
    async with api(sim) as client:
        task_id = await create_id(client)
        task = sim.task(task_id)
        clock.advance(task.duration)
        body = (await client.get(f"/v1/tasks/{task_id}")).json()
    assert "failed" == body["status"]
    assert SteppedProgress(25).percent(task.duration / task.full_duration) == body["progress"]


@given(
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
    later=st.floats(min_value=0, max_value=1, exclude_max=True),
    step=st.integers(min_value=1, max_value=100),
    exponent=st.floats(min_value=0.05, max_value=20),
)
def test_models_are_monotone_percentages(
    fraction: float, later: float, step: int, exponent: float
) -> None:
    """Every model maps [0, 1) to whole percents in 0-100, never decreasing."""
    low, high = sorted((fraction, later))
    models = (
        LinearProgress(),
        SteppedProgress(step),
        NoProgress(),
        PowerProgress(exponent),
        ShareProgress(0.3),
    )
    for model in models:
        assert 0 <= model.percent(low) <= model.percent(high) <= 100
        assert isinstance(model.percent(low), int)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: SteppedProgress(0), id="step-0"),
        pytest.param(lambda: SteppedProgress(101), id="step-101"),
        pytest.param(lambda: SteppedProgress(2.5), id="step-fraction"),  # type: ignore[arg-type]
        pytest.param(lambda: SteppedProgress(True), id="step-bool"),
        pytest.param(lambda: PowerProgress(0), id="exponent-0"),
        pytest.param(lambda: PowerProgress(-2), id="exponent-negative"),
        pytest.param(lambda: PowerProgress(math.inf), id="exponent-inf"),
        pytest.param(lambda: PowerProgress(math.nan), id="exponent-nan"),
        pytest.param(lambda: ShareProgress(0), id="share-0"),
        pytest.param(lambda: ShareProgress(1.5), id="share-above-1"),
        pytest.param(lambda: ShareProgress(math.nan), id="share-nan"),
    ],
)
def test_invalid_knobs_are_refused(make: object) -> None:
    """Out-of-range steps and exponents raise ValueError when the knob is made."""
    with pytest.raises(ValueError, match="must be"):
        make()  # type: ignore[operator]


def test_simulator_refuses_what_is_not_a_progress_model() -> None:
    """`progress=` takes a model (anything with `percent`), not a number."""
    with pytest.raises(TypeError, match="progress model"):
        Simulator(progress=25)  # type: ignore[arg-type]


def test_knobs_are_frozen_values() -> None:
    """Models compare by value and cannot be changed."""
    assert SteppedProgress(25) == SteppedProgress()
    assert PowerProgress(3) == PowerProgress(3.0)
    with pytest.raises(AttributeError):
        SteppedProgress(25).step = 10  # type: ignore[misc]
