"""Per-model server behaviour: each model's own progress shape and estimates."""

from __future__ import annotations

import pytest

from evolink import AsyncEvolink
from evolink.testing import (
    Estimates,
    EstimatesByModel,
    Fixed,
    LinearProgress,
    NoProgress,
    ProgressByModel,
    Simulator,
    SteppedProgress,
    VirtualClock,
)

pytestmark = pytest.mark.anyio

KEY = "sk-evo-per-model-tests"
STEPPED, PLAIN = "gpt-image-2", "gpt-image-1.5"


async def test_each_model_reports_its_own_progress_and_estimates():
    """Mappings by model give those models their behaviour, the others the default."""
    clock = VirtualClock()
    sim = Simulator(
        clock=clock,
        durations=Fixed(100),
        progress={STEPPED: SteppedProgress(25)},
        estimates={STEPPED: Estimates(factor=2.0, error=0.0)},
    )
    client = AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock)
    async with client, clock.running():
        stepped = await client.images.generate("a fox", model=STEPPED)
        plain = await client.images.generate("a fox", model=PLAIN)
        await clock.sleep(60)
        stepped, plain = await client.tasks.get(stepped.id), await client.tasks.get(plain.id)

    assert (50, 60) == (stepped.progress, plain.progress)
    assert 200 == stepped.estimated_time
    assert plain.estimated_time is not None
    assert 85 <= plain.estimated_time <= 115


def test_mappings_become_by_model_knobs():
    """`progress={...}` and `estimates={...}` build ProgressByModel and EstimatesByModel."""
    sim = Simulator(progress={"a": NoProgress()}, estimates={"a": Estimates(missing=True)})
    assert ProgressByModel({"a": NoProgress()}) == sim.progress
    assert EstimatesByModel({"a": Estimates(missing=True)}) == sim.estimates
    assert LinearProgress() == sim.progress.for_model("b")


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"progress": {"a": "steps"}}, id="progress-not-a-model"),
        pytest.param({"estimates": {"a": 2.0}}, id="estimates-not-estimates"),
    ],
)
def test_a_wrong_entry_is_refused(knobs):
    """An entry that is not a progress model or `Estimates` is refused at once."""
    with pytest.raises(TypeError):
        Simulator(**knobs)
