"""The unplaced rule against its promises, workload by workload, on simulated time.

Each test runs the same workload (same seeds, same tasks) with the rule as shipped and
with it disabled (`UNFORESEEN` = inf), and compares reads a task (after the create's
answer) and the mean detection delay (seen done minus the true end). Every run also checks
each decision's bounds (`_sim.Sim._plan_next`): first read within `MAX_DELAY`, every later
one within `MAX_WAIT` and no sooner than `MIN_DELAY` or `MIN_AGE_SHARE` of the age
(`NEAR_FLOOR` where a record is held to a 1 s loop).

The figures in the docstrings are those measured on this code (rule on / rule off).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from _sim import (
    Figures,
    Run,
    Sim,
    Spec,
    cohort,
    figures,
    lognormal,
    report,
    rule,
    steady,
    tasks,
    warm_then_cohort,
)

from evolink._estimate import BATCH_COSTS, GET_COSTS, MAX_WAIT

Runs = Callable[[], tuple[Sim, list[Run]]]


def _pair(run: Runs, tag: str | None = "main") -> tuple[Figures, Figures]:
    """The workload's figures with the rule on, then off; no bound broken in either."""
    out = []
    for on in (True, False):
        with rule(on):
            sim, runs = run()
        assert not sim.violations, sim.violations[:5]
        out.append(figures(runs, tag))
    report(f"\n  rule on:  {out[0]}\n  rule off: {out[1]}")
    return out[0], out[1]


def _pooled(runs: list[Runs], tag: str | None = "main") -> tuple[Figures, Figures]:
    """Figures pooled over several seeds (means of the per-seed means)."""
    pairs = [_pair(run, tag) for run in runs]

    def mean(side: int) -> Figures:
        figs = [pair[side] for pair in pairs]
        return Figures(
            tasks=sum(f.tasks for f in figs),
            reads=sum(f.reads for f in figs) / len(figs),
            delay=sum(f.delay for f in figs) / len(figs),
            rel_delay=sum(f.rel_delay for f in figs) / len(figs),
            p90_rel_delay=sum(f.p90_rel_delay for f in figs) / len(figs),
        )

    on, off = mean(0), mean(1)
    report(f"\n  pooled on:  {on}\n  pooled off: {off}")
    return on, off


def _steady(make: Callable[[random.Random, int], Spec], skip: int, **kw: object) -> Runs:
    def run() -> tuple[Sim, list[Run]]:
        sim = steady(make, **kw)  # type: ignore[arg-type]
        return sim, sim.runs[skip:]

    return run


def _no_harm(on: Figures, off: Figures, *, reads: float = 1.05, delay: float = 1.10) -> None:
    assert on.reads <= reads * off.reads + 0.05, (on, off)
    assert on.delay <= delay * off.delay + 0.02, (on, off)
    assert on.rel_delay <= delay * off.rel_delay + 0.002, (on, off)


# --- what the rule is for: many waits created together ----------------------------------


def test_cohort_of_1000_with_estimates_get() -> None:
    """1,000 waits created together on a fresh client (estimates, sigma 0.3, no progress;
    GET reads): the rule cuts reads.

    Measured: on 3.66 reads/task, delay 2.66 s (13.2 %); off 4.13, 2.55 s (12.7 %)."""
    make = tasks(lognormal(20.0, 0.3), estimate_sigma=0.3)

    def run() -> tuple[Sim, list[Run]]:
        sim = cohort(make, n=1000)
        return sim, sim.runs

    on, off = _pair(run)
    # (The first version: 3.66 against 4.13. As the rule stands, 3.86 against 4.13: it
    # passes a record over only for one that remains, and only where its ends' tasks
    # were started over a spread the cohort's share shows, 0.2 s here against 20 s.)
    assert on.reads <= 0.97 * off.reads
    assert on.delay <= 1.05 * off.delay


