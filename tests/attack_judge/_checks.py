"""Shared figures and verdicts for the attack tests."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from tests.attack_judge._sim import Match, Result, Spec, match, oracle, run_loop, run_ours

#: A 1 s loop sees a task up to a second late, and so may we: a batch's wall may differ
#: from the loop's by about a second on the grid alone.
GRID = 1.0


def split_match(before: Sequence[Spec], after: Sequence[Spec], **ours: object) -> Match:
    return match([*before, *after], **ours)  # type: ignore[arg-type]


def after_delays(m: Match, first: int) -> tuple[float, float]:
    """Mean delay (ours, loop) of the tasks from index `first` on."""
    indices = range(first, m.ours.tasks)
    return m.ours.mean_delay_of(indices), m.loop.mean_delay_of(indices)


def detection_delay(result: Result, first_changed: int, model: str = "m") -> float:
    """Seconds from the start of the first changed task to the first restart seen after
    it (inf: none)."""
    start = result.started[first_changed]
    later = [t for t in result.restarted_at.get(model, []) if t >= start]
    return min(later) - start if later else math.inf


def over_grid(matches: Sequence[Match]) -> list[str]:
    """The runs whose wall is more than the grid's second over the loop's."""
    return [
        f"run {k}: +{m.ours.wall - m.loop.wall:.1f}s ({m.vs_loop:.4f}x)"
        for k, m in enumerate(matches)
        if m.ours.wall > m.loop.wall + GRID
    ]


def mean_vs_loop(matches: Sequence[Match]) -> float:
    return statistics.fmean(m.vs_loop for m in matches)


def summary(matches: Sequence[Match]) -> str:
    return "\n".join(f"  run {k}: {m.line()}" for k, m in enumerate(matches))


def life(batches: Sequence[Sequence[Spec]], *, in_flight: int = 100) -> list[Match]:
    """A client's life: the batches one after another, the records carried over."""
    timings: dict = {}
    out = []
    for specs in batches:
        ours = run_ours(specs, in_flight=in_flight, timings=timings)
        out.append(
            Match(ours, run_loop(specs, in_flight=in_flight), oracle(specs, in_flight=in_flight))
        )
    return out
