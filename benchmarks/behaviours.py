"""Server behaviours the benchmark matrix runs against: simulator knobs, by name.

Each entry is a one-line description and the `Simulator` keyword arguments that make the
simulator behave so. Every behaviour runs tasks of 2-6 s (clock time) unless it says
otherwise; the matrix runs them on a sped-up clock (`ScaledClock`).
"""

from __future__ import annotations

from typing import Any

from evolink.testing import (
    Estimates,
    LogNormal,
    NoProgress,
    PowerProgress,
    ShareProgress,
    SteppedProgress,
    Uniform,
)

DURATIONS = Uniform(2, 6)

BEHAVIOURS: dict[str, tuple[str, dict[str, Any]]] = {
    "honest-linear": (
        "linear progress, estimates within 15%",
        {},
    ),
    "coarse-steps": (
        "progress in steps of 25 (0, 25, 50, 75)",
        {"progress": SteppedProgress(25)},
    ),
    "no-progress": (
        "progress 0 until done; honest estimates",
        {"progress": NoProgress()},
    ),
    "slow-then-fast": (
        "progress = 100 (t/T)^3",
        {"progress": PowerProgress(3)},
    ),
    "estimates-x2": (
        "estimates twice the real duration",
        {"estimates": Estimates(factor=2.0)},
    ),
    "estimates-missing": (
        "no estimated_time; linear progress",
        {"estimates": Estimates(missing=True)},
    ),
    "noisy-estimates": (
        "estimates x lognormal noise, sigma 0.5",
        {"estimates": Estimates(noise=0.5)},
    ),
    "heavy-tailed": (
        "durations lognormal, median 3.5 s, sigma 0.8 (cap 60 s)",
        {"durations": LogNormal(median=3.5, sigma=0.8, cap=60)},
    ),
    "blind": (
        "neither progress nor estimates",
        {"progress": NoProgress(), "estimates": Estimates(missing=True)},
    ),
    # Not one of issue 14's: progress that lies steadily, where a fresh client's first
    # tasks are read late (docs/how-to/poll-interval.md).
    "steady-lie": (
        "progress reports half the truth, then done; no estimates",
        {"progress": ShareProgress(0.5), "estimates": Estimates(missing=True)},
    ),
}

#: Behaviours where the server gives neither progress nor estimates (a looser target).
BLIND = frozenset({"blind"})


def simulator_knobs(name: str) -> dict[str, Any]:
    """`Simulator` keyword arguments for behaviour `name` (durations included)."""
    _, knobs = BEHAVIOURS[name]
    return {"durations": DURATIONS, **knobs}
