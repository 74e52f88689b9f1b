"""A discrete-event simulator of the read plan (simulated time, no sleeping).

Written for this suite, from the engine's source (`_watcher.Watcher`, `_batch.Batch`):
`ReadPlan`s sharing one `ModelTiming`, each observing the create's answer at its start,
then read at `next_read_at`; each read is answered `latency` later from the task's true
duration and a (hostile) progress / estimate model. `in_flight` slots refill as tasks are
seen done; once every task is created and at most `in_flight // 10` run, the rest are read
in a hurry (`HURRY_COSTS`, planned sooner). After each answer, the model's news is heeded
as the watcher does (`fell_quiet`, `news`, a record grown to 16, 32, ...).

The same tasks (durations, estimates, progress models and their noise seeds) are run by
the engine, by a hand-written 1 s loop (each task read at 1 s, 2 s, ... from its start),
and by the oracle (each task seen done the instant it ends).

`OLD_GET_COSTS` builds the code before the band price under attack (`band_cost=None` on
`GET_COSTS`). (The other change this suite attacked, a task past a record's top read
where its self-agreeing progress put the end, was reverted after it: its tests now hold
the shipped code to the promises it broke.)
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import attrs

from evolink import _estimate, _watcher
from evolink._batch import HURRY_SHARE
from evolink._estimate import GET_COSTS, HURRY_COSTS, ReadCosts, ReadPlan
from evolink._models import TaskStatus
from evolink._timing import ModelTiming

#: The 1 s loop's step.
LOOP = 1.0


@attrs.frozen
class Answer:
    """As much of a `Task` as `ReadPlan.observe` looks at."""

    status: TaskStatus
    progress: int
    estimated_time: float | None

    @property
    def is_terminal(self) -> bool:
        return self.status is TaskStatus.COMPLETED


#: progress(age, duration, task's own rng, task's params) -> whole percent (0-99).
ProgressFn = Callable[[float, "Spec"], int]


@dataclass
class Spec:
    """One task as the server has it."""

    duration: float
    estimate: float | None
    progress: ProgressFn
    seed: int
    params: dict = field(default_factory=dict)
    rng: random.Random = field(init=False)
    last: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def fresh(self) -> Spec:
        return Spec(self.duration, self.estimate, self.progress, self.seed, dict(self.params))

    def answer(self, age: float, pending: float) -> Answer:
        if age >= self.duration:
            return Answer(TaskStatus.COMPLETED, 100, self.estimate)
        if age < pending:
            return Answer(TaskStatus.PENDING, 0, self.estimate)
        p = max(0, min(99, int(self.progress(age, self))))
        return Answer(TaskStatus.PROCESSING, p, self.estimate)


@dataclass
class Result:
    wall: float
    reads: float  # GETs a task (after the create)
    delay: float  # mean seconds between the end and the read that saw it
    max_delay: float
    max_ratio: float  # the largest delay as a share of the task's duration
    delays: list[float]
    durations: list[float]

    def row(self) -> str:
        return (
            f"wall {self.wall:8.2f} reads {self.reads:5.2f} delay {self.delay:6.3f} "
            f"max {self.max_delay:7.2f} ratio {self.max_ratio:5.2f}"
        )


@dataclass
class _Watched:
    spec: Spec
    plan: ReadPlan | None
    server_start: float
    started: float
    due: float
    status: TaskStatus
    reading: bool = False
    reads: int = 0
    k: int = 0  # the loop's read count


class Run:
    """One batch of `specs`, `in_flight` at a time, by `policy` ("engine" or "loop")."""

    def __init__(
        self,
        specs: list[Spec],
        *,
        policy: str = "engine",
        costs: ReadCosts = GET_COSTS,
        in_flight: int = 100,
        latency: float = 0.005,
        pending: float = 0.2,
        hurry: bool = True,
        timing: ModelTiming | None = None,
    ) -> None:
        self.specs = [spec.fresh() for spec in specs]
        self.policy, self.costs = policy, costs
        self.in_flight, self.latency, self.pending = in_flight, latency, pending
        self.hurry_on = hurry
        self.timing = ModelTiming() if timing is None else timing
        self.heap: list[tuple[float, int, str, int]] = []
        self.seq = 0
        self.watched: dict[int, _Watched] = {}
        self.created = 0
        self.hurried = False
        self.delays: list[float] = [math.nan] * len(specs)
        self.reads = 0
        self.end_time = 0.0

    # -- events -------------------------------------------------------------------------

    def push(self, at: float, kind: str, i: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, i))

    def schedule(self, i: int, due: float) -> None:
        self.watched[i].due = due
        self.push(due, "read", i)

    def create(self, now: float) -> None:
        """A create sent at `now`: the server starts it half a latency on, it answers a
        latency on."""
        i = self.created
        self.created += 1
        spec = self.specs[i]
        server_start = now + self.latency / 2
        started = now + self.latency
        self.push(started, "created", i)
        self.watched[i] = _Watched(spec, None, server_start, started, math.inf, TaskStatus.PENDING)

    def on_created(self, i: int, now: float) -> None:
        w = self.watched[i]
        answer = w.spec.answer(now - self.latency / 2 - w.server_start, self.pending)
        w.status = answer.status
        if self.policy == "loop":
            w.k = 1
            self.schedule(i, w.started + LOOP)
            return
        costs = HURRY_COSTS if self.hurried else self.costs
        w.plan = ReadPlan(started=w.started, timing=self.timing, costs=costs)
        w.plan.observe(answer, now)  # type: ignore[arg-type]
        planned = w.plan.next_read_at(now, answer.status)
        self.schedule(i, planned)

    def on_read(self, i: int, now: float) -> None:
        w = self.watched.get(i)
        if w is None or w.reading or w.due != now:
            return  # stale
        w.reading = True
        self.push(now + self.latency, "answer", i)

    def on_answer(self, i: int, now: float) -> None:
        w = self.watched[i]
        w.reading = False
        w.reads += 1
        self.reads += 1
        answer = w.spec.answer(now - self.latency / 2 - w.server_start, self.pending)
        w.status = answer.status
        if w.plan is not None:
            w.plan.observe(answer, now)  # type: ignore[arg-type]
        if answer.is_terminal:
            del self.watched[i]
            self.delays[i] = now - (w.server_start + w.spec.duration)
            self.end_time = max(self.end_time, now)
            if w.plan is not None:
                self.heed(now, terminal=True)
            if self.created < len(self.specs):
                self.create(now)
            self.maybe_hurry(now)
            return
        if self.policy == "loop":
            w.k += 1
            self.schedule(i, w.started + w.k * LOOP)
            return
        self.heed(now, terminal=False)
        assert w.plan is not None
        w.plan.costs = HURRY_COSTS if self.hurried else self.costs
        self.schedule(i, w.plan.next_read_at(now, answer.status))

    # -- the watcher's care of the plan ---------------------------------------------------

    def heed(self, now: float, *, terminal: bool) -> None:
        timing = self.timing
        if timing.fell_quiet():
            for i, w in self.watched.items():
                if not w.reading and w.plan is not None and w.plan.looks_part_way():
                    self.schedule(i, w.plan.next_read_at(now, w.status))
        restarted, suspected = timing.news()
        if restarted:
            for i, w in self.watched.items():
                if w.reading or w.plan is None:
                    continue
                soonest = w.plan.earliest(now)
                if w.plan.follows(restarted) and soonest < w.due:
                    self.schedule(i, soonest)
        elif suspected or (terminal and _watcher._grown(timing.ended)):
            self.replan(now)

    def replan(self, now: float) -> None:
        for i, w in list(self.watched.items()):
            if w.reading or w.plan is None:
                continue
            planned = w.plan.next_read_at(now, w.status)
            if planned < w.due:
                self.schedule(i, planned)

    def maybe_hurry(self, now: float) -> None:
        if not self.hurry_on or self.hurried or self.policy == "loop":
            return
        if self.created < len(self.specs):
            return
        if len(self.watched) <= max(1, self.in_flight // HURRY_SHARE):
            self.hurried = True
            for i, w in list(self.watched.items()):
                if w.reading or w.plan is None:
                    continue
                w.plan.costs = HURRY_COSTS
                planned = w.plan.next_read_at(now, w.status)
                if planned < w.due:
                    self.schedule(i, planned)

    # -- the run --------------------------------------------------------------------------

    def run(self) -> Result:
        for _ in range(min(self.in_flight, len(self.specs))):
            self.create(0.0)
        handlers = {"created": self.on_created, "read": self.on_read, "answer": self.on_answer}
        while self.heap:
            at, _, kind, i = heapq.heappop(self.heap)
            handlers[kind](i, at)
        durations = [spec.duration for spec in self.specs]
        ratios = [d / max(dur, 1e-9) for d, dur in zip(self.delays, durations, strict=True)]
        return Result(
            wall=self.end_time,
            reads=self.reads / len(self.specs),
            delay=statistics.fmean(self.delays),
            max_delay=max(self.delays),
            max_ratio=max(ratios),
            delays=list(self.delays),
            durations=durations,
        )


def oracle(specs: list[Spec], in_flight: int = 100, latency: float = 0.005) -> float:
    """Wall of the same batch seen done the instant each task ends (same create latency)."""
    slots = [0.0] * min(in_flight, len(specs))
    heapq.heapify(slots)
    end = 0.0
    for spec in specs:
        free = heapq.heappop(slots)
        done = free + latency / 2 + spec.duration
        end = max(end, done)
        heapq.heappush(slots, done)
    return end


# -- the code before each change -----------------------------------------------------------

OLD_GET_COSTS = attrs.evolve(GET_COSTS, band_cost=None)


def simulate(
    specs: list[Spec],
    *,
    band_cost: bool = True,
    in_flight: int = 100,
    latency: float = 0.005,
) -> Result:
    costs = GET_COSTS if band_cost else OLD_GET_COSTS
    return Run(specs, costs=costs, in_flight=in_flight, latency=latency).run()


def loop(specs: list[Spec], *, in_flight: int = 100, latency: float = 0.005) -> Result:
    return Run(specs, policy="loop", in_flight=in_flight, latency=latency).run()


# -- servers ------------------------------------------------------------------------------


def linear(age: float, spec: Spec) -> int:
    return math.floor(100 * age / spec.duration)


def jittery(age: float, spec: Spec) -> int:
    """Linear progress times lognormal noise (sigma `params['sigma']`) at each read, never
    going back (a server that smooths its counter upward only)."""
    noise = math.exp(spec.rng.gauss(0.0, spec.params.get("sigma", 0.25)))
    p = math.floor(100 * min(0.99, age / spec.duration * noise))
    spec.last = max(spec.last, p)
    return spec.last


def paused(age: float, spec: Spec) -> int:
    """Progress that runs, pauses (`params['pauses']`: (at age, for seconds)), and runs
    again: the task's duration includes its pauses."""
    work = spec.duration - sum(length for _, length in spec.params["pauses"])
    done = age
    for at, length in spec.params["pauses"]:
        if age > at:
            done -= min(length, age - at)
    return math.floor(100 * done / work)


