"""Running batches and waits against `_server.Server` on a virtual clock."""

from __future__ import annotations

import random
from collections.abc import Callable

from _server import API, Plan, Server

from evolink import AsyncEvolink
from evolink.testing import VirtualClock

WARM = [f"warm{i}" for i in range(60)]


def warm_durations(seed: int = 1) -> dict[str, float]:
    """60 tasks of 2-6 s: what the engine learns about the model first."""
    rng = random.Random(seed)
    return {p: rng.uniform(2.0, 6.0) for p in WARM}


def make(
    durations: dict[str, float],
    *,
    batch_endpoint: bool,
    latency: Callable[[], float] | None = None,
    plan_for: Callable[[str, int], Plan] | None = None,
) -> tuple[VirtualClock, Server, AsyncEvolink]:
    clock = VirtualClock()
    server = Server(
        clock,
        plan_for or (lambda prompt, attempt: Plan(durations[prompt])),
        batch_endpoint=batch_endpoint,
        latency=latency,
    )
    client = AsyncEvolink(
        api_key="sk-evo-test", base_url=API, transport=server.transport(), clock=clock
    )
    return clock, server, client


def ids_of(server: Server, prompt: str) -> list[str]:
    return [task_id for _, p, task_id in server.creates if p == prompt]


def batch_hurry_start(server: Server, ids: list[str], max_in_flight: int) -> float:
    """When a batch of `ids` had everything created and at most a tenth of its slots running."""
    last_create = max(server.tasks[i].created for i in ids)
    ends = sorted(server._seen_done(i) for i in ids)
    tenth = max_in_flight // 10
    return max(last_create, ends[len(ends) - tenth - 1])
