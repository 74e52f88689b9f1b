"""A plan-level discrete-event simulator of many waits on shared `ModelTiming`s.

Simulated time only: every task is a `ReadPlan` driven as the watcher drives one (the
create's answer observed at the start, then a read wherever `next_read_at` says), with the
server's answers made from a true duration. Nothing here sleeps or does I/O.

Written for this suite alone (no helper of another test directory is used).
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from evolink import _estimate
from evolink._estimate import (
    GET_COSTS,
    MAX_DELAY,
    MAX_WAIT,
    MIN_AGE_SHARE,
    MIN_DELAY,
    NEAR_FLOOR,
    ReadCosts,
    ReadPlan,
)
from evolink._models import Task, TaskStatus
from evolink._timing import ModelTiming

EPS = 1e-6


@contextlib.contextmanager
def rule(enabled: bool) -> Iterator[None]:
    """The unplaced rule on (as shipped) or off (`UNFORESEEN` = inf: never passes over)."""
    saved = _estimate.UNFORESEEN
    if not enabled:
        _estimate.UNFORESEEN = math.inf
    try:
        yield
    finally:
        _estimate.UNFORESEEN = saved


@dataclass
class Spec:
    """One task as the server runs it."""

    duration: float  # math.inf: stuck, never ends
    estimate: float | None = None
    #: The estimate comes only with the first read after the create's answer.
    estimate_late: bool = False
    #: Whether the server reports linear progress (else 0 until done).
    progress: bool = False
    model: str = "m"
    #: The wait is given up (its plan dropped, never ended) at this age.
    abandon_at: float | None = None
    #: Queued this long (status pending, progress 0) before processing.
    queued: float = 0.0
    #: Which stream it belongs to ("main"; "side": started beside the main stream, not
    #: in one of its slots).
    tag: str = "main"


@dataclass
class Run:
    """One task's wait, as the simulator saw it."""

    number: int
    spec: Spec
    started: float
    plan: ReadPlan | None
    reads: int = 0
    seen_done: float | None = None
    abandoned: bool = False
    last_read: float | None = None

    @property
    def end(self) -> float:
        return self.started + self.spec.duration

    @property
    def delay(self) -> float:
        assert self.seen_done is not None
        return self.seen_done - self.end