def test_cohort_of_1000_with_estimates_batch() -> None:
    """The same cohort read by batch reads.

    Measured: on 5.63 reads/task, delay 1.33 s (7.2 %); off 6.15, 1.31 s (7.1 %)."""
    make = tasks(lognormal(20.0, 0.3), estimate_sigma=0.3)

    def run() -> tuple[Sim, list[Run]]:
        sim = cohort(make, n=1000, costs=BATCH_COSTS)
        return sim, sim.runs

    on, off = _pair(run)
    # (The first version: 5.63 against 6.15; as the rule stands 5.96 against 6.15.)
    assert on.reads <= 0.98 * off.reads
    assert on.delay <= 1.06 * off.delay


def test_cohort_of_1000_on_a_client_that_knows_the_model() -> None:
    """A client that learned the model (400 tasks, steady), then 1,000 waits at once, no
    estimates, batch reads: the cut is small here (the outlived-record rule already
    stops most of the chase), and costs little delay.

    Measured: on 4.88 reads/task, delay 1.46 s (8.0 %); off 5.03, 1.44 s (7.9 %). (In an
    earlier layout of the same workload: 5.35 vs 5.86 reads, 1.34 vs 1.27 s.)"""
    make = tasks(lognormal(20.0, 0.3))
    on, off = _pair(lambda: warm_then_cohort(make, n=1000, costs=BATCH_COSTS))
    assert on.reads <= off.reads
    assert on.delay <= 1.08 * off.delay


# --- what it must not hurt ----------------------------------------------------------------


def test_steady_batch_100_in_flight_with_estimates() -> None:
    """100 in flight, each replaced as it ends (estimates sigma 0.1, no progress: the
    estimates' record held to a 1 s loop). The rule never matters here.

    Measured: on 4.83 reads/task, delay 0.405 s (2.08 %); off 4.75, 0.399 s (2.06 %)."""
    make = tasks(lognormal(20.0, 0.3), estimate_sigma=0.1)
    on, off = _pair(_steady(make, 300, in_flight=100, total=1200))
    _no_harm(on, off, reads=1.02, delay=1.03)


def test_steady_batch_100_in_flight_without_estimates() -> None:
    """100 in flight, no hint at all (raw durations, GET).

    Measured: on 2.58 reads/task, delay 2.70 s (16.2 %); off 2.64, 2.61 s (15.8 %)."""
    make = tasks(lognormal(20.0, 0.3))
    on, off = _pair(_steady(make, 300, in_flight=100, total=1200))
    _no_harm(on, off)


def test_first_wave_of_a_batch() -> None:
    """A batch's first wave: 100 started at once on a fresh client, replaced as they end
    (batch reads, no estimates), 400 in all: the first wave and the whole batch.

    Measured (wave / all): on 18.4 / 12.6 reads/task, delay 1.29 / 0.86 s, makespan
    110.8 s; off 18.5 / 12.4, 1.30 / 0.83 s, 107.1 s (other seeds: makespan -2 %, +1 %)."""
    make = tasks(lognormal(20.0, 0.3))
    spans = []
    for on in (True, False):
        with rule(on):
            sim = steady(make, in_flight=100, total=400, costs=BATCH_COSTS)
        assert not sim.violations, sim.violations[:5]
        wave, everything = figures(sim.runs[:100]), figures(sim.runs)
        spans.append(max(r.seen_done or 0.0 for r in sim.runs))
        report(f"\n  rule {on}: wave {wave}\n    all {everything} makespan {spans[-1]:.1f}")
        if on:
            wave_on, all_on = wave, everything
        else:
            wave_off, all_off = wave, everything
    _no_harm(wave_on, wave_off)
    _no_harm(all_on, all_off, reads=1.06)
    assert spans[0] <= 1.05 * spans[1]


def test_first_wave_of_a_batch_with_estimates() -> None:
    """The same with estimates (sigma 0.2), first wave: the rule hardly fires.

    Measured: on = off: 5.81 reads/task, delay 1.50 s (8.5 %)."""
    make = tasks(lognormal(20.0, 0.3), estimate_sigma=0.2)

    def run() -> tuple[Sim, list[Run]]:
        sim = steady(make, in_flight=100, total=400, costs=BATCH_COSTS)
        return sim, sim.runs[:100]

    on, off = _pair(run)
    _no_harm(on, off)


