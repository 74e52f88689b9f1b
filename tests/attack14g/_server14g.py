"""Attack suite 14g: a server that can change during a client's life, and the figures.

Everything here is built on `evolink.testing`'s public knobs:

- `Shift`: durations drawn from `base`, times `scale` (change `scale`, or `base`, at any
  time: tasks created afterwards follow it; a `Durations` as the simulator documents:
  anything with `sample(rng)`).
- `Mixture`: bimodal durations under one model name (one draw per task).
- `Drift`: durations that grow by a factor per batch (`bump()`).
- `ShiftEstimates`: what `estimated_time` says, switchable (anything with
  `estimate(duration, draw)`, as `Estimates` is; the simulator takes it as is).
- `ShiftProgress`: a progress model (`percent(fraction)`) that can change shape (this one
  changes for every task at once, as a server changing its reporting would).

The figures come from the simulator's own truth (`sim.tasks`) and its request record
(`sim.requests`) only: no private state of the client, except `restarts(client, model)`,
which counts the engine's model-change restarts (read-only, for the false-alarm tests).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterable, Sequence
from typing import Any

import anyio
import attrs

from evolink import AsyncEvolink, OutcomeKind
from evolink.testing import (
    TEST_API_KEY,
    Durations,
    Estimates,
    LinearProgress,
    Simulator,
    Uniform,
    VirtualClock,
)

MODEL_A = "gpt-image-2"
MODEL_B = "gpt-image-1.5"


# --------------------------------------------------------------------------------------
# server behaviour that can change


@attrs.define
class Shift:
    """Durations from `base`, times `scale`: change either at any time."""

    base: Durations = attrs.field(factory=lambda: Uniform(2, 6))
    scale: float = 1.0

    def sample(self, rng: random.Random) -> float:
        return self.base.sample(rng) * self.scale


@attrs.define
class Mixture:
    """Bimodal durations: with chance `weight` uniform on `fast`, else on `slow` (one draw)."""

    fast: tuple[float, float] = (2.0, 4.0)
    slow: tuple[float, float] = (20.0, 30.0)
    weight: float = 0.5
    scale: float = 1.0

    def sample(self, rng: random.Random) -> float:
        u = rng.random()
        if u < self.weight:
            lo, hi = self.fast
            v = u / self.weight
        else:
            lo, hi = self.slow
            v = (u - self.weight) / (1 - self.weight)
        return (lo + (hi - lo) * v) * self.scale


@attrs.define
class ShiftEstimates:
    """`estimated_time` as `Estimates(**current)` says it: switch with `set(...)`."""

    current: Estimates = attrs.field(factory=Estimates)

    def set(self, **knobs: Any) -> None:
        self.current = Estimates(**knobs)

    def estimate(self, duration: float, draw: float) -> int | None:
        return self.current.estimate(duration, draw)


@attrs.define
class ShiftProgress:
    """A progress model that can change shape (for every task, at once)."""

    current: Any = attrs.field(factory=LinearProgress)

    def percent(self, fraction: float) -> int:
        return self.current.percent(fraction)


# --------------------------------------------------------------------------------------
# figures


def read_times(sim: Simulator) -> dict[str, list[float]]:
    """Every read of every task (GETs and places in answered batch reads), by task id."""
    reads: dict[str, list[float]] = {}
    for r in sim.requests:
        if r.method == "GET" and r.path.startswith("/v1/tasks/"):
            reads.setdefault(r.path.rsplit("/", 1)[1], []).append(r.time)
        elif r.method == "POST" and r.path == "/v1/tasks/batch" and r.status == 200:
            for task_id in (r.body or {}).get("task_ids", ()):
                reads.setdefault(task_id, []).append(r.time)
    return reads


def read_requests(sim: Simulator, since: float = -math.inf, until: float = math.inf) -> int:
    """Task-read requests (GETs and batch reads) made in `[since, until]`."""
    return sum(
        1
        for r in sim.requests
        if since <= r.time <= until
        and (
            (r.method == "GET" and r.path.startswith("/v1/tasks/"))
            or (r.method == "POST" and r.path == "/v1/tasks/batch")
        )
    )


def greedy_wall(durations: Sequence[float], slots: int) -> float:
    """Tasks started in order, each on the first free slot, each holding it `duration`."""
    free = [0.0] * slots
    heapq.heapify(free)
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


def loop_time(duration: float) -> float:
    """When a loop reading every second from the create sees a task of `duration` done."""
    return max(1.0, math.ceil(duration - 1e-9))


@attrs.frozen
class Figures:
    """What one batch (or one group of waits) cost, against the oracle and the 1 s loop."""

    n: int
    wall: float
    oracle: float
    loop: float
    reads: float  # reads per task (a place in a batch read counts as one)
    requests: float  # read requests per task
    storms: tuple[str, ...]  # reads closer than the storm floor
    late: tuple[float, ...]  # per task: (seen done - created) / duration
    loop_late: tuple[float, ...]  # per task: the loop's, on the same task
    outcomes_ok: bool
    ids: tuple[str, ...]

    @property
    def ratio(self) -> float:
        return self.wall / self.oracle

    @property
    def loop_ratio(self) -> float:
        return self.loop / self.oracle

    @property
    def mean_late(self) -> float:
        return sum(self.late) / len(self.late)

    @property
    def loop_mean_late(self) -> float:
        return sum(self.loop_late) / len(self.loop_late)

    def line(self, label: str = "") -> str:
        return (
            f"{label} n={self.n} wall/oracle={self.ratio:.3f} loop={self.loop_ratio:.3f} "
            f"reads/task={self.reads:.2f} req/task={self.requests:.3f} "
            f"late={self.mean_late:.3f} loop_late={self.loop_mean_late:.3f} "
            f"storms={len(self.storms)} ok={self.outcomes_ok}"
        )


def storms(sim: Simulator, ids: Iterable[str], reads: dict[str, list[float]]) -> list[str]:
    """Reads after a task's first closer than max(20 ms, 2 % of its age or 0.5 s) to the one
    before."""
    bad = []
    for task_id in ids:
        created = sim.task(task_id).created
        times = reads.get(task_id, [])
        for before, after in itertools.pairwise(times):
            age = before - created
            # (or half a second near a hinted end: waiting.md, "never a storm")
            floor = max(0.02, min(0.02 * age, 0.5))
            if after - before < floor - 1e-6:
                bad.append(f"{task_id}: age {age:.3f} gap {after - before:.4f} < {floor:.4f}")
    return bad


def seen_done(sim: Simulator, task_id: str, reads: dict[str, list[float]]) -> float:
    task = sim.task(task_id)
    after = [t for t in reads.get(task_id, []) if t >= task.ends_at - 1e-9]
    return min(after) if after else math.inf


def figures(
    sim: Simulator,
    ids: Sequence[str],
    *,
    wall: float,
    slots: int | None,
    t0: float,
    t1: float,
    outcomes_ok: bool = True,
) -> Figures:
    """Figures of the tasks `ids` (creation order), run in `[t0, t1]` on `slots` slots
    (None: all at once, as waits)."""
    reads = read_times(sim)
    durations = [sim.task(i).duration for i in ids]
    n = len(ids)
    if slots is None:
        oracle = max(durations)
        loop = max(loop_time(d) for d in durations)
    else:
        oracle = greedy_wall(durations, slots)
        loop = greedy_wall([loop_time(d) for d in durations], slots)
    late = tuple(
        (seen_done(sim, i, reads) - sim.task(i).created) / sim.task(i).duration for i in ids
    )
    loop_late = tuple(loop_time(d) / d for d in durations)
    return Figures(
        n=n,
        wall=wall,
        oracle=oracle,
        loop=loop,
        reads=sum(len(reads.get(i, [])) for i in ids) / n,
        requests=read_requests(sim, t0, t1) / n,
        storms=tuple(storms(sim, ids, reads)),
        late=late,
        loop_late=loop_late,
        outcomes_ok=outcomes_ok,
        ids=tuple(ids),
    )


# --------------------------------------------------------------------------------------
# a long-lived client


def restarts(client: AsyncEvolink, model: str) -> tuple[int, int]:
    """(restarts, suspicions) of `model`'s records in the client's one engine.

    PRIVATE, READ-ONLY: no public figure says "the record started again"; this reads the
    engine's counters (`client._engine.timings`), nothing else, and changes nothing.
    """
    engine = client._engine
    if engine is None:
        return (0, 0)
    timing = engine.timings._models.get(model)
    if timing is None:
        return (0, 0)
    return (timing.changes, timing.suspicions)


@attrs.define
class Rig:
    """One simulator and one long-lived client on a virtual clock."""

    sim: Simulator
    clock: VirtualClock
    client: AsyncEvolink | None = None
    counter: int = 0

    @classmethod
    def make(cls, **knobs: Any) -> Rig:
        clock = VirtualClock()
        knobs.setdefault("pending_time", 0.0)
        sim = Simulator(clock=clock, seed=knobs.pop("seed", 14), balance=10**9, **knobs)
        return cls(sim=sim, clock=clock)

    def open(self) -> AsyncEvolink:
        self.client = AsyncEvolink(
            api_key=TEST_API_KEY, transport=self.sim.transport(), clock=self.clock
        )
        return self.client

    def _prompts(self, n: int) -> list[str]:
        start = self.counter
        self.counter += n
        return [f"prompt {i}" for i in range(start, start + n)]

    async def batch(
        self,
        n: int,
        *,
        slots: int = 30,
        model: str = MODEL_A,
        batch_reads: bool = True,
        on_created: Any = None,
    ) -> Figures:
        """A batch of `n` tasks of `model` on `slots`, on the long-lived client (read
        requests per task count every task read in the batch's time: with batches run
        side by side, theirs too)."""
        assert self.client is not None
        t0 = self.clock.time()
        start = self.clock.monotonic()
        options: dict[str, Any] = {}
        if on_created is not None:
            options["on_created"] = on_created
        report = await self.client.images.generate_many(
            self._prompts(n), model=model, max_in_flight=slots, batch_reads=batch_reads, **options
        )
        wall = self.clock.monotonic() - start
        order = {task_id: i for i, task_id in enumerate(self.sim.tasks)}
        ids = sorted((o.task_id for o in report.outcomes if o.task_id), key=order.__getitem__)
        indexes = sorted(o.index for o in report.outcomes)
        ok = (
            indexes == list(range(n))
            and all(o.kind is OutcomeKind.COMPLETED for o in report.outcomes)
            and len(ids) == n
        )
        return figures(
            self.sim, ids, wall=wall, slots=slots, t0=t0, t1=self.clock.time(), outcomes_ok=ok
        )

    async def waits(self, n: int, *, model: str = MODEL_A) -> Figures:
        """`n` tasks created at once, each waited for by its own concurrent `tasks.wait`."""
        assert self.client is not None
        client = self.client
        t0 = self.clock.time()
        start = self.clock.monotonic()
        tasks = []
        for prompt in self._prompts(n):
            tasks.append(await client.images.generate(prompt, model=model))
        done: list[Any] = [None] * n

        async def one(i: int) -> None:
            done[i] = await client.tasks.wait(tasks[i])

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
        wall = self.clock.monotonic() - start
        ids = [t.id for t in tasks]
        ok = (
            all(d is not None and d.status.value == "completed" for d in done)
            and [d.id for d in done] == ids
        )
        return figures(
            self.sim, ids, wall=wall, slots=None, t0=t0, t1=self.clock.time(), outcomes_ok=ok
        )


def check_basic(fig: Figures, label: str) -> list[str]:
    """The promises that hold whatever the server does: outcomes, no storms."""
    problems = []
    if not fig.outcomes_ok:
        problems.append(f"{label}: not every input ended in exactly one completed outcome")
    if fig.storms:
        problems.append(f"{label}: {len(fig.storms)} reads under the storm floor: {fig.storms[:3]}")
    return problems