@dataclass
class Sim:
    """Tasks on shared `ModelTiming`s (one per model), read as their plans say."""

    costs: ReadCosts = GET_COSTS
    timings: dict[str, ModelTiming] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    #: Called when a task is seen done (or given up): `on_end(sim, now, run)`.
    on_end: Callable[[Sim, float, Run], None] | None = None
    #: CPU seconds spent in `next_read_at`, and the count and worst of them.
    cpu: float = 0.0
    decisions: int = 0
    worst: float = 0.0
    now: float = 0.0
    _heap: list[tuple[float, int, int, int]] = field(default_factory=list)
    _seq: int = 0
    _kind_abandon: int = 1
    #: Tasks that will end or be given up and have not yet: `run` stops at 0.
    live: int = 0
    #: Plans alive (started, not ended nor given up).
    alive: int = 0
    #: Called after every event: `watch(sim)`.
    watch: Callable[[Sim], None] | None = None
    _tasks: dict[tuple[int, int, float | None], Task] = field(default_factory=dict)

    def timing(self, model: str) -> ModelTiming:
        return self.timings.setdefault(model, ModelTiming())

    def _task(self, status: TaskStatus, progress: int, estimate: float | None) -> Task:
        key = (list(TaskStatus).index(status), progress, estimate)
        task = self._tasks.get(key)
        if task is None:
            data: dict[str, object] = {
                "id": "task-unified-1-abc",
                "status": status.value,
                "progress": progress,
            }
            if estimate is not None:
                data["task_info"] = {"estimated_time": estimate}
            task = Task.from_dict(data)
            self._tasks[key] = task
        return task

    def _push(self, at: float, run: Run, kind: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, run.number, kind))

    def start(self, spec: Spec, at: float | None = None) -> Run:
        """Create a task at `at` (default: now): the plan, the create's answer, the first
        planned read."""
        now = self.now if at is None else at
        plan = ReadPlan(started=now, timing=self.timing(spec.model), costs=self.costs)
        run = Run(number=len(self.runs), spec=spec, started=now, plan=plan)
        self.runs.append(run)
        self.alive += 1
        if math.isfinite(spec.duration) or spec.abandon_at is not None:
            self.live += 1
        estimate = None if spec.estimate_late else spec.estimate
        status = TaskStatus.PENDING
        plan.observe(self._task(status, 0, estimate), now)
        self._plan_next(run, now, status, first=True)
        if spec.abandon_at is not None and spec.abandon_at < spec.duration:
            self._push(now + spec.abandon_at, run, self._kind_abandon)
        return run

    def _plan_next(self, run: Run, now: float, status: TaskStatus, *, first: bool) -> None:
        plan = run.plan
        assert plan is not None
        t0 = time.perf_counter()
        at = plan.next_read_at(now, status)
        spent = time.perf_counter() - t0
        self.cpu += spent
        self.decisions += 1
        self.worst = max(self.worst, spent)
        gap = at - now
        age = now - run.started
        if not math.isfinite(at):
            self.violations.append(f"task {run.number}: next read at {at}")
        elif first:
            if gap > MAX_DELAY + EPS or gap < MIN_DELAY - EPS:
                self.violations.append(f"task {run.number}: first gap {gap:.4f}")
        else:
            floor = max(MIN_DELAY, min(MIN_AGE_SHARE * age, NEAR_FLOOR))
            if gap > MAX_WAIT + EPS or gap < floor - EPS:
                self.violations.append(
                    f"task {run.number}: gap {gap:.4f} at age {age:.3f} (floor {floor:.4f})"
                )
        self._push(at, run)

    def _read(self, run: Run, now: float) -> None:
        plan = run.plan
        assert plan is not None
        spec = run.spec
        run.reads += 1
        run.last_read = now
        age = now - run.started
        if age >= spec.duration:
            estimate = None if (spec.estimate_late and run.reads == 0) else spec.estimate
            plan.observe(self._task(TaskStatus.COMPLETED, 100, estimate), now)
            run.seen_done = now
            run.plan = None
            self.live -= 1
            self.alive -= 1
            if self.on_end is not None:
                self.on_end(self, now, run)
            return
        if age < spec.queued:
            status, progress = TaskStatus.PENDING, 0
        else:
            status = TaskStatus.PROCESSING
            progress = 0
            if spec.progress and math.isfinite(spec.duration):
                progress = min(99, int(100.0 * age / spec.duration))
        plan.observe(self._task(status, progress, spec.estimate), now)
        self._plan_next(run, now, status, first=False)

    def run(self, *, until: float = math.inf, ends: int | None = None) -> None:
        """Step events until `until`, or until `ends` tasks have been seen done."""
        done = sum(1 for r in self.runs if r.seen_done is not None)
        while self._heap:
            at, _, number, kind = self._heap[0]
            if at > until:
                break
            heapq.heappop(self._heap)
            run = self.runs[number]
            if run.plan is None:
                continue  # ended or given up: a stale event
            self.now = max(self.now, at)
            if kind == self._kind_abandon:
                run.plan = None  # dropped unended: the only reference goes
                run.abandoned = True
                self.live -= 1
                self.alive -= 1
                if self.on_end is not None:
                    self.on_end(self, self.now, run)
                if self.watch is not None:
                    self.watch(self)
                continue
            self._read(run, self.now)
            if self.watch is not None:
                self.watch(self)
            if run.seen_done is not None:
                done += 1
                if ends is not None and done >= ends:
                    break
            if self.live <= 0:
                break
        if self._heap and self._heap[0][0] <= until:
            self.now = max(self.now, self._heap[0][0])


@dataclass
class Figures:
    tasks: int
    reads: float  # mean reads a task (after the create's answer)
    delay: float  # mean seconds from the true end to seen done
    rel_delay: float  # mean delay / duration
    p90_rel_delay: float

    def __str__(self) -> str:
        return (
            f"n={self.tasks} reads/task={self.reads:.2f} delay={self.delay:.3f}s "
            f"rel={100 * self.rel_delay:.2f}% p90rel={100 * self.p90_rel_delay:.2f}%"
        )


