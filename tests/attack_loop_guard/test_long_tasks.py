"""Tasks of 60-600 s, a client's life of 4 batches of 150 on 30 slots, one GET per read
(and batch reads where marked). Each batch is compared with a 1 s loop on the same task
durations (every task read each second from its create, the next task created the instant
a slot frees; lateness ceil(D) - D).

Promises attacked (docs/explanation/waiting.md):
- "Never slower than a 1 s loop, where a hint says where to read" (progress bands' records,
  and estimates' records where the model shows no progress); the matrix row "never slower
  than the 1 s loop"; the project's "our batch is never slower than a hand-written loop on
  any server".
- "where a task's delay in seconds would be over 0.4 s ... the read's price is halved until it
  is within": the mean lateness of a learned schedule is within the loop's (0.5 s).
- "nor more than three times the read budget (6.9 reads with GETs)".
"""

from __future__ import annotations

import itertools

import pytest
from _harness import one_outcome_each
from _lives import BEHAVIOURS, life

# Behaviours where the docs say a hint says where to read (progress that predicts, or
# estimates with no progress): the loop guard is documented to hold on these.
HINTED = [
    "linear",
    "coarse-steps",
    "no-progress-honest-estimates",
    "no-progress-exact-estimates",
    "slow-then-fast",
]
#: lives that only add more of the same: in `nox -s soak`, to keep the default part short.
SOAK_ONLY = {"stuck-at-95-from-half-way", "sawtooth-4-times"}


def _params(names: list[str]) -> list:  # type: ignore[type-arg]
    return [pytest.param(n, marks=pytest.mark.soak) if n in SOAK_ONLY else n for n in names]


HOSTILE = _params([b for b in BEHAVIOURS if b not in HINTED and not b.startswith("control")])
ALL = _params(list(BEHAVIOURS))

#: the loop and ours both see a task at a read time; allow float noise only.
EPS = 0.01


def _walls(results):  # type: ignore[no-untyped-def]
    return [
        f"batch {i}: ours {r.wall:.2f}s vs loop {r.loop:.2f}s (oracle {r.oracle:.2f}s; "
        f"{r.wall / r.oracle:.4f}x vs {r.loop / r.oracle:.4f}x)"
        for i, r in enumerate(results)
    ]


@pytest.mark.parametrize("behaviour", HINTED)
def test_hinted_mature_batches_never_slower_than_loop(behaviour: str) -> None:
    """Batches 2-4 of a client's life (records learned) are not slower than the loop."""
    results = life(behaviour)
    slower = [
        s
        for s, r in zip(_walls(results), results, strict=False)
        if r is not results[0] and r.wall > r.loop + EPS
    ]
    assert not slower, f"{behaviour}: slower than a 1 s loop: " + "; ".join(slower)


@pytest.mark.parametrize("behaviour", HINTED)
def test_hinted_first_batch_never_slower_than_loop(behaviour: str) -> None:
    """A client's first batch (nothing learned) is not slower than the loop either."""
    r = life(behaviour)[0]
    assert r.wall <= r.loop + EPS, f"{behaviour}: " + _walls([r])[0]


@pytest.mark.parametrize("behaviour", HINTED)
def test_hinted_mature_mean_lateness_within_loop(behaviour: str) -> None:
    """The schedules are held to a mean delay of 0.4 s: a mature batch's mean lateness is
    no worse than the loop's on the same tasks."""
    bad = []
    for i, r in enumerate(life(behaviour)[1:], start=1):
        ours = sum(v.late for v in r.views) / len(r.views)
        loop = sum(v.loop_late for v in r.views) / len(r.views)
        if ours > loop + EPS:
            worst = max(r.views, key=lambda v: v.late)
            bad.append(
                f"batch {i}: mean late {ours:.3f}s vs loop {loop:.3f}s "
                f"(worst task D={worst.duration:.1f}s seen {worst.late:.2f}s late, reads at ages "
                f"{[round(x - worst.created, 1) for x in worst.reads]})"
            )
    assert not bad, f"{behaviour}: " + "; ".join(bad)


@pytest.mark.parametrize("behaviour", HINTED)
def test_hinted_mature_reads_within_three_budgets(behaviour: str) -> None:
    """Reads a task are capped at three read budgets (6.9 GETs); allow 10 % for probes."""
    bad = []
    for i, r in enumerate(life(behaviour)[1:], start=1):
        mean = sum(v.reads_to_seen for v in r.views) / len(r.views)
        if mean > 6.9 * 1.1:
            bad.append(
                f"batch {i}: {mean:.2f} GETs a task (max {max(v.reads_to_seen for v in r.views)})"
            )
    assert not bad, f"{behaviour}: " + "; ".join(bad)