def test_abandoned_waits_on_a_long_lived_client() -> None:
    """A long-lived client: 100 in flight, 30 % of waits given up part-way (plans dropped,
    no end learned), estimates sigma 0.1. Dropped plans leave the running set, so the
    rule sees only live waits.

    Measured: on = off: 4.80 reads/task, delay 0.396 s (2.04 %)."""

    def make(rng: random.Random, _k: int) -> Spec:
        d = 20.0 * math.exp(rng.gauss(0.0, 0.3))
        give_up = d * rng.uniform(0.3, 0.95) if rng.random() < 0.3 else None
        return Spec(
            duration=d, estimate=round(d * math.exp(rng.gauss(0.0, 0.1)), 1), abandon_at=give_up
        )

    on, off = _pair(_steady(make, 300, in_flight=100, total=1200))
    _no_harm(on, off)


@pytest.mark.soak  # (the default suite is near its 10 minutes)
def test_cohort_given_up_beside_a_small_stream() -> None:
    """A client that knows the model (400 tasks) runs a small stream (5 in flight, good
    estimates) when 1,000 waits arrive together and are given up at 18 s (most of them
    still running: their plans dropped, no end learned). The record's unplaced share is
    taken at its rebuilds, so the dropped cohort counts on until the next; the small
    stream is judged over its next 400 s. Pooled over 2 seeds.

    Measured per seed (stream delay on / off): 1.70 / 1.79 s, 1.29 / 1.30 s; reads 3.97 /
    4.09, 4.95 / 4.85."""

    def run_for(seed: int) -> Runs:
        def run() -> tuple[Sim, list[Run]]:
            rng = random.Random(seed)
            make = tasks(lognormal(20.0, 0.3), estimate_sigma=0.1)
            sim = steady(make, in_flight=50, total=400, seed=seed)
            t0 = sim.now + 5.0

            def task(tag: str, give_up: float | None = None) -> Spec:
                d = 20.0 * math.exp(rng.gauss(0.0, 0.3))
                estimate = round(d * math.exp(rng.gauss(0.0, 0.1)), 1)
                return Spec(duration=d, estimate=estimate, tag=tag, abandon_at=give_up)

            stream: list[Run] = []

            def replace(s: Sim, now: float, run: Run) -> None:
                if run.spec.tag == "stream" and now < t0 + 400.0:
                    stream.append(s.start(task("stream"), now))

            sim.on_end = replace
            for _ in range(5):
                stream.append(sim.start(task("stream"), t0))
            for _ in range(1000):
                sim.start(task("cohort", 18.0), t0 + rng.uniform(0.0, 0.2))
            sim.run(until=sim.now + 1e7)
            return sim, stream

        return run

    on, off = _pooled([run_for(1), run_for(2)], tag="stream")
    _no_harm(on, off)


@pytest.mark.soak  # (the default suite is near its 10 minutes)
def test_model_slows_down_threefold() -> None:
    """Steady 100 in flight; from the 600th task on the model takes 3x as long (the
    estimates do not follow). Measured over tasks 600-1400.

    Measured: on 11.01 reads/task, delay 2.22 s (3.68 %); off 11.07, 2.10 s (3.44 %)."""

    def make(rng: random.Random, k: int) -> Spec:
        d = 20.0 * math.exp(rng.gauss(0.0, 0.3))
        estimate = round(d * math.exp(rng.gauss(0.0, 0.1)), 1)
        return Spec(duration=3 * d if k > 600 else d, estimate=estimate)

    on, off = _pair(_steady(make, 600, in_flight=100, total=1400))
    _no_harm(on, off)


def test_model_speeds_up_threefold_without_estimates() -> None:
    """Steady 100 in flight, no hints; from the 600th task on the model takes a third as
    long. Pooled over 3 seeds.

    Measured per seed (delay on / off): 1.69 / 1.60 s, 1.95 / 1.98 s, 2.00 / 2.03 s;
    pooled 2.96 vs 2.98 reads/task, 1.88 vs 1.87 s (p90 of delay / duration 75 % vs
    77 %)."""

    def make(rng: random.Random, k: int) -> Spec:
        d = 20.0 * math.exp(rng.gauss(0.0, 0.3))
        return Spec(duration=d / 3 if k > 600 else d)

    on, off = _pooled([_steady(make, 600, in_flight=100, total=1400, seed=s) for s in (1, 2, 4)])
    _no_harm(on, off, delay=1.12)


