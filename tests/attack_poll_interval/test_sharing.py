"""Promise 3: with batch reads, the tasks held to the interval share batch requests, about
one request a tick for all of them (per 50 ids), as a hand-written loop's would: not one
request per task.

The yardstick is the loop: every tick of the interval, one `POST /v1/tasks/batch` per 50
running tasks. The option may add up to about that to what the plan sends without it.
"""

from __future__ import annotations

import itertools
import math

import pytest

from . import _server as s
from ._harness import EPS, batch, describe, fresh, waits

#: How much more than the loop's requests the option may add (rounding, start and end).
SLACK = 1.25


def loop_requests(server: s.FakeServer, interval: float) -> int:
    """What a loop reading every running task every `interval` seconds would send."""
    tasks = list(server.tasks.values())
    start = min(t.created for t in tasks)
    stop = max(t.end for t in tasks) + interval
    count, tick = 0, math.ceil(start / interval)
    while tick * interval < stop:
        now = tick * interval
        running = sum(1 for t in tasks if t.created <= now < t.end + interval)
        count += math.ceil(running / 50)
        tick += 1
    return count


def _requests(server: s.FakeServer) -> int:
    return len(server.requests("POST", "/v1/tasks/batch"))


HINTS = {
    "honest-estimate": (s.honest, s.true_estimate),
    "absent": (s.absent, s.no_estimate),
    "jumping": (s.jumping, s.no_estimate),
    "stuck99": (s.stuck_at(99), s.no_estimate),
}
#: The default session runs these two; the others are soak (each costs about a second).
QUICK = ("honest-estimate", "absent")
PARAMS = [
    pytest.param(name, marks=() if name in QUICK else pytest.mark.soak) for name in sorted(HINTS)
]


@pytest.mark.parametrize("hints", PARAMS)
def test_many_waits_share_requests(hints: str) -> None:
    """60 handlers waiting at once (`tasks.wait`), created 0.13 s apart, batch reads."""
    progress, estimate = HINTS[hints]
    interval = 1.0
    runs = []
    for each in (None, interval):
        server = fresh(durations=s.spread(20, 50, 29), progress=progress, estimate=estimate)
        waits(server, each, 60, stagger=0.13)
        runs.append(server)
    without, held = runs
    assert held.worst_gap() <= interval + EPS, describe(held)
    loop = loop_requests(held, interval)
    budget = _requests(without) + SLACK * loop
    singles = sum(1 for r in held.requests("POST", "/v1/tasks/batch") if len(r.ids) == 1)
    assert _requests(held) <= budget, (
        f"{_requests(held)} batch requests with max_poll_interval={interval}, "
        f"{_requests(without)} without, a 1 s loop {loop}: over {budget:.0f}; "
        f"{singles} of them read a single task"
    )


def test_a_batch_of_liars_shares_requests() -> None:
    """`client.batch` of 80 tasks whose progress tells 40 % of the truth: once the plan's
    first reads are done, every task is held; the ticks' requests carry them all."""
    interval = 1.0
    runs = []
    for each in (None, interval):
        server = fresh(durations=s.spread(20, 50, 29), progress=s.share(0.4))
        batch(server, each, 80, max_in_flight=80)
        runs.append(server)
    without, held = runs
    assert held.worst_gap() <= interval + EPS, describe(held)
    loop = loop_requests(held, interval)
    budget = _requests(without) + SLACK * loop
    assert _requests(held) <= budget, (
        f"{_requests(held)} batch requests with the option, {_requests(without)} without, "
        f"a loop {loop}"
    )


@pytest.mark.parametrize("hints", PARAMS)
def test_requests_at_one_moment_are_one_request(hints: str) -> None:
    """However they fell due, the reads that go out at one moment go in one request (per
    50 ids): two batch requests under a millisecond apart, each with a handful of ids, are
    one request per task, not shared. (Without the option: none such, on every one of
    these servers.)"""
    progress, estimate = HINTS[hints]
    server = fresh(durations=s.spread(20, 50, 29), progress=progress, estimate=estimate)
    waits(server, 1.0, 60, stagger=0.13)
    posts = server.requests("POST", "/v1/tasks/batch")
    crowded = [
        (round(a.at, 6), len(a.ids), len(b.ids))
        for a, b in itertools.pairwise(posts)
        if b.at - a.at < 1e-3 and len(a.ids) + len(b.ids) <= 50
    ]
    assert not crowded, (
        f"{len(crowded)} pairs of batch requests under 1 ms apart that one request could "
        f"carry (at, ids, ids): {crowded[:8]}; {len(posts)} batch requests in all"
    )
