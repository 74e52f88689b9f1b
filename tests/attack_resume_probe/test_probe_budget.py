"""`max_credits` across a resume whose lost creates the listing cannot tell apart."""

from __future__ import annotations

import pytest

from ._harness import COMPLETED, UNCERTAIN, Env, check, check_duplicates
from ._server import PRICE

pytestmark = pytest.mark.anyio

PROMPTS = [f"a vintage motorbike by the sea, number {i}" for i in range(10)]
BUDGET = 28  # 7 tasks of 4 credits


def committed_on_server(env: Env) -> float:
    return PRICE * len(env.server.tasks)


async def cut_first_run(env: Env) -> None:
    # Input 0 answered; 1..4 sent and never answered (their tasks made); 5..9 never sent.
    env.server.create_action = lambda p, n: "ok" if p == PROMPTS[0] else "hang"
    first = await env.run_cut(PROMPTS, hang_count=4, max_in_flight=5, max_credits=BUDGET)
    check(env, first, PROMPTS, cut=True)
    assert sum(o.kind is UNCERTAIN for o in first.outcomes) == 4
    assert committed_on_server(env) == 20
    env.server.create_action = lambda p, n: "ok"


@pytest.mark.parametrize(
    ("honour", "header"), [(True, True), (True, False)], ids=["header", "no-header"]
)
async def test_budget_holds_on_a_key_honouring_server(tmp_path, honour, header) -> None:
    env = Env(tmp_path, honour_keys=honour, replay_header=header)
    await cut_first_run(env)
    second = await env.run(PROMPTS, max_in_flight=3, max_credits=BUDGET)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    assert committed_on_server(env) <= BUDGET
    assert sum(o.kind is COMPLETED for o in second.outcomes) == 7
    assert second.skipped_for_budget == 3


async def test_budget_holds_the_probes_duplicate_and_the_others_tasks(tmp_path) -> None:
    # (f) key-ignoring server: the probe (input 1) makes a second task, flagged, its
    # possible first task held; inputs 2..4 end uncertain, their tasks (shown by the
    # listing) exist and are paid. "max_credits bounds what the whole run commits".
    env = Env(tmp_path, honour_keys=False)
    await cut_first_run(env)
    second = await env.run(PROMPTS, max_in_flight=3, max_credits=BUDGET)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    assert second.outcomes[1].possible_duplicate
    assert [o.error_code for o in second.outcomes[2:5]] == ["ambiguous_listing"] * 3
    fresh = [o for o in second.outcomes[5:] if o.kind is COMPLETED]
    assert committed_on_server(env) <= BUDGET, (
        f"the run's tasks on the server commit {committed_on_server(env)} credits, budget {BUDGET};"
        f" {len(fresh)} new input(s) were started after the probe"
    )


async def test_budget_counts_the_probes_possible_first_task(tmp_path) -> None:
    # Narrower: the probe's possible first task is held. Input 0's task (4), the probe's
    # new task (4) and its held possible first task (4) fill a budget of 12: no new
    # input may start.
    env = Env(tmp_path, honour_keys=False)
    await cut_first_run(env)
    second = await env.run(PROMPTS, max_in_flight=3, max_credits=12)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    assert [o.kind for o in second.outcomes[5:]] == [second.outcomes[5].kind] * 5
    assert all(o.kind.value == "skipped" for o in second.outcomes[5:]), [
        (o.kind.value, o.reason) for o in second.outcomes[5:]
    ]