def test_estimates_that_arrive_on_a_later_read() -> None:
    """The create's answer carries no estimate; the first read does (sigma 0.1).

    Measured: on 4.39 reads/task, delay 1.22 s (8.3 %); off 4.42, 1.19 s (8.2 %)."""
    make = tasks(lognormal(20.0, 0.3), estimate_sigma=0.1, late=True)
    on, off = _pair(_steady(make, 300, in_flight=100, total=1200))
    _no_harm(on, off)


@pytest.mark.soak  # (the default suite is near its 10 minutes)
def test_half_the_tasks_with_estimates() -> None:
    """Half the tasks carry an estimate (sigma 0.1), half none. Pooled over 2 seeds.

    Measured per seed (delay on / off): 1.52 / 1.48 s, 1.47 / 1.44 s (a third seed:
    1.59 / 1.56 s); reads 3.84 / 3.80, 3.61 / 3.59 (+1 %)."""
    make = tasks(lognormal(20.0, 0.3), estimate_sigma=0.1, estimate_share=0.5)
    on, off = _pooled([_steady(make, 300, in_flight=100, total=1200, seed=s) for s in (1, 2)])
    _no_harm(on, off)


@pytest.mark.soak  # (the default suite is near its 10 minutes)
def test_several_models_on_one_client() -> None:
    """Three models (medians 5, 20, 80 s) on one client, 300 in flight together.

    Measured: on 4.91 reads/task, delay 0.630 s (2.88 %); off 4.90, 0.621 s (2.85 %)."""
    rng_models = ("a", "b", "c")
    medians = {"a": 5.0, "b": 20.0, "c": 80.0}

    def make(rng: random.Random, _k: int) -> Spec:
        model = rng.choice(rng_models)
        d = medians[model] * math.exp(rng.gauss(0.0, 0.3))
        return Spec(duration=d, estimate=round(d * math.exp(rng.gauss(0.0, 0.1)), 1), model=model)

    on, off = _pair(_steady(make, 500, in_flight=300, total=1800))
    _no_harm(on, off)


def test_heavy_tailed_durations() -> None:
    """Lognormal durations, sigma 1.2 (no hints), 100 in flight. Pooled over 2 seeds.

    Measured per seed (delay on / off): 11.9 / 12.4 s, 11.3 / 12.5 s; reads 2.97 / 3.03,
    2.93 / 2.96."""
    make = tasks(lognormal(20.0, 1.2))
    on, off = _pooled([_steady(make, 400, in_flight=100, total=1600, seed=s) for s in (1, 2)])
    _no_harm(on, off)


def test_pareto_durations() -> None:
    """Pareto durations (alpha 1.3, from 5 s), no hints, 100 in flight. Pooled over 2
    seeds.

    Measured per seed (delay on / off): 4.25 / 3.85 s, 3.69 / 3.64 s; pooled 2.82 vs 2.85
    reads/task, 3.97 vs 3.74 s (+6 %; the one seed alone: +10 %)."""

    def make(rng: random.Random, _k: int) -> Spec:
        return Spec(duration=5.0 * rng.paretovariate(1.3))

    on, off = _pooled([_steady(make, 400, in_flight=100, total=1600, seed=s) for s in (1, 2)])
    _no_harm(on, off)


def test_bimodal_durations() -> None:
    """Half the tasks about 10 s, half about 60 s (no hints), 100 in flight.

    Measured: on 3.23 reads/task, delay 4.86 s (26.9 %); off 3.23, 4.99 s (28.2 %)."""

    def make(rng: random.Random, _k: int) -> Spec:
        median = 10.0 if rng.random() < 0.5 else 60.0
        return Spec(duration=median * math.exp(rng.gauss(0.0, 0.2)))

    on, off = _pair(_steady(make, 400, in_flight=100, total=1600))
    _no_harm(on, off)


