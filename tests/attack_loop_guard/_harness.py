"""Support for the loop-guard attack suite: run batches and waits on the simulator in
virtual time, read its request record, and compare with a 1 s loop on the same tasks."""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from evolink import AsyncEvolink
from evolink.testing import TEST_API_KEY, Simulator, VirtualClock


def reads_by_task(sim: Simulator) -> dict[str, list[float]]:
    """Simulator times of every read of each task (GETs and batch reads alike)."""
    reads: dict[str, list[float]] = defaultdict(list)
    for r in sim.requests:
        if r.status != 200:
            continue  # a refused request (the batch endpoint's 404, a 429) read nothing
        if r.method == "GET" and r.path.startswith("/v1/tasks/") and r.path.count("/") == 3:
            reads[r.path.rsplit("/", 1)[1]].append(r.time)
        elif r.method == "POST" and r.path == "/v1/tasks/batch" and isinstance(r.body, dict):
            for tid in r.body.get("task_ids", ()):
                reads[tid].append(r.time)
    for v in reads.values():
        v.sort()
    return reads


@dataclass
class TaskView:
    id: str
    created: float
    duration: float
    ends_at: float
    reads: list[float]  # every read of the task
    seen: float | None  # the first read at or after the end
    reads_to_seen: int

    @property
    def late(self) -> float:
        return math.inf if self.seen is None else self.seen - self.ends_at

    @property
    def loop_late(self) -> float:
        return math.ceil(self.duration) - self.duration

    @property
    def loop_reads(self) -> int:
        return max(1, math.ceil(self.duration))

    def gaps(self) -> list[tuple[float, float, float]]:
        """(age at the later read, gap, floor) for every read after the first."""
        out = []
        for a, b in zip(self.reads, self.reads[1:], strict=False):
            age_a = a - self.created
            floor = max(0.02, min(0.02 * age_a, 0.5))
            out.append((b - self.created, b - a, floor))
        return out


def task_views(sim: Simulator) -> list[TaskView]:
    reads = reads_by_task(sim)
    views = []
    for tid, t in sim.tasks.items():
        rs = reads.get(tid, [])
        after = [x for x in rs if x >= t.ends_at - 1e-9]
        seen = after[0] if after else None
        n = len([x for x in rs if seen is None or x <= seen + 1e-12])
        views.append(TaskView(tid, t.created, t.duration, t.ends_at, rs, seen, n))
    return views


def loop_wall(durations: list[float], slots: int, step: float = 1.0) -> float:
    """Wall of a batch whose every task is read each `step` s from its create, tasks
    created in order the instant a slot frees (creates take no time)."""
    free = [0.0] * min(slots, len(durations))
    heapq.heapify(free)
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        done = start + (math.ceil(d / step) * step if step else d)
        end = max(end, done)
        heapq.heappush(free, done)
    return end


def oracle_wall(durations: list[float], slots: int) -> float:
    return loop_wall(durations, slots, step=0.0)


@dataclass
class BatchResult:
    elapsed: float
    start: float
    end_seen: float
    loop: float
    oracle: float
    views: list[TaskView]
    report: Any
    n_inputs: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def wall(self) -> float:
        return self.end_seen - self.start

    def summary(self) -> str:
        lat = [v.late for v in self.views]
        loop = [v.loop_late for v in self.views]
        reads = [v.reads_to_seen for v in self.views]
        return (
            f"wall {self.wall:.2f}s loop {self.loop:.2f}s oracle {self.oracle:.2f}s "
            f"(ours/oracle {self.wall / self.oracle:.4f}, "
            f"loop/oracle {self.loop / self.oracle:.4f}); "
            f"mean late {sum(lat) / len(lat):.3f}s vs loop {sum(loop) / len(loop):.3f}s; "
            f"max late {max(lat):.2f}s; reads/task {sum(reads) / len(reads):.2f} max {max(reads)}"
        )


async def run_batch(
    sim: Simulator,
    clock: VirtualClock,
    client: AsyncEvolink,
    n: int,
    slots: int,
    *,
    batch_reads: bool = False,
    prefix: str = "p",
) -> BatchResult:
    before = set(sim.tasks)
    start = clock.time()
    async with clock.running():
        report = await client.images.generate_many(
            [f"{prefix} {i}" for i in range(n)], max_in_flight=slots, batch_reads=batch_reads
        )
    views = [v for v in task_views(sim) if v.id not in before]
    durations = [v.duration for v in views]  # creation order
    end_seen = max(v.seen for v in views if v.seen is not None)
    return BatchResult(
        elapsed=report.elapsed,
        start=start,
        end_seen=end_seen,
        loop=loop_wall(durations, slots),
        oracle=oracle_wall(durations, slots),
        views=views,
        report=report,
        n_inputs=n,
    )


def make(seed: int = 1, **knobs: Any) -> tuple[Simulator, VirtualClock, AsyncEvolink]:
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=seed, **knobs)
    client = AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport(), clock=clock)
    return sim, clock, client


def one_outcome_each(result: BatchResult) -> None:
    outs = result.report.outcomes
    assert len(outs) == result.n_inputs
    assert [o.index for o in outs] == list(range(result.n_inputs))
    assert all(o.kind is not None for o in outs)
