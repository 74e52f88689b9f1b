"""The harness itself: the loop, the oracle and our plan behave as described."""

from __future__ import annotations

import random

from tests.attack_judge._sim import Spec, match, oracle, run_loop, run_ours, uniform_specs


def test_loop_reads_each_second_and_sees_within_one() -> None:
    specs = [Spec(2.5), Spec(3.0), Spec(0.2)]
    loop = run_loop(specs, in_flight=10)
    assert loop.reads == 3 + 3 + 1, loop.reads
    assert [round(d, 3) for d in loop.delays] == [0.505, 0.005, 0.805], loop.delays
    assert abs(loop.wall - 3.005) < 1e-9, loop.wall


def test_oracle_fills_slots_in_order() -> None:
    specs = [Spec(4.0), Spec(1.0), Spec(2.0)]
    # Two slots: 4 | 1, then 2 after the 1: ends at 4 and 3.
    assert oracle(specs, in_flight=2) == 4.0


def test_ours_sees_every_task_and_learns_linear_progress() -> None:
    specs = uniform_specs(random.Random(3), 400, 2, 6)
    ours = run_ours(specs)
    assert ours.tasks == 400
    assert min(ours.delays) >= 0, min(ours.delays)
    late = ours.mean_delay_of(range(200, 400))
    assert late < 0.3, f"linear progress, tasks 200-399 seen {late:.3f}s late on average"


def test_same_tasks_for_all_three() -> None:
    specs = uniform_specs(random.Random(5), 300, 2, 6)
    m = match(specs)
    assert m.oracle <= m.loop.wall, m.line()
    assert m.oracle <= m.ours.wall, m.line()
    assert m.ours.tasks == m.loop.tasks == 300