def test_rare_slow_mode_without_estimates() -> None:
    """Failed on the rule's first version; passes now.

    (On the slow mode) 95 % of tasks about 10 s, 5 % about 400 s (no hints),
    100 in flight, pooled over 3 seeds; the fast and the slow mode judged apart.

    Measured, fast mode: on 2.49 reads/task, delay 1.41 s; off 2.53, 1.39 s (fine).
    Slow mode (about 54 tasks a seed): delay on 51.8 / 33.5 / 46.1 s, off 34.9 / 28.0 /
    47.6 s (pooled +19 %); reads on 20.9 / 23.2 / 20.0, off 24.2 / 22.5 / 21.1 (-5 %).
    Cause: the running set counted is every task entered since the record's earliest
    end's task, the ends only the last 160. In a steady stream, tasks running past `x`
    number about the arrival rate times the mean residual life at `x`, ends past `x`
    the rate times the record's window (160 / rate): where the residual life is longer
    than the window (about 47 s here, the slow mode's is 100 s and more), the share is
    inflated several-fold, passes 0.5, and the slow tasks are read a quarter of their age
    apart instead of on the record that holds their mode."""

    def make(rng: random.Random, _k: int) -> Spec:
        median = 10.0 if rng.random() < 0.95 else 400.0
        return Spec(duration=median * math.exp(rng.gauss(0.0, 0.3)))

    sides: dict[bool, dict[str, list[Figures]]] = {True: {}, False: {}}
    for seed in (1, 2, 3):
        for on in (True, False):
            with rule(on):
                sim = steady(make, in_flight=100, total=1600, seed=seed)
            assert not sim.violations, sim.violations[:5]
            runs = sim.runs[400:]
            for mode, part in (
                ("fast", [r for r in runs if r.spec.duration < 100.0]),
                ("slow", [r for r in runs if r.spec.duration >= 100.0]),
            ):
                sides[on].setdefault(mode, []).append(figures(part))
    for mode in ("fast", "slow"):
        for on in (True, False):
            report(f"\n  {mode} rule {on}: " + " | ".join(str(f) for f in sides[on][mode]))

    def mean(on: bool, mode: str, what: str) -> float:
        figs = sides[on][mode]
        return sum(getattr(f, what) for f in figs) / len(figs)

    for mode in ("fast", "slow"):
        assert mean(True, mode, "reads") <= 1.05 * mean(False, mode, "reads"), mode
        assert mean(True, mode, "delay") <= 1.10 * mean(False, mode, "delay"), mode


# --- stuck and slow minorities beside a stream with good estimates -----------------------


def _stuck(p: float) -> Callable[[random.Random], Spec | None]:
    return lambda rng: Spec(duration=math.inf, estimate=20.0) if rng.random() < p else None


def test_stuck_tasks_beside_a_steady_stream() -> None:
    """Failed on the rule's first version; passes now.

    100 in flight with good estimates (sigma 0.1, no progress: the estimates'
    record is held to a 1 s loop), and beside them, with one task in ten, a task that
    never ends (estimate 20 s, watched all along). Figures for the main stream, pooled
    over 2 seeds.

    Measured: delay on 0.459 / 0.477 s, off 0.399 / 0.407 s (pooled 0.468 vs 0.403 s,
    +16 %); reads on 4.86 / 4.90, off 4.89 / 4.91 (-0.4 %). With 20 % stuck (seed 1,
    1,500 tasks): +56 % delay (0.602 vs 0.386 s), -4 % reads. The stuck tasks started
    since the record's earliest task are at risk at every end, so for a task past the
    record's upper part the share past the top reaches 0.5 (S stuck, M ends above: about
    S / (M + S)); the estimates' record, which reads within a loop's delay, is passed
    over and the task read a quarter of its age apart (`tail_share`). Half a chance of
    being a stuck task is not a reason to stop reading the other half where the record
    places it."""
    make = tasks(lognormal(20.0, 0.3), estimate_sigma=0.1)
    on, off = _pooled(
        [_steady(make, 300, in_flight=100, total=1200, seed=s, side=_stuck(0.1)) for s in (2, 3)]
    )
    _no_harm(on, off)


