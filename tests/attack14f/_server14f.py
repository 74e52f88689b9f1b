"""Attack suite 14f: a simulator whose server behaviour can change during a client's life.

The simulator (`evolink.testing.Simulator`) draws each task's duration, estimate and
progress shape when the task is created. `Regime` holds the behaviour new tasks get; the
three knob objects below read it at each create, so a test can switch the server's
behaviour between batches, or after the k-th create of a batch (`switch_after`).

Measurement is from the simulator's own record (`sim.requests`, `sim.tasks`): for every
task, the times it was read (a GET of it, or its id in a batch read), its true creation
and end, and the first read that saw it ended.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import attrs

from evolink import AsyncEvolink, BatchReport, OutcomeKind
from evolink.testing import (
    TEST_API_KEY,
    Estimates,
    EstimatesByModel,
    Faults,
    LinearProgress,
    NoProgress,
    PowerProgress,
    ProgressByModel,
    Simulator,
    Uniform,
    VirtualClock,
)

MODEL = "gpt-image-2"

LINEAR = LinearProgress()
CUBIC = PowerProgress(3)
NONE = NoProgress()
HONEST = Estimates()
EXACT = Estimates(error=0.0)
DOUBLE = Estimates(factor=2.0)
MISSING = Estimates(missing=True)


@dataclass
class Behaviour:
    """What a task created now gets: durations, progress shape, estimates."""

    durations: Any = field(default_factory=lambda: Uniform(2, 6))
    progress: Any = LINEAR
    estimates: Estimates = HONEST


@dataclass
class Regime:
    """The behaviour of new tasks; switched by hand or after `switch_after` creates."""

    now: Behaviour
    later: Behaviour | None = None
    switch_after: int | None = None
    created: int = 0
    #: index (0-based, in creation order) of the first task with the later behaviour
    switched_at: int | None = None

    def switch(self) -> None:
        assert self.later is not None
        self.now, self.later = self.later, None
        self.switched_at = self.created
        self.switch_after = None

    def on_create(self) -> Behaviour:
        if self.switch_after is not None and self.created >= self.switch_after:
            self.switch()
        self.created += 1
        return self.now


class RegimeDurations:
    """`durations=`: each create draws from the regime's current distribution."""

    def __init__(self, regime: Regime) -> None:
        self.regime = regime
        self.current: Behaviour = regime.now

    def sample(self, rng: random.Random) -> float:
        # The duration is drawn first in a create; the estimate and the progress shape
        # are chosen after it, from the same behaviour.
        self.current = self.regime.on_create()
        return float(self.current.durations.sample(rng))


@attrs.frozen
class RegimeProgress(ProgressByModel):
    """`progress=`: the shape chosen at the create (fixed for the task's life)."""

    source: Any = attrs.field(default=None, kw_only=True)

    def for_model(self, model: str, *names: str) -> Any:  # noqa: ARG002
        return self.source.current.progress


@attrs.frozen
class RegimeEstimates(EstimatesByModel):
    """`estimates=`: the estimate knob chosen at the create."""

    source: Any = attrs.field(default=None, kw_only=True)

    def for_model(self, model: str, *names: str) -> Estimates:  # noqa: ARG002
        return self.source.current.estimates


