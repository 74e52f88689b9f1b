"""Attacks on "A record that moves with the clock" (docs/explanation/waiting.md): a task
whose survival, as the records told it read by read, falls under 0.5 % while the record's
own cdf is under 90 % stops planning on that record (until the record gives it four
times the chance of running on that it gave then).

All in the plan-level simulator `_waits_sim` (many `tasks.wait` on one client, one shared
`ModelTiming`, the watcher's replans), each scenario run with the rule, with the rule off
(`ReadPlan._outlived` -> False), and as a 1 s poll loop, on the same tasks.
"""

from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _waits_sim import run, specs_of, summary

from evolink._estimate import BATCH_COSTS, GET_COSTS, MIN_AGE_SHARE

SEEDS = range(1, 4)


def _three(specs_for, batch: bool) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for engine in ("rule", "norule", "loop"):
        rs = [run(specs_for(seed), engine=engine, batch=batch) for seed in SEEDS]
        out[engine] = {
            "mean_late": statistics.fmean(r["mean_late"] for r in rs),
            "p99_late": statistics.fmean(r["p99_late"] for r in rs),
            "reads": statistics.fmean(r["reads_per_task"] for r in rs),
            "fired": statistics.fmean(len(r["fired"]) for r in rs),
        }
    return out


def _fmt(f: dict[str, dict[str, float]]) -> str:
    return "; ".join(
        f"{k}: mean late {v['mean_late']:.3f}s p99 {v['p99_late']:.2f}s reads/task "
        f"{v['reads']:.2f} fired {v['fired']:.0f}"
        for k, v in f.items()
    )


def _slowdown(seed: int):
    # A model whose tasks take 9-11 s until the 500th wait (arriving 5 a second), then
    # 28-32 s: tasks alive across the change legitimately outlive a stale record.
    return specs_of(
        1000,
        lambda r, i: r.uniform(9, 11) if i < 500 else r.uniform(28, 32),
        arrive=lambda r, i: i * 0.2,
        seed=seed,
    )


def _bimodal_at_once(seed: int):
    # 1,000 waits created together, 90 % of 4-6 s and 10 % of 40-80 s: the record's top
    # is the rare slow mode.
    return specs_of(
        1000,
        lambda r, i: r.uniform(4, 6) if r.random() < 0.9 else r.uniform(40, 80),
        seed=seed,
    )


@pytest.mark.parametrize("batch", [False, True], ids=["get", "batch"])
def test_model_slowing_mid_life_is_not_seen_later_than_without_the_rule(batch: bool) -> None:
    """A task alive across a slowdown outlives the stale record; once the record has
    caught up with the new durations it should plan on it again, but the rule distrusts
    the record for the rest of the task's life and reads it a quarter (a tenth) of its
    age apart. Measured (3 seeds): GET mean lateness 1.03 s with the rule against 0.64 s
    without (the loop 0.51 s), p99 6.2 s against 5.1 s; batch 0.38 s against 0.29 s,
    p99 2.5 s against 1.6 s; at the same reads per task."""
    f = _three(_slowdown, batch)
    rule, norule = f["rule"], f["norule"]
    assert rule["mean_late"] <= 1.15 * norule["mean_late"], _fmt(f)
    assert rule["p99_late"] <= norule["p99_late"] + 0.5, _fmt(f)


@pytest.mark.parametrize("batch", [False, True], ids=["get", "batch"])
def test_rare_slow_mode_is_not_seen_later_than_without_the_rule(batch: bool) -> None:
    """Bimodal durations, all waits at once: the slow 10 % outlive the fast mode's
    record while the record moves with the clock. Measured (3 seeds): batch mean
    lateness 0.471 s with the rule against 0.380 s without (+24 %), p99 5.27 s against
    4.97 s, for 16.4 reads a task against 18.5 (the loop: 0.50 s, 10.6 reads); GETs stay
    within the bound (single seed: 1.32 s against 1.20 s, p99 13.8 s against 12.1 s)."""
    f = _three(_bimodal_at_once, batch)
    rule, norule = f["rule"], f["norule"]
    assert rule["mean_late"] <= 1.15 * norule["mean_late"], _fmt(f)
    assert rule["p99_late"] <= 1.15 * norule["p99_late"] + 0.2, _fmt(f)