def test_stuck_tasks_reads_stay_bounded() -> None:
    """The stuck tasks of the test above (seed 2), read until the stream ends (ages to
    about 180 s): about 20 reads within the estimates' record (held to a 1 s loop, half a
    second apart), then a quarter of the age apart. The rule cuts their reads.

    Measured: on 20.5 reads a stuck task (most 29 at age 181 s); off 25.8 (most 29)."""
    make = tasks(lognormal(20.0, 0.3), estimate_sigma=0.1)
    means = []
    for on in (True, False):
        with rule(on):
            sim = steady(make, in_flight=100, total=800, seed=2, side=_stuck(0.1))
        assert not sim.violations, sim.violations[:5]
        stuck = [r for r in sim.runs if math.isinf(r.spec.duration)]
        assert stuck
        means.append(sum(r.reads for r in stuck) / len(stuck))
        for run in stuck:
            age = (run.last_read or run.started) - run.started
            # The record's reads (a loop's, up to 1.5x the estimate), then a quarter of the
            # age apart (`GET_COSTS.tail_share`), at most `MAX_WAIT`.
            bound = (
                1.5 * 20.0 / 0.5
                + math.log(max(age, 30.0) / 30.0) / math.log(1.0 + GET_COSTS.tail_share)
                + age / MAX_WAIT
            )
            assert run.reads <= bound, (on, run.reads, age)
    report(f"\n  stuck reads a task: on {means[0]:.1f}, off {means[1]:.1f}")
    assert means[0] <= 1.05 * means[1]


def test_slow_minority_beside_a_steady_stream() -> None:
    """Failed on the rule's first version; passes now.

    as above, but the tasks beside the stream do end, at 20x their estimate
    (one in ten). Main stream figures, pooled over 2 seeds.

    Measured (main stream): delay on 0.560 / 0.545 s, off 0.405 / 0.448 s (pooled
    0.553 vs 0.427 s, +30 %); reads on 4.83 / 4.78, off 4.76 / 4.96 (-1 %). Same cause
    as the stuck tasks: the late tasks are at risk past every end of the estimates'
    record for the main stream's tasks (and one that ends pulls the record's earliest
    task, and with it the running set counted, back by minutes)."""

    def slow(rng: random.Random) -> Spec | None:
        if rng.random() >= 0.1:
            return None
        d = 20.0 * math.exp(rng.gauss(0.0, 0.3))
        return Spec(duration=20 * d, estimate=round(d * math.exp(rng.gauss(0.0, 0.1)), 1))

    make = tasks(lognormal(20.0, 0.3), estimate_sigma=0.1)
    on, off = _pooled(
        [_steady(make, 300, in_flight=100, total=1200, seed=s, side=slow) for s in (1, 2)]
    )
    _no_harm(on, off)


# --- larger: 1,000 in flight ---------------------------------------------------------------


@pytest.mark.soak
def test_steady_1000_in_flight_with_estimates() -> None:
    """1,000 in flight, replaced as they end (estimates sigma 0.2, GET).

    Measured: on 5.44 reads/task, delay 0.756 s (4.4 %); off 5.44, 0.772 s (4.5 %)."""
    make = tasks(lognormal(20.0, 0.3), estimate_sigma=0.2)
    on, off = _pair(_steady(make, 1500, in_flight=1000, total=4000))
    _no_harm(on, off)


@pytest.mark.soak
def test_steady_1000_in_flight_without_estimates_batch() -> None:
    """Failed on the rule's first version; passes now.

    (Reads) 1,000 in flight, replaced as they end, no hints, batch reads -- a
    steady stream, no cohort. The running set is six times the record: tasks running
    past `x` outnumber the record's ends past `x` by the mean residual life over the
    record's window (160 / rate, a sixth of a duration here), so the share past the top
    is inflated for every task in the upper half, the rule fires, and tasks are read a
    tenth of their age apart.

    Measured: on 8.38 reads/task, delay 0.91 s (5.1 %); off 7.38, 1.41 s (7.3 %): 13.5 %
    more reads for 35 % less delay (an earlier layout: 8.38 vs 7.92 reads, 0.94 vs
    1.23 s). A trade the rule was not meant to make on a steady stream."""
    make = tasks(lognormal(20.0, 0.3))
    on, off = _pair(_steady(make, 1500, in_flight=1000, total=4000, costs=BATCH_COSTS))
    _no_harm(on, off, reads=1.08)
