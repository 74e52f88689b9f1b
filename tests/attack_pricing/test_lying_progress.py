"""Progress that agrees with itself and lies: each task's progress reports a fixed share
of the truth (a stage counter), so that its readings agree on an end up to 1 / share too
late, and then the task jumps to done.

Written against a change that read a task past a record's top where such readings put
the end (reverted: it took the worst delay from 0.86 to 2.19 task durations, and a
cohort of such tasks from 1.0135x the oracle to 1.2324x). The tests now hold the code as
it is to the promises that change broke, and to the one its attack found broken before
it: two agreeing readings trusted past the age bound (`ReadPlan._longest_wait`), which
took a batch with a slow, lying sixth to 1.47x the 1 s loop (now trusted only before
any record judges the readings' bands, or where the server's estimate agrees:
`ReadPlan._corroborated`).
"""

from __future__ import annotations

import pytest

from . import _servers as servers


def test_liar_detection_delay_bounded() -> None:
    """Progress reporting a share U(0.3, 1) of the truth, honest estimates, 2-6 s tasks:
    no task is seen later than its own duration after its end (0.86 of it as shipped;
    2.19 with the reverted change)."""
    new = servers.pooled("liar", (2,), "new")
    assert new["ratio"] <= 1.0, servers.fmt(new)


def test_liar_never_slower_than_the_loop() -> None:
    """...and the batch ends before the 1 s loop's (0.93-0.95 of its wall)."""
    new = servers.pooled("liar", (1, 2), "new")
    assert new["vs_loop"] < 1.0, servers.fmt(new)


def test_slow_lying_minority_held_to_the_age() -> None:
    """A sixth of the tasks take 15-30 s and report 0.4 of the truth, no estimates: their
    readings agree on an end 2.5 times too late. With agreeing readings trusted past the
    age bound they were seen up to 1.45 durations late and the batch ran at 1.47x the
    loop; held to the age, under one duration and within 3 % of the loop (1.01x)."""
    new = servers.pooled("slow-minority-missing", (1,), "new")
    # Within the age bound: a read within the age of the last that saw the task running,
    # give or take the 20 ms floor and the read's latency (1.0022 durations here since
    # 2026-12-05: 12.96 s on a 12.93 s task).
    assert new["ratio"] <= 1.01, servers.fmt(new)
    assert new["vs_loop"] <= 1.03, servers.fmt(new)


def test_slowdown_liar_held_to_the_age() -> None:
    """From task 300 of 1,000 the model runs 3x slower, its estimates stale, its progress
    reporting half the truth: 1.12x the loop with agreeing readings trusted, 1.03x held
    to the age (and 1.16x against 1.08x the oracle)."""
    new = servers.pooled("slowdown-liar", (1,), "new")
    assert new["ratio"] <= 1.05, servers.fmt(new)
    assert new["vs_loop"] <= 1.06, servers.fmt(new)


@pytest.mark.soak
@pytest.mark.xfail(
    strict=True,
    reason=(
        "known limit: where progress lies steadily the records do learn the lie (each "
        "band's quantiles within 0.05-0.1 of the truth's on liar-missing), but the loop's "
        "reads are what it takes to find 2-6 s tasks whose progress predicts nothing "
        "better than their durations do, a fresh cohort's last task is read a twentieth "
        "of its age apart past 20 s (the hurried reads' storm guard), and a model's change "
        "takes a few dozen tasks to see: seeds 1-3, wall over the 1 s loop's 1.044x "
        "(liar-missing), 1.025x (cohort-liar), 1.045x (slowdown-liar-missing; 1.074x "
        "before the progress bands judged their first reads, 1.001x on average over 12 "
        "seeds now), 1.019x (slow-minority-missing); docs/explanation/waiting.md"
    ),
)
@pytest.mark.parametrize(
    "server", ["liar-missing", "cohort-liar", "slowdown-liar-missing", "slow-minority-missing"]
)
def test_never_slower_than_the_loop_on_steady_lies(server: str) -> None:
    new = servers.pooled(server, (1, 2, 3), "new")
    assert new["vs_loop"] < 1.0, servers.fmt(new)


def test_honest_minute_tasks_within_the_loops_delay() -> None:
    """Honest linear progress, no estimates, 500 tasks of 20-60 s: the mean delay stays
    within the 1 s loop's (seed 1: 0.36 s against the loop's 0.49 s)."""
    new = servers.pooled("mid-linear-missing", (1,), "new")
    assert new["delay"] <= new["loop_delay"], servers.fmt(new)


@pytest.mark.soak
@pytest.mark.parametrize(
    "server",
    [
        "liar",
        pytest.param(
            "cohort-liar-est",
            marks=pytest.mark.xfail(
                strict=True,
                reason=(
                    "known limit, with or without any agreement trust: a fresh client's "
                    "hundred 20 s tasks created together, lying progress, honest "
                    "estimates: seeds 4-6 end 1.0035x, 1.0313x and 1.0179x the loop "
                    "(seeds 1-3 0.9905x-0.9999x)"
                ),
            ),
        ),
    ],
)
def test_soak_never_slower_than_the_loop(server: str) -> None:
    """Six seeds, with honest estimates beside the lying progress: never slower than the
    loop on any seed."""
    new = servers.pooled(server, (1, 2, 3, 4, 5, 6), "new")
    assert new["vs_loop"] <= 1.0, servers.fmt(new)