@pytest.mark.parametrize("batch", [False, True], ids=["get", "batch"])
def test_no_progress_waits_at_once_same_lateness(batch: bool) -> None:
    """1,000 waits at once, honest estimates, no progress: the rule saves reads at about
    the same lateness. Before the rule held off a record's tail (`OUTLIVED_BELOW`) and
    started afresh past its top, GETs were 0.33 s late against 0.24 s without it."""

    def specs(seed: int):
        return specs_of(
            1000,
            lambda r, i: r.uniform(2, 6),
            estimate=lambda r, d, i: max(1, round(d * r.uniform(0.85, 1.15))),
            seed=seed,
        )

    f = _three(specs, batch)
    rule, norule, loop = f["rule"], f["norule"], f["loop"]
    assert rule["mean_late"] <= loop["mean_late"], _fmt(f)
    # (Since the cohort rule, `ReadPlan._unknown`, which both arms have, the outlived
    # rule adds next to nothing here: with batch reads 6.18 reads a task against 6.17,
    # 0.130 s late against 0.135 s.)
    assert rule["reads"] <= 1.01 * norule["reads"], _fmt(f)
    assert rule["mean_late"] <= 1.1 * norule["mean_late"] + 0.01, _fmt(f)


def test_stationary_stream_rule_fires_only_at_the_top() -> None:
    """A steady stream (log-normal, median 10 s, sigma 0.8, no hints, 10 waits a second):
    the record of the last 160 ends wobbles, and the rule fired below the top for 51-72
    of 1,000 tasks before it held off the record's tail."""
    fired = []
    for seed in SEEDS:
        specs = specs_of(
            1000,
            lambda r, i: 10 * math.exp(0.8 * r.gauss(0, 1)),
            arrive=lambda r, i: i * 0.1,
            seed=seed,
        )
        fired.append(len(run(specs, engine="rule")["fired"]))
    assert max(fired) <= 20, fired


@pytest.mark.parametrize("batch", [False, True], ids=["get", "batch"])
def test_tasks_that_outlive_every_record_are_read_bounded(batch: bool) -> None:
    """1,000 blind waits at once (2-6 s) and 5 tasks stuck for 900 s: the stuck ones
    outlive every record. Their reads must be no storm (never closer than 2 % of the
    age, nor more than ~O(log age)) and no starvation (never further apart than the
    costs' tail share of the age, with a little slack), and the short tasks must not pay."""

    def specs(seed: int):
        return specs_of(1005, lambda r, i: 900.0 if i >= 1000 else r.uniform(2, 6), seed=seed)

    costs = BATCH_COSTS if batch else GET_COSTS
    for seed in SEEDS:
        s = specs(seed)
        r = run(s, engine="rule", batch=batch)
        n = run(s, engine="norule", batch=batch)
        for i in range(1000, 1005):
            t = s[i].arrive
            at = t
            ages = []
            for gap in r["gaps"][i]:
                at += gap
                ages.append((at - gap - t, gap))
            for age, gap in ages:
                assert gap >= max(0.02, MIN_AGE_SHARE * age) * 0.999, (i, age, gap)
                # Long past every record: the tail share of the age (a little slack
                # for the read's latency); before that, the cold share at most.
                share = costs.tail_share * 1.1 if age > 60 else costs.cold_share * 1.05
                if age > 10:
                    assert gap <= min(300.0, share * age) + 0.05, (i, age, gap, summary(r))
            assert r["reads"][i] <= 120, (i, r["reads"][i])
            assert r["late"][i] <= costs.tail_share * 900 + 1, (i, r["late"][i])
        short_rule = statistics.fmean(r["late"][:1000])
        short_norule = statistics.fmean(n["late"][:1000])
        assert short_rule <= 1.35 * short_norule + 0.05, (summary(r), summary(n))