class IntegerUniform:
    """Whole seconds, uniform on low..high: with `Estimates(error=0)` every estimate is exact."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def sample(self, rng: random.Random) -> float:
        return float(
            self.low + min(self.high - self.low, int(rng.random() * (self.high - self.low + 1)))
        )


def make_sim(
    regime: Regime,
    clock: VirtualClock,
    *,
    seed: int,
    batch_endpoint: bool,
    faults: Faults | None = None,
) -> Simulator:
    durations = RegimeDurations(regime)
    return Simulator(
        faults=faults or Faults(),
        clock=clock,
        seed=seed,
        durations=durations,
        progress=RegimeProgress((), source=durations),
        estimates=RegimeEstimates((), source=durations),
        batch_endpoint=batch_endpoint,
        balance=10_000_000,
    )


def client_for(sim: Simulator, clock: VirtualClock) -> AsyncEvolink:
    return AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport(), clock=clock)


# -- what happened, per task ------------------------------------------------------------


@dataclass
class TaskTrace:
    id: str
    order: int  # creation order over the simulator's life
    created: float
    duration: float
    ends_at: float
    reads: list[float] = field(default_factory=list)

    @property
    def seen_at(self) -> float | None:
        for t in self.reads:
            if t >= self.ends_at:
                return t
        return None

    @property
    def lateness(self) -> float:
        """(seen - created) / duration: 1.0 is the oracle."""
        seen = self.seen_at
        assert seen is not None, f"{self.id} never seen done"
        return (seen - self.created) / self.duration


def traces(sim: Simulator) -> dict[str, TaskTrace]:
    # `sim.tasks` keeps creation order (a dict filled at each create).
    out = {
        t.id: TaskTrace(t.id, i, t.created, t.duration, t.ends_at)
        for i, t in enumerate(sim.tasks.values())
    }
    for req in sim.requests:
        if req.method == "GET" and req.path.startswith("/v1/tasks/"):
            tid = req.path.rsplit("/", 1)[1]
            if tid in out:
                out[tid].reads.append(req.time)
        elif req.method == "POST" and req.path == "/v1/tasks/batch" and req.status == 200:
            for tid in (req.body or {}).get("task_ids", []):
                if tid in out:
                    out[tid].reads.append(req.time)
    for tr in out.values():
        tr.reads.sort()
    return out


def in_order(ts: dict[str, TaskTrace], ids: Sequence[str] | None = None) -> list[TaskTrace]:
    chosen = ts.values() if ids is None else [ts[i] for i in ids]
    return sorted(chosen, key=lambda t: t.order)


def batch_ids(report: BatchReport) -> list[str]:
    return [o.task.id for o in report.outcomes if o.task is not None]


def makespan(durations: Sequence[float], slots: int) -> float:
    """Wall of `slots` workers taking tasks in order, each busy for its duration."""
    heap = [0.0] * min(slots, max(1, len(durations)))
    heapq.heapify(heap)
    end = 0.0
    for d in durations:
        start = heapq.heappop(heap)
        finish = start + d
        end = max(end, finish)
        heapq.heappush(heap, finish)
    return end


def loop_seen(duration: float) -> float:
    """A hand-written loop reads at 1 s, 2 s, ... after the create: it sees the end at ceil(D)."""
    return float(max(1, math.ceil(duration - 1e-9)))


def oracle_wall(batch: Sequence[TaskTrace], slots: int) -> float:
    return makespan([t.duration for t in batch], slots)


def loop_wall(batch: Sequence[TaskTrace], slots: int) -> float:
    return makespan([loop_seen(t.duration) for t in batch], slots)


async def run_batch(
    client: AsyncEvolink, n: int, *, slots: int, batch_reads: bool, tag: str
) -> BatchReport:
    prompts = [f"{tag} prompt {i}" for i in range(n)]
    return await client.images.generate_many(
        prompts, max_in_flight=slots, batch_reads=batch_reads, model=MODEL
    )


def check_outcomes(report: BatchReport, n: int) -> None:
    """Every input ends in exactly one outcome (and here, on a fault-free server, completed)."""
    assert len(report.outcomes) == n
    assert [o.index for o in report.outcomes] == list(range(n))
    kinds = report.counts
    assert sum(kinds.values()) == n
    assert kinds[OutcomeKind.COMPLETED] == n, dict(kinds)


def storm_violations(
    ts: Sequence[TaskTrace], *, tol: float = 1e-6
) -> list[tuple[str, float, float]]:
    """Reads closer than max(2 % of the age, 20 ms) to the read before (the docs' floor).

    The age is taken at the earlier read (the generous reading: the plan made at that read).
    """
    bad = []
    for t in ts:
        for a, b in zip(t.reads, t.reads[1:], strict=False):
            age = a - t.created
            # (or half a second near a hinted end: waiting.md, "never a storm")
            floor = max(min(0.02 * age, 0.5), 0.02)
            if b - a < floor - tol:
                bad.append((t.id, round(b - a, 4), round(floor, 4)))
    return bad


def summary(ts: Sequence[TaskTrace]) -> dict[str, float]:
    n = len(ts)
    return {
        "tasks": n,
        "reads_per_task": sum(len(t.reads) for t in ts) / n,
        "mean_lateness": sum(t.lateness for t in ts) / n,
        "max_lateness": max(t.lateness for t in ts),
    }


async def run_waits(client: AsyncEvolink, n: int, *, tag: str) -> list[str]:
    """`n` request handlers, each creating one task and waiting for it with `tasks.wait`."""
    import anyio  # noqa: PLC0415

    ids: list[str] = []
    finals: dict[str, str] = {}

    async def handler(i: int) -> None:
        task = await client.images.generate(f"{tag} wait {i}", model=MODEL)
        ids.append(task.id)
        done = await client.tasks.wait(task, timeout=3600)
        finals[task.id] = done.status.value

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(handler, i)
    assert len(ids) == n
    assert len(finals) == n
    assert set(finals.values()) == {"completed"}, finals
    return ids


def mean(values: Sequence[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def loop_lateness(ts: Sequence[TaskTrace]) -> float:
    """What a 1 s loop would give the same tasks: mean ceil(D) / D."""
    return mean(loop_seen(t.duration) / t.duration for t in ts)
