"""Checks of the documented read rules over a `_server.Server`'s record."""

from __future__ import annotations

import itertools

from _server import Server

EPS = 1e-3


def floor_gap(age_prev: float) -> float:
    # (or half a second near a hinted end: waiting.md, "never a storm")
    return max(0.02, min(0.02 * age_prev, 0.5))


def hurry_gap(age_prev: float) -> float:
    """The longest wait between a hurried task's reads: a second, or a twentieth of its age
    once that is longer (so that a stuck last task is not read each second for ever)."""
    return max(1.0, 0.05 * age_prev)


def hurried_gaps(srv: Server, task_id: str, start: float) -> list[tuple[float, float, float]]:
    """(time, age, gap) of each stretch from `start` on without a read longer than allowed.

    Allowed: 1 s, or 5 % of the age at the read before if longer (`hurry_gap`).
    """
    task = srv.tasks[task_id]
    seen = srv._seen_done(task_id)
    if seen <= start:
        return []
    reads = [r.start for r in srv.reads_of(task_id) if start < r.start <= seen]
    points = [max(start, task.created), *reads]
    bad = []
    for a, b in itertools.pairwise(points):
        age = a - task.created
        allowed = hurry_gap(age) / 0.95
        if b - a > allowed + EPS:
            bad.append((round(b, 3), round(b - task.created, 3), round(b - a, 3)))
    return bad


def storm_violations(srv: Server) -> list[tuple[str, float, float, float]]:
    """Reads of one task closer than the floor to the read before: (id, time, age, gap)."""
    bad = []
    for task_id, task in srv.tasks.items():
        reads = [r.start for r in srv.reads_of(task_id)]
        for a, b in itertools.pairwise(reads):
            if b - a < floor_gap(a - task.created) - EPS:
                bad.append((task_id, round(b, 3), round(b - task.created, 3), round(b - a, 4)))
    return bad
