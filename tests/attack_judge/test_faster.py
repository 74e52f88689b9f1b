"""A model that turns faster, its progress honest.

Found against the change as first written (working tree of 07:07): its `_odd` gate (a
record starts again only if most ends held since the suspicion lie where it gave them
under 5 %) judged each held end by its interval's upper end, the read that found it
done. The schedule's own reads cannot show an early end (that is why the CUSUM exists):
a task 3x faster than its record is found done at the record's usual first read, whose
upper end lies where the record gives 10-50 %, not under 5 %. So the CUSUM crossed, the
ends were "not odd", they were taken in, and the record relearned only as its window
turned over. This suite's simulator, GETs, 100 in flight, 400 tasks then 600 changed,
six seeds (first version -> committed engine):

- estimates left at the old size, honest progress: 1.005-1.200x the loop, mean 1.096x,
  no restart in 4 of 6 seeds (tasks after the change 1.58-2.38 s late against the loop's
  0.50-0.53 s) -> 0.979-1.002x, 10 restarts each;
- no estimates: 0.9995-1.030x, mean 1.015x, no restart in 6 of 6 -> 0.950-0.973x;
- blind, 4x faster: no restart in 5 of 6 (waiting.md: "every change of 3x or more seen").

The tree of 07:25 applies the gate to progress bands only (`Spread.minorities`): these
tests pass on it (stale estimates 0.982-1.006x, no estimates 0.951-0.978x, blind
0.924-0.967x, a restart in every seed) and stand as guards.
"""

from __future__ import annotations

import pytest
from tests.attack_judge import _servers as servers
from tests.attack_judge._checks import (
    GRID,
    after_delays,
    detection_delay,
    mean_vs_loop,
    over_grid,
    split_match,
)


def _runs(server, seeds):
    out = []
    for seed in seeds:
        before, after = server(seed)
        out.append((len(before), split_match(before, after)))
    return out


def _detail(runs) -> str:
    lines = []
    for k, (first, m) in enumerate(runs):
        ours, loop = after_delays(m, first + 100)
        detect = detection_delay(m.ours, first)
        lines.append(
            f"  seed {k}: {m.vs_loop:.4f}x the loop ({m.ours.wall - m.loop.wall:+.1f}s), "
            f"restarts {sum(m.ours.changes.values())}, first restart {detect:.1f}s after the "
            f"change's first task started; tasks 100+ after it seen {ours:.3f}s late "
            f"(loop {loop:.3f}s); reads/task {m.ours.reads_per_task:.2f}"
        )
    return "\n".join(lines)


def test_faster_model_stale_estimates_within_loop() -> None:
    """Seeds 0-1: 0.9866x, 0.9982x (first version 1.2001x, 1.1320x, no restart)."""
    runs = _runs(servers.faster_stale_estimates, range(2))
    matches = [m for _, m in runs]
    assert not over_grid(matches), f"{over_grid(matches)}\n{_detail(runs)}"


def test_faster_model_no_estimates_seen_and_within_loop() -> None:
    """Seeds 0-2: 0.969x, 0.952x, 0.958x, a restart each (first version: none, mean
    1.0106x)."""
    runs = _runs(servers.faster_no_estimates, range(3))
    seen = [sum(m.ours.changes.values()) for _, m in runs]
    assert all(seen), f"the change was not seen (restarts {seen})\n{_detail(runs)}"
    assert mean_vs_loop([m for _, m in runs]) <= 1.0, _detail(runs)


def test_faster_blind_model_is_seen() -> None:
    """Seeds 0-2: a restart each (first version: none)."""
    runs = _runs(servers.faster_blind, range(3))
    seen = [sum(m.ours.changes.values()) for _, m in runs]
    assert all(seen), f"the change was not seen (restarts {seen})\n{_detail(runs)}"


def test_faster_blind_model_within_loop() -> None:
    """Seeds 0-2: 0.947x, 0.924x, 0.956x (first version, the change unseen: 1.0178x,
    0.9891x, 1.0003x, tasks after it 0.18-0.29 s late against 0.13-0.17 s now)."""
    runs = _runs(servers.faster_blind, range(3))
    matches = [m for _, m in runs]
    assert not over_grid(matches), f"{over_grid(matches)}\n{_detail(runs)}"
    assert mean_vs_loop(matches) <= 1.0 - GRID / max(m.loop.wall for m in matches), _detail(runs)


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason="20-60 s tasks turning 3x faster, estimates stale, honest progress: "
    "1.0297x (+7.7 s) and 1.0280x (+7.2 s) the loop in seeds 0-1 though the estimate "
    "records restart (tasks after the change 0.92-1.02 s late against 0.49-0.51 s); "
    "not this change's doing (committed engine 1.0252x, 1.0204x)",
)
def test_faster_long_tasks_stale_estimates_within_loop() -> None:
    runs = _runs(servers.faster_stale_estimates_long, range(2))
    matches = [m for _, m in runs]
    assert not over_grid(matches), f"{over_grid(matches)}\n{_detail(runs)}"


@pytest.mark.soak
def test_soak_faster_models() -> None:
    """Six seeds each, mean within the loop, every batch within the grid, every change
    seen."""
    stale = _runs(servers.faster_stale_estimates, range(6))
    bare = _runs(servers.faster_no_estimates, range(6))
    text = f"stale estimates:\n{_detail(stale)}\nno estimates:\n{_detail(bare)}"
    for runs in (stale, bare):
        matches = [m for _, m in runs]
        assert mean_vs_loop(matches) <= 1.0, text
        assert not over_grid(matches), text
        assert all(sum(m.ours.changes.values()) for m in matches), text