def finishing_tail(age: float, spec: Spec) -> int:
    """Linear to 99 % at `params['body']` seconds, then 99 until the end (a random tail)."""
    return min(99, math.floor(100 * age / spec.params["body"]))


def lying_share(age: float, spec: Spec) -> int:
    """Reports a fixed share `params['share']` of the truth (agrees with itself: it
    predicts the end at duration / share), then jumps to done."""
    return math.floor(100 * spec.params["share"] * age / spec.duration)


def stall_then_done(age: float, spec: Spec) -> int:
    """Linear at a pace that predicts `params['says']` seconds, stalls at `params['stall']`
    percent for good, and the task ends at its duration."""
    p = math.floor(100 * age / spec.params["says"])
    return min(p, spec.params["stall"])


def make(
    n: int,
    seed: int,
    duration: Callable[[random.Random], float],
    progress: ProgressFn = linear,
    *,
    estimate: Callable[[random.Random, float], float | None] | None = None,
    params: Callable[[random.Random, float], dict] | None = None,
) -> list[Spec]:
    rng = random.Random(seed)
    specs = []
    for k in range(n):
        d = duration(rng)
        e = None if estimate is None else estimate(rng, d)
        p = {} if params is None else params(rng, d)
        specs.append(Spec(d, e, progress, seed * 100003 + k, p))
    return specs


def honest_estimate(rng: random.Random, d: float) -> float:
    return max(1, round(d * rng.uniform(0.85, 1.15)))


def compare(specs: list[Spec], in_flight: int = 100) -> dict[str, Result | float]:
    """The engine as it is, the band price undone, the loop, the oracle."""
    return {
        "new": simulate(specs, in_flight=in_flight),
        "old_band": simulate(specs, band_cost=False, in_flight=in_flight),
        "loop": loop(specs, in_flight=in_flight),
        "oracle": oracle(specs, in_flight=in_flight),
    }


def table(name: str, runs: dict[str, Result | float]) -> str:
    oracle_wall = runs["oracle"]
    lines = [f"{name}: oracle {oracle_wall:.2f}"]
    for key, value in runs.items():
        if isinstance(value, Result):
            lines.append(f"  {key:8s} w/o {value.wall / oracle_wall:6.4f} {value.row()}")
    return "\n".join(lines)


_ = _estimate  # (the module the changes live in)
