"""A client's life of batches against one server behaviour, run once and cached."""

from __future__ import annotations

import functools
from typing import Any

import anyio
from _harness import BatchResult, make, run_batch
from _servers import JumpsBack, Sawtooth, StuckAt

from evolink.testing import (
    Estimates,
    LinearProgress,
    NoProgress,
    PowerProgress,
    SteppedProgress,
    Uniform,
)

LONG = Uniform(60, 600)

#: name -> simulator knobs. All tasks of 60-600 s, honest estimates unless said.
BEHAVIOURS: dict[str, dict[str, Any]] = {
    "linear": {"durations": LONG, "progress": LinearProgress()},
    "coarse-steps": {"durations": LONG, "progress": SteppedProgress(25)},
    "no-progress-honest-estimates": {"durations": LONG, "progress": NoProgress()},
    "no-progress-exact-estimates": {
        "durations": LONG,
        "progress": NoProgress(),
        "estimates": Estimates(error=0.0),
    },
    "slow-then-fast": {"durations": LONG, "progress": PowerProgress(3)},
    "stuck-at-99-from-half-way": {"durations": LONG, "progress": StuckAt(99, 0.5)},
    "stuck-at-95-from-half-way": {"durations": LONG, "progress": StuckAt(95, 0.5)},
    "jumps-back-60-points-at-90pc": {"durations": LONG, "progress": JumpsBack(0.9, 60)},
    "sawtooth-4-times": {"durations": LONG, "progress": Sawtooth(0.25)},
    # the docs' own case (attack suite 14g: 60-120 s, linear, honest): a control
    "control-linear-60-120": {"durations": Uniform(60, 120), "progress": LinearProgress()},
}

BATCHES = 4
SIZE = 150
SLOTS = 30


@functools.cache
def life(name: str, batch_reads: bool = False, seed: int = 3) -> tuple[BatchResult, ...]:
    async def go() -> tuple[BatchResult, ...]:
        sim, clock, client = make(seed=seed, **BEHAVIOURS[name])
        out = []
        async with client:
            for b in range(BATCHES):
                out.append(
                    await run_batch(
                        sim, clock, client, SIZE, SLOTS, batch_reads=batch_reads, prefix=f"b{b}"
                    )
                )
        return tuple(out)

    return anyio.run(go)
