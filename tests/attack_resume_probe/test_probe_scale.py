"""Many inputs lost in the same second, small max_in_flight; resumed runs cut short again."""

from __future__ import annotations

import pytest

from ._harness import COMPLETED, UNCERTAIN, Env, check, check_duplicates, tasks_per_prompt

pytestmark = pytest.mark.anyio

PROMPTS = [f"a steam train on a viaduct, number {i}" for i in range(26)]
LOST = PROMPTS[2:24]  # 22 lost in the same second


async def lose_many(env: Env) -> None:
    env.server.create_action = lambda p, n: "lose" if p in LOST else "ok"
    first = await env.run(PROMPTS, max_retries=0, max_in_flight=32)
    check(env, first, PROMPTS)
    assert sum(o.kind is UNCERTAIN for o in first.outcomes) == len(LOST)
    assert len({int(env.server.tasks_of(p)[0].created) for p in LOST}) == 1
    env.server.create_action = lambda p, n: "ok"
    env.server.create_log.clear()


@pytest.mark.parametrize(
    ("honour", "header"),
    [(True, True), (True, False), (False, False)],
    ids=["header", "no-header", "ignores"],
)
async def test_many_ambiguous_small_in_flight(tmp_path, honour, header) -> None:
    env = Env(tmp_path, honour_keys=honour, replay_header=header)
    await lose_many(env)
    second = await env.run(PROMPTS, max_in_flight=2)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    lost = [second.outcomes[PROMPTS.index(p)] for p in LOST]
    if honour:
        assert all(o.kind is COMPLETED and not o.possible_duplicate for o in second.outcomes)
        assert tasks_per_prompt(env, PROMPTS) == dict.fromkeys(PROMPTS, 1)
        assert len(env.server.create_log) == len(LOST)
    else:
        assert lost[0].kind is COMPLETED
        assert lost[0].possible_duplicate
        assert all(o.error_code == "ambiguous_listing" for o in lost[1:])
        assert len(env.server.create_log) == 1
        assert sum(o.possible_duplicate for o in second.outcomes) == 1


@pytest.mark.parametrize("honour", [True, False], ids=["honours-no-header", "ignores"])
async def test_resumed_run_cut_short_while_the_probe_is_out(tmp_path, honour) -> None:
    # (h) run 1 loses 5 creates at the same second; run 2 is cut short while its probe's
    # resend is out (made on an ignoring server, never answered); run 3 finishes.
    prompts = PROMPTS[:8]
    lost = prompts[:5]
    env = Env(tmp_path, honour_keys=honour, replay_header=False)
    env.server.create_action = lambda p, n: "lose" if p in lost else "ok"
    first = await env.run(prompts, max_retries=0)
    check(env, first, prompts)
    env.server.create_action = lambda p, n: "hang" if p == prompts[0] else "ok"
    second = await env.run_cut(prompts, hang_count=1)
    check(env, second, prompts, cut=True)
    assert second.outcomes[0].kind is UNCERTAIN
    env.server.create_action = lambda p, n: "ok"
    third = await env.run(prompts)
    check(env, third, prompts)
    check_duplicates(env, prompts)
    flagged = sum(o.possible_duplicate for o in third.outcomes)
    assert flagged <= 1
    if honour:
        assert all(o.kind is COMPLETED for o in third.outcomes)
        assert not flagged
        assert tasks_per_prompt(env, prompts) == dict.fromkeys(prompts, 1)


async def test_first_run_cut_by_cancellation_then_resumed(tmp_path) -> None:
    # The brief's own way to lose answers: the first run is cancelled while 6 creates are
    # out (all made), 4 more never sent. Key-ignoring server.
    prompts = PROMPTS[:10]
    env = Env(tmp_path, honour_keys=False)
    # (the first create is answered: until a model is accepted its creates go one by one)
    env.server.create_action = lambda p, n: "ok" if p == prompts[0] else "hang"
    first = await env.run_cut(prompts, hang_count=6, max_in_flight=7)
    check(env, first, prompts, cut=True)
    assert sum(o.kind is UNCERTAIN for o in first.outcomes) == 6
    env.server.create_action = lambda p, n: "ok"
    second = await env.run(prompts, max_in_flight=3)
    check(env, second, prompts)
    check_duplicates(env, prompts)
    assert sum(o.possible_duplicate for o in second.outcomes) == 1
    assert sum(o.error_code == "ambiguous_listing" for o in second.outcomes) == 5
    assert sum(o.kind is COMPLETED for o in second.outcomes) == 5  # 0, the probe, 7, 8, 9