@pytest.mark.parametrize("behaviour", ALL)
def test_reads_never_more_than_loop(behaviour: str) -> None:
    """No task is read more often than a 1 s loop reads it (ceil(D) reads)."""
    over = [
        f"D={v.duration:.1f}s {v.reads_to_seen} reads vs {v.loop_reads}"
        for r in life(behaviour)
        for v in r.views
        if v.reads_to_seen > v.loop_reads
    ]
    assert not over, f"{behaviour}: " + "; ".join(over[:5])


@pytest.mark.parametrize("behaviour", ALL)
def test_every_input_one_outcome(behaviour: str) -> None:
    for r in life(behaviour):
        one_outcome_each(r)
        assert all(v.seen is not None for v in r.views)
        assert all(o.kind.value == "completed" for o in r.report.outcomes)


@pytest.mark.parametrize("behaviour", HOSTILE)
def test_hostile_progress_mature_batches_never_slower_than_loop(behaviour: str) -> None:
    """ "Our batch is never slower than a hand-written loop on any server": progress that
    lies (stuck near the end, falling back, restarting), honest estimates beside it."""
    results = life(behaviour)
    slower = [
        s
        for s, r in zip(_walls(results), results, strict=False)
        if r is not results[0] and r.wall > r.loop + EPS
    ]
    assert not slower, f"{behaviour}: slower than a 1 s loop: " + "; ".join(slower)


@pytest.mark.soak
@pytest.mark.parametrize("behaviour", HINTED)
def test_batch_reads_hinted_batches_never_slower_than_loop(behaviour: str) -> None:
    """The same with batch reads (POST /v1/tasks/batch)."""
    results = life(behaviour, batch_reads=True)
    slower = [s for s, r in zip(_walls(results), results, strict=False) if r.wall > r.loop + EPS]
    assert not slower, f"{behaviour} (batch reads): slower than a 1 s loop: " + "; ".join(slower)


_SLOWER_SINCE_BANDS_JUDGE = pytest.mark.xfail(
    strict=True,
    reason=(
        "since 2026-12-05 (the progress bands judge their first read of each task): batch 1 "
        "of linear seed 11 ends 0.17 s after the loop, 2044.17 s against 2044.00 s (oracle "
        "2042.37 s; 1.0009x against 1.0008x); it did not before"
    ),
)


@pytest.mark.soak
@pytest.mark.parametrize(
    ("behaviour", "seed"),
    [
        pytest.param(behaviour, seed, marks=_SLOWER_SINCE_BANDS_JUDGE)
        if (behaviour, seed) == ("linear", 11)
        else (behaviour, seed)
        for behaviour in ["linear", "no-progress-honest-estimates", "coarse-steps"]
        for seed in [11, 12, 13]
    ],
)
def test_other_seeds_mature_batches_never_slower_than_loop(behaviour: str, seed: int) -> None:
    results = life(behaviour, seed=seed)
    slower = [
        s
        for s, r in zip(_walls(results), results, strict=False)
        if r is not results[0] and r.wall > r.loop + EPS
    ]
    assert not slower, f"{behaviour} seed {seed}: slower than a 1 s loop: " + "; ".join(slower)


def test_control_docs_case_60_120_never_slower_than_loop() -> None:
    """The docs' own case (60-120 s, linear, honest estimates, GETs): every batch faster than
    the loop. A control for this suite's loop model: it should pass."""
    results = life("control-linear-60-120")
    slower = [s for s, r in zip(_walls(results), results, strict=False) if r.wall > r.loop + EPS]
    assert not slower, "; ".join(slower)


def test_linear_no_task_left_seconds_late_after_a_half_second_ladder() -> None:
    """Linear progress, mature batches: where the engine itself read a task half a second
    apart (it held the end to a loop's delay), the task is not then seen seconds late.
    Per task, beyond the documented mean: the ladder stops at the record's top and the next
    read is 2 % of the age later ("past its top the 2 % holds again")."""
    bad = []
    for i, r in enumerate(life("linear")[1:], start=1):
        for v in r.views:
            ages = [x - v.created for x in v.reads]
            ladder = sum(1 for a, b in itertools.pairwise(ages) if b - a <= 0.55 and b < v.duration)
            if ladder >= 3 and v.late > 2.0:
                bad.append(
                    f"batch {i}: D={v.duration:.1f}s seen {v.late:.2f}s late "
                    f"(loop {v.loop_late:.2f}s), "
                    f"reads at {[round(a, 1) for a in ages]}"
                )
    assert not bad, "; ".join(bad)
