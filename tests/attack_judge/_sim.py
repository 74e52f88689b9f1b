"""A discrete-event simulator of the read plan, written for this attack suite.

Each task is a `Spec`: its true duration, how it reports progress (a function of the share
of its duration done, to a whole percent), its estimate (or None) and its model. A batch runs
the specs in order with at most `in_flight` at once; a new task is created the instant one
is seen done. Three readers are run on the same specs:

- ours: one `ReadPlan` per task, one `ModelTiming` per model (shared, optionally carried
  over from an earlier batch: a client's life), answering each read `latency` after it is
  sent, as the watcher does: a model that changed has the tasks following the restarted
  records read at once, a suspicion or a record grown to 16, 32, ... ends has the waiting
  tasks planned again (sooner only), a model gone quiet has its part-way first reads
  planned again, and the last `in_flight // 10` tasks are read on `HURRY_COSTS`;
- the 1 s loop: each task read at started + 1, 2, 3, ... s;
- the oracle: each task seen done the instant it ends.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from evolink._estimate import GET_COSTS, HURRY_COSTS, ReadCosts, ReadPlan
from evolink._models import TaskStatus
from evolink._timing import MIN_SAMPLES, ModelTiming

Progress = Callable[[float], int]
LATENCY = 0.005
HURRY_SHARE = 10


def linear(fraction: float) -> int:
    """Honest linear progress in whole percents, rounded down."""
    return math.floor(100 * fraction)


def share_of(truth: float) -> Progress:
    """Progress that reports `truth` of the real share done (0.5: half the truth)."""

    def percent(fraction: float) -> int:
        return math.floor(100 * truth * fraction)

    return percent


def power(exponent: float) -> Progress:
    """Progress along `fraction ** exponent` (3: slow at first, fast at the end)."""

    def percent(fraction: float) -> int:
        return math.floor(100 * fraction**exponent)

    return percent


def stepped(step: int) -> Progress:
    """Linear progress rounded down to a multiple of `step`."""

    def percent(fraction: float) -> int:
        return math.floor(100 * fraction) // step * step

    return percent


def no_progress(fraction: float) -> int:
    """No progress shown: 0 until the task ends."""
    del fraction
    return 0


def noisy_linear(rng: random.Random, sigma: float) -> Progress:
    """Linear progress whose rate is off by a per-task factor `exp(sigma Z)`, capped at 99:
    the task's progress is honest on average, noisy task to task."""
    rate = math.exp(rng.gauss(0.0, sigma))

    def percent(fraction: float) -> int:
        return min(99, math.floor(100 * fraction * rate))

    return percent


@dataclass(frozen=True)
class Spec:
    duration: float
    progress: Progress = linear
    estimate: float | None = None
    model: str = "m"


@dataclass(frozen=True)
class _Answer:
    """As much of a `Task` as `ReadPlan.observe` looks at."""

    status: TaskStatus
    progress: int
    estimated_time: float | None

    @property
    def is_terminal(self) -> bool:
        return self.status is TaskStatus.COMPLETED


@dataclass
class Result:
    wall: float
    reads: int
    delays: list[float]  # per task, seconds seen done after its end
    relative: list[float]  # per task, the delay in task durations
    changes: dict[str, int]
    suspicions: dict[str, int]
    timings: dict[str, ModelTiming] = field(repr=False)
    #: Per model, when (clock) the reads of its tasks saw a record start again.
    restarted_at: dict[str, list[float]] = field(default_factory=dict)
    #: Each task's start and end times (seen done), ours.
    started: list[float] = field(default_factory=list)

    @property
    def tasks(self) -> int:
        return len(self.delays)

    @property
    def reads_per_task(self) -> float:
        return self.reads / self.tasks

    @property
    def mean_delay(self) -> float:
        return statistics.fmean(self.delays)

    @property
    def worst_delay(self) -> float:
        return max(self.delays)

    @property
    def worst_relative(self) -> float:
        return max(self.relative)

    def mean_delay_of(self, indices: Sequence[int]) -> float:
        return statistics.fmean(self.delays[i] for i in indices)


def run_ours(
    specs: Sequence[Spec],
    *,
    in_flight: int = 100,
    costs: ReadCosts = GET_COSTS,
    latency: float = LATENCY,
    timings: dict[str, ModelTiming] | None = None,
    hurry: bool = True,
) -> Result:
    """Our plan on `specs`, as a batch (`timings`: the client's records so far)."""
    return _Ours(specs, in_flight, costs, latency, timings, hurry).run()


