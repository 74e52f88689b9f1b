"""Shared helpers of the attack suite: a client on a fake server, and the docs' bounds."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from _server14d import FakeServer

from evolink import AsyncEvolink
from evolink.testing import VirtualClock

KEY = "sk-evo-attack14d-0000"


def uniform(seed: int, low: float = 2.0, high: float = 6.0):
    rng = random.Random(seed)
    return lambda _i: low + (high - low) * rng.random()


@asynccontextmanager
async def on_server(**knobs) -> AsyncIterator[tuple[AsyncEvolink, FakeServer, VirtualClock]]:
    clock = VirtualClock()
    server = FakeServer(clock, **knobs)
    async with AsyncEvolink(api_key=KEY, transport=server.transport(), clock=clock) as client:
        async with clock.running():
            yield client, server, clock


def bound_violations(server: FakeServer, *, slack: float) -> list[tuple]:
    """Reads that break the docs' bounds: first within 30 s, each later one within the
    task's age (from the answer before), at least 2 % of the age and 20 ms apart; and no
    task read twice at once."""
    bad: list[tuple] = []
    for task in server.order:
        reads = sorted(task.reads, key=lambda r: r.sent)
        if not reads:
            continue
        if reads[0].sent - task.created > 30 + slack:
            bad.append((task.ordinal, "first read after 30 s", reads[0].sent - task.created))
        for a, b in itertools.pairwise(reads):
            age = a.sent - task.created
            # (or half a second near a hinted end: waiting.md, "never a storm")
            if b.sent - a.sent < max(min(0.02 * age, 0.5), 0.02) - 1e-6:
                bad.append((task.ordinal, "storm", age, b.sent - a.sent))
            if b.sent - a.answered > (a.answered - task.created) + slack:
                bad.append((task.ordinal, "later than the age", age, b.sent - a.answered))
        if task.max_in_flight > 1:
            bad.append((task.ordinal, "read twice at once", task.max_in_flight))
    return bad