def figures(runs: list[Run], tag: str | None = "main") -> Figures:
    done = [r for r in runs if r.seen_done is not None and tag in (None, r.spec.tag)]
    assert done, "no task ended"
    rel = sorted(r.delay / r.spec.duration for r in done)
    return Figures(
        tasks=len(done),
        reads=sum(r.reads for r in done) / len(done),
        delay=sum(r.delay for r in done) / len(done),
        rel_delay=sum(rel) / len(rel),
        p90_rel_delay=rel[int(0.9 * (len(rel) - 1))],
    )


# --- workloads ---------------------------------------------------------------------------


def lognormal(median: float, sigma: float) -> Callable[[random.Random], float]:
    return lambda rng: median * math.exp(rng.gauss(0.0, sigma))


def steady(
    make: Callable[[random.Random, int], Spec],
    *,
    in_flight: int,
    total: int,
    costs: ReadCosts = GET_COSTS,
    seed: int = 1,
    sim: Sim | None = None,
    side: Callable[[random.Random], Spec | None] | None = None,
) -> Sim:
    """`in_flight` tasks at once, each replaced as it ends (or is given up), until `total`
    have been started; run until every task that can end has (stuck ones are read until
    then). `side`: with each main task, maybe one more task beside the stream (tag
    "side"), not replaced as it ends."""
    rng = random.Random(seed)
    side_rng = random.Random(seed + 1000)
    sim = sim or Sim(costs=costs)
    started = [0]

    def begin(s: Sim, now: float) -> None:
        started[0] += 1
        s.start(make(rng, started[0]), now)
        extra = None if side is None else side(side_rng)
        if extra is not None:
            extra.tag = "side"
            s.start(extra, now)

    def replace(s: Sim, now: float, run: Run) -> None:
        if run.spec.tag == "main" and started[0] < total:
            begin(s, now)

    sim.on_end = replace
    base = sim.now
    for _ in range(in_flight):
        begin(sim, base + rng.uniform(0.0, 0.05))
    sim.run(until=_horizon(sim))
    return sim


def cohort(
    make: Callable[[random.Random, int], Spec],
    *,
    n: int,
    costs: ReadCosts = GET_COSTS,
    seed: int = 1,
    sim: Sim | None = None,
    spread: float = 0.2,
) -> Sim:
    """`n` waits created together (request handlers): within `spread` seconds."""
    rng = random.Random(seed)
    sim = sim or Sim(costs=costs)
    base = sim.now
    for k in range(n):
        sim.start(make(rng, k), base + rng.uniform(0.0, spread))
    sim.run(until=_horizon(sim))
    return sim


def warm_then_cohort(
    make: Callable[[random.Random, int], Spec],
    *,
    n: int,
    warm: int = 400,
    costs: ReadCosts = GET_COSTS,
    seed: int = 1,
) -> tuple[Sim, list[Run]]:
    """A client that has learned the model (a steady stream of `warm` tasks, 50 at once),
    then `n` waits created together: the sim and the cohort's runs."""
    sim = steady(make, in_flight=50, total=warm, costs=costs, seed=seed)
    first = len(sim.runs)
    sim.on_end = None
    sim.now += 5.0
    cohort(make, n=n, costs=costs, seed=seed + 1, sim=sim)
    return sim, sim.runs[first:]


def tasks(
    duration: Callable[[random.Random], float],
    *,
    estimate_sigma: float | None = None,
    estimate_share: float = 1.0,
    late: bool = False,
    progress: bool = False,
    model: str = "m",
) -> Callable[[random.Random, int], Spec]:
    """Tasks of `duration`, with an estimate (the duration times a lognormal error of
    `estimate_sigma`, to 0.1 s) for `estimate_share` of them."""

    def make(rng: random.Random, _k: int) -> Spec:
        d = duration(rng)
        estimate = None
        if estimate_sigma is not None and rng.random() < estimate_share:
            estimate = max(0.1, round(d * math.exp(rng.gauss(0.0, estimate_sigma)), 1))
        return Spec(
            duration=d, estimate=estimate, estimate_late=late, progress=progress, model=model
        )

    return make


def _horizon(sim: Sim) -> float:
    # `Sim.run` stops once every task that can end has (stuck ones are read until then).
    return sim.now + 1e7


def collect() -> None:
    gc.collect()


def report(text: str) -> None:
    """Figures for the log (`pytest -s` shows them)."""
    sys.stdout.write(text + "\n")