class _Ours:
    def __init__(
        self,
        specs: Sequence[Spec],
        in_flight: int,
        costs: ReadCosts,
        latency: float,
        timings: dict[str, ModelTiming] | None,
        hurry: bool,
    ) -> None:
        self.specs, self.in_flight, self.costs, self.latency = specs, in_flight, costs, latency
        self.hurry_on = hurry
        self.timings = {} if timings is None else timings
        self.changes_before = {m: t.changes for m, t in self.timings.items()}
        self.suspicions_before = {m: t.suspicions for m, t in self.timings.items()}
        self.due: list[tuple[float, int, int]] = []
        self.version: dict[int, int] = {}
        self.due_at: dict[int, float] = {}
        self.plans: dict[int, ReadPlan] = {}
        self.running: set[int] = set()
        self.reads = 0
        self.delays = [0.0] * len(specs)
        self.relative = [0.0] * len(specs)
        self.started = [0.0] * len(specs)
        self.restarted_at: dict[str, list[float]] = {}
        self.last = 0.0

    def timing(self, model: str) -> ModelTiming:
        return self.timings.setdefault(model, ModelTiming())

    def schedule(self, i: int, at: float) -> None:
        self.due_at[i] = at
        self.version[i] = self.version.get(i, -1) + 1
        heapq.heappush(self.due, (at, self.version[i], i))

    def sooner(self, i: int, now: float) -> None:
        at = self.plans[i].next_read_at(now, TaskStatus.PROCESSING)
        if at < self.due_at[i]:
            self.schedule(i, at)

    def start(self, i: int, now: float) -> None:
        spec = self.specs[i]
        plan = ReadPlan(started=now, timing=self.timing(spec.model), costs=self.costs)
        plan.observe(_Answer(TaskStatus.PENDING, 0, spec.estimate), now)  # type: ignore[arg-type]
        self.plans[i] = plan
        self.started[i] = now
        self.running.add(i)
        self.schedule(i, plan.next_read_at(now, TaskStatus.PENDING))

    def heed(self, i: int, now: float, *, ended: bool) -> None:
        """As `Watcher._heed` does for the read of task `i` of its model."""
        model = self.specs[i].model
        timing = self.timing(model)
        mine = [j for j in self.running if j != i and self.specs[j].model == model]
        if timing.fell_quiet():
            for j in mine:
                if self.plans[j].looks_part_way():
                    self.schedule(j, self.plans[j].next_read_at(now, TaskStatus.PROCESSING))
        restarted, suspected = timing.news()
        if restarted:
            self.restarted_at.setdefault(model, []).append(now)
            for j in mine:
                soonest = self.plans[j].earliest(now)
                if self.plans[j].follows(restarted) and soonest < self.due_at[j]:
                    self.schedule(j, soonest)
        elif suspected or (ended and _grown(timing.ended)):
            for j in sorted(mine, key=lambda j: self.due_at[j]):
                self.sooner(j, now)

    def run(self) -> Result:
        specs = self.specs
        following = min(self.in_flight, len(specs))
        for i in range(following):
            self.start(i, 0.0)
        hurried = False
        while self.due:
            at, version, i = heapq.heappop(self.due)
            if version != self.version[i]:
                continue
            plan, spec = self.plans[i], specs[i]
            now, age = at + self.latency, at - plan.started
            self.reads += 1
            if age < spec.duration:
                percent = spec.progress(age / spec.duration)
                answer = _Answer(TaskStatus.PROCESSING, percent, spec.estimate)
                plan.observe(answer, now)  # type: ignore[arg-type]
                self.schedule(i, plan.next_read_at(now, TaskStatus.PROCESSING))
                self.heed(i, now, ended=False)
                continue
            done = _Answer(TaskStatus.COMPLETED, 100, spec.estimate)
            plan.observe(done, now)  # type: ignore[arg-type]
            self.running.discard(i)
            self.heed(i, now, ended=True)
            self.delays[i] = now - (plan.started + spec.duration)
            self.relative[i] = self.delays[i] / spec.duration
            self.last = max(self.last, now)
            if following < len(specs):
                self.start(following, now)
                following += 1
            elif (
                self.hurry_on
                and not hurried
                and len(self.running) <= max(1, self.in_flight // HURRY_SHARE)
            ):
                hurried = True
                for j in sorted(self.running, key=lambda j: self.due_at[j]):
                    self.plans[j].costs = HURRY_COSTS
                    self.sooner(j, now)
        return Result(
            wall=self.last,
            reads=self.reads,
            delays=self.delays,
            relative=self.relative,
            changes={m: t.changes - self.changes_before.get(m, 0) for m, t in self.timings.items()},
            suspicions={
                m: t.suspicions - self.suspicions_before.get(m, 0) for m, t in self.timings.items()
            },
            timings=self.timings,
            restarted_at=self.restarted_at,
            started=self.started,
        )


def _grown(ended: int) -> bool:
    return ended >= MIN_SAMPLES and ended & (ended - 1) == 0


def run_loop(
    specs: Sequence[Spec], *, in_flight: int = 100, step: float = 1.0, latency: float = LATENCY
) -> Result:
    """The hand-written loop: every task read at started + step, + 2 step, ..."""
    slots = [0.0] * min(in_flight, len(specs))
    heapq.heapify(slots)
    delays, relative, reads, wall = [], [], 0, 0.0
    for spec in specs:
        started = heapq.heappop(slots)
        k = max(1, math.ceil(spec.duration / step - 1e-12))
        if k * step < spec.duration:
            k += 1
        seen = started + k * step + latency
        reads += k
        delays.append(seen - started - spec.duration)
        relative.append(delays[-1] / spec.duration)
        wall = max(wall, seen)
        heapq.heappush(slots, seen)
    return Result(wall, reads, delays, relative, {}, {}, {})


def oracle(specs: Sequence[Spec], *, in_flight: int = 100) -> float:
    """Every task started the instant a slot frees, and seen done the instant it ends."""
    slots = [0.0] * min(in_flight, len(specs))
    wall = 0.0
    for spec in specs:
        end = heapq.heappop(slots) + spec.duration
        heapq.heappush(slots, end)
        wall = max(wall, end)
    return wall


@dataclass
class Match:
    """Ours, the loop and the oracle on the same specs."""

    ours: Result
    loop: Result
    oracle: float

    @property
    def vs_loop(self) -> float:
        return self.ours.wall / self.loop.wall

    @property
    def vs_oracle(self) -> float:
        return self.ours.wall / self.oracle

    @property
    def loop_vs_oracle(self) -> float:
        return self.loop.wall / self.oracle

    def line(self) -> str:
        o, lp = self.ours, self.loop
        return (
            f"wall ours {o.wall:.1f}s loop {lp.wall:.1f}s oracle {self.oracle:.1f}s "
            f"(ours/loop {self.vs_loop:.4f}, ours/oracle {self.vs_oracle:.4f}, "
            f"loop/oracle {self.loop_vs_oracle:.4f}); reads/task {o.reads_per_task:.2f} "
            f"(loop {lp.reads_per_task:.2f}); delay mean {o.mean_delay:.3f}s "
            f"worst {o.worst_delay:.2f}s ({o.worst_relative:.2f} durations; "
            f"loop mean {lp.mean_delay:.3f}s); restarts {o.changes}"
        )


def match(specs: Sequence[Spec], *, in_flight: int = 100, **ours: object) -> Match:
    return Match(
        run_ours(specs, in_flight=in_flight, **ours),  # type: ignore[arg-type]
        run_loop(specs, in_flight=in_flight),
        oracle(specs, in_flight=in_flight),
    )


def uniform_specs(
    rng: random.Random,
    n: int,
    low: float,
    high: float,
    *,
    progress: Progress | Callable[[random.Random], Progress] = linear,
    estimate: Callable[[random.Random, float], float | None] | None = None,
    model: str = "m",
    per_task: bool = False,
) -> list[Spec]:
    """`n` tasks of `low`-`high` s; `per_task`: `progress` is a factory called per task."""
    specs = []
    for _ in range(n):
        duration = rng.uniform(low, high)
        prog = progress(rng) if per_task else progress  # type: ignore[call-arg,arg-type]
        est = None if estimate is None else estimate(rng, duration)
        specs.append(Spec(duration, prog, est, model))  # type: ignore[arg-type]
    return specs


def honest_estimate(rng: random.Random, duration: float) -> float:
    """The simulator's default: the truth times 1 +- up to 15 %, whole seconds, at least 1."""
    return max(1, round(duration * (1 + rng.uniform(-0.15, 0.15))))
