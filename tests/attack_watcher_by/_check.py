"""What a request log says about the client's promises."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs

from evolink import _watcher

from ._server import FakeServer


def gaps(server: FakeServer, task_id: str) -> list[tuple[float, float]]:
    """(from, to) between the answers of consecutive reads of a running task, leaving out
    the gap after a refused read (its back-off comes first), up to the read that saw the
    end."""
    end = server.end_of(task_id)
    reads = [(t, s) for t, _m, ids, s in server.reads() if task_id in ids]
    # A 429 brakes the requests of the party it answered (its Retry-After comes first).
    # (Seen: a 429 to one wait's read holds another wait's batch read for its Retry-After.)
    braked = [t for t, _m, _ids, s in server.reads() if s == 429]
    out: list[tuple[float, float]] = []
    for (t0, s0), (t1, _s1) in itertools.pairwise(reads):
        if t0 >= end:
            break
        if s0 == 200 and not any(t < t1 <= t + server.retry_after + 1 for t in braked):
            out.append((t0, t1))
    return out


def worst_gap(server: FakeServer) -> tuple[float, str, tuple[float, float]]:
    worst = (0.0, "", (0.0, 0.0))
    for task_id in server.tasks:
        for t0, t1 in gaps(server, task_id):
            worst = max(worst, (t1 - t0, task_id, (t0, t1)))
    return worst


def seen_late(server: FakeServer) -> float:
    """The longest between a task's end and the first answer showing it (of the tasks read
    while running: a wait may start after its task ended)."""
    late = 0.0
    for task_id, task in server.tasks.items():
        end = task.created + task.duration
        if not math.isfinite(end):
            continue
        answered = [t for t, _m, ids, s in server.reads() if task_id in ids and s == 200]
        seen = [t for t in answered if t >= end]
        if seen and answered[0] < end:
            late = max(late, seen[0] - end)
    return late


def extra_reads(server: FakeServer, plain: FakeServer, interval: float) -> float:
    """The worst over the tasks of: reads with the interval - reads without it (the plan's
    own, `plain`: the same workload, default client) - the task's life / interval."""
    worst = -math.inf
    for task_id, task in server.tasks.items():
        times = [t for t, _m, ids, _s in server.reads() if task_id in ids]
        own = [t for t, _m, ids, _s in plain.reads() if task_id in ids]
        if not times:
            continue
        life = times[-1] - task.created
        worst = max(worst, len(times) - len(own) - life / interval)
    return worst


def close_batches(server: FakeServer, within: float) -> int:
    """Batch requests sent within `within` seconds of the one before."""
    times = [t for t, m, _ids, _s in server.reads() if m == "POST"]
    return sum(1 for a, b in itertools.pairwise(times) if b - a < within)


@attrs.define
class Wakes:
    """The watcher's loop, counted: takes that read nothing, takes, largest heaps."""

    takes: int = 0
    empty: int = 0
    direct: int = 0
    heap: int = 0
    watched: int = 0


@contextmanager
def counting_wakes(monkeypatch: Any) -> Iterator[Wakes]:
    wakes = Wakes()
    original = _watcher.Watcher._take_due

    def take_due(self: _watcher.Watcher, now: float) -> Any:
        wakes.takes += 1
        wakes.direct = max(wakes.direct, len(self._direct))
        wakes.heap = max(wakes.heap, len(self._heap))
        wakes.watched = max(wakes.watched, len(self._watched))
        batched, alone = original(self, now)
        if not batched and not alone:
            wakes.empty += 1
        return batched, alone

    monkeypatch.setattr(_watcher.Watcher, "_take_due", take_due)
    yield wakes
