"""Hostile hints and hostile answers: every wait still ends, completed, within the bound,
with no storm of reads and never two reads of one task at once.

waiting.md: the hints are hints to be checked, not facts; read leniently (an odd but
harmless answer never loses a paid result); the first read within 30 s, every later one
within the task's age; a task that never ends costs O(log(age)) reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from _server14c import MISSING, Ended, FakeTask, HostileServer, linear, mean, pool, run

from evolink.testing import VirtualClock


def _backwards(task: FakeTask, age: float, read_no: int) -> Any:
    p = linear(task, age, read_no)
    return max(0, p - 40) if read_no % 2 == 0 else p


def _over_100(task: FakeTask, age: float, read_no: int) -> Any:
    return 150 + read_no


def _stuck_at_100(task: FakeTask, age: float, read_no: int) -> Any:
    return 100  # says done long before it is


def _string_progress(task: FakeTask, age: float, read_no: int) -> Any:
    return str(linear(task, age, read_no))


def _float_progress(task: FakeTask, age: float, read_no: int) -> Any:
    return 100 * age / task.duration / 3 + 0.37


def _negative_progress(task: FakeTask, age: float, read_no: int) -> Any:
    return -linear(task, age, read_no)


def _null(task: FakeTask, *_: Any) -> Any:
    return None


def _const(value: Any) -> Callable[[FakeTask, int], Any]:
    return lambda _task, _read_no: value


def _changing(task: FakeTask, read_no: int) -> Any:
    return [1, 500, 3, 90, 0, 40][read_no % 6] * (1 + len(task.id) % 3)


def _lagging_then_truthful(task: FakeTask, read_no: int) -> Any:
    return 10_000 if read_no == 1 else round(task.duration)


BY_ID = True
PROGRESS = {
    "backwards": _backwards,
    "over-100": _over_100,
    "stuck-at-100": _stuck_at_100,
    "string": _string_progress,
    "float": _float_progress,
    "negative": _negative_progress,
    "null": _null,
    "missing": lambda *_: MISSING,
}

ESTIMATES = {
    "zero": _const(0),
    "negative": _const(-5),
    "huge": _const(10**9),
    "float-huge": _const(1e308),
    "nan": _const(math.nan),
    "string": _const("soon"),
    "numeric-string": _const("6"),
    "null": _const(None),
    "object": _const({"seconds": 5}),
    "bool": _const(True),
    "changing": _changing,
    "lagging": _lagging_then_truthful,
}


def _check(ended: list[Ended], server: HostileServer, *, extra: float = 0.0) -> None:
    assert all(e.status == "completed" for e in ended), [e.status for e in ended]
    assert not server.overlaps
    for e in ended:
        # The first read within 30 s; every later one within the task's age.
        assert e.delay <= max(e.duration, 30.0 - e.duration) + 2.0 + extra, (e.delay, e.duration)
    if server.batch_mode == "off":
        # No storm: a few reads a task (O(log(age)) at worst), GETs.
        assert mean([e.reads for e in ended]) <= 12, mean([e.reads for e in ended])
        assert max(e.reads for e in ended) <= 25


def _server(batch: str) -> HostileServer:
    server = HostileServer(VirtualClock(), batch_mode=batch)
    server.duration_of = lambda _m: server.rng.uniform(3.0, 9.0)
    return server


@pytest.mark.parametrize("batch", ["off", "on"])
@pytest.mark.parametrize("progress", sorted(PROGRESS))
@pytest.mark.parametrize("on_create", [True, False])
def test_hostile_progress(batch: str, progress: str, on_create: bool) -> None:
    """`on_create`: the create's answer carries the odd hint too (a paid task must not be
    lost over it), else only the reads do."""
    server = _server(batch)
    server.progress_of = PROGRESS[progress]
    server.hints_on_create = on_create

    async def main(client):  # type: ignore[no-untyped-def]
        return await pool(client, server, 36, 12, by_id=BY_ID)

    _check(run(server, main), server)


@pytest.mark.parametrize("batch", ["off", "on"])
@pytest.mark.parametrize("estimate", sorted(ESTIMATES))
@pytest.mark.parametrize("on_create", [True, False])
def test_hostile_estimates(batch: str, estimate: str, on_create: bool) -> None:
    server = _server(batch)
    server.estimate_of = ESTIMATES[estimate]
    server.hints_on_create = on_create

    async def main(client):  # type: ignore[no-untyped-def]
        return await pool(client, server, 36, 12)

    _check(run(server, main), server)


@pytest.mark.parametrize("batch", ["off", "on"])
@pytest.mark.parametrize("estimate", ["huge", "changing", "zero"])
def test_misleading_estimates_are_learnt(batch: str, estimate: str) -> None:
    """Hints that mislead on every task of a model: after a record's worth of tasks, the
    engine leans on the observed durations, near the oracle."""
    server = _server(batch)
    server.duration_of = lambda _m: server.rng.uniform(4.0, 6.0)
    server.estimate_of = ESTIMATES[estimate]
    server.progress_of = lambda *_: 0

    async def main(client):  # type: ignore[no-untyped-def]
        return await pool(client, server, 200, 16)

    ended = run(server, main)
    _check(ended, server)
    tail = ended[-48:]
    assert mean([e.delay for e in tail]) <= 0.5 * 5.0, mean([e.delay for e in tail])


def _dup(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return views + views


def _dup_stale(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Each task twice: the real view, then a stale "processing" copy of it.
    out = []
    for view in views:
        stale = dict(view, status="processing", progress=50)
        stale.pop("results", None)
        out += [view, stale]
    return out


def _drop_half(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return views[::2]


def _drop_all(_views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return []


def _garbage_items(views: list[dict[str, Any]]) -> list[Any]:
    return [*views, None, 7, "x", {"id": 5}, {"id": "task-unified-1-zzzzzzzz", "status": "??"}]


MANGLES = {
    "dup": _dup,
    "dup-stale": _dup_stale,
    "drop-half": _drop_half,
    "drop-all": _drop_all,
    "garbage-items": _garbage_items,
}


@pytest.mark.parametrize("mangle", sorted(MANGLES))
def test_hostile_batch_answers(mangle: str) -> None:
    server = _server("on")
    server.batch_mangle = MANGLES[mangle]

    async def main(client):  # type: ignore[no-untyped-def]
        return await pool(client, server, 36, 12, by_id=BY_ID)

    _check(run(server, main), server)


FLAPS = {
    "200-500-404": lambda n: (200, 500, 404)[n % 3],
    "200-500": lambda n: (200, 500)[n % 2],
    "500-then-200": lambda n: 500 if n < 4 else 200,
    "503-always": lambda n: 503,
}


@pytest.mark.parametrize("flap", sorted(FLAPS))
def test_batch_endpoint_flapping(flap: str) -> None:
    server = _server("on")
    server.batch_mode = FLAPS[flap]

    async def main(client):  # type: ignore[no-untyped-def]
        return await pool(client, server, 36, 12, by_id=BY_ID)

    # Read errors are retried after 1 s, doubling up to 30 s.
    _check(run(server, main), server, extra=30.0)


@pytest.mark.parametrize("batch", ["off", "on"])
@pytest.mark.parametrize("after", [1.0, 5.0])
def test_rate_limited_reads(batch: str, after: float) -> None:
    server = _server(batch)
    server.rate_limit = lambda n: after if n % 3 == 0 else None

    async def main(client):  # type: ignore[no-untyped-def]
        return await pool(client, server, 36, 12, by_id=BY_ID)

    ended = run(server, main)
    _check(ended, server, extra=4 * after)
    assert server.rate_limited > 0
