"""Several creates lost in the same second, resumed on servers that honour keys or not."""

from __future__ import annotations

import logging

import pytest

from ._harness import COMPLETED, UNCERTAIN, Env, check, check_duplicates, kinds, tasks_per_prompt

pytestmark = pytest.mark.anyio

PROMPTS = [f"a lighthouse in a storm, number {i}" for i in range(6)]
LOST = set(PROMPTS[1:5])  # four creates lost, all in the same second


async def lose_four(env: Env) -> None:
    env.server.create_action = lambda p, n: "lose" if p in LOST else "ok"
    first = await env.run(PROMPTS, max_retries=0)
    check(env, first, PROMPTS)
    assert [o.kind for o in first.outcomes] == [
        COMPLETED,
        UNCERTAIN,
        UNCERTAIN,
        UNCERTAIN,
        UNCERTAIN,
        COMPLETED,
    ]
    created = {int(env.server.tasks_of(p)[0].created) for p in LOST}
    assert len(created) == 1, "the lost creates were made in the same second"
    env.server.create_action = lambda p, n: "ok"
    env.server.create_log.clear()


@pytest.mark.parametrize("header", [True, False], ids=["replay-header", "no-header"])
async def test_key_honouring_server_every_input_gets_its_own_task(tmp_path, header) -> None:
    env = Env(tmp_path, honour_keys=True, replay_header=header)
    await lose_four(env)
    second = await env.run(PROMPTS)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    assert kinds(second) == [("completed", None, False)] * 6
    assert tasks_per_prompt(env, PROMPTS) == dict.fromkeys(PROMPTS, 1)
    # Each lost input resent once under its key, nothing else created.
    assert sorted(p for p, _, _ in env.server.create_log) == sorted(LOST)
    assert sum(o.resumed for o in second.outcomes) == 2


async def test_key_ignoring_server_one_flagged_duplicate_the_rest_uncertain(
    tmp_path, caplog
) -> None:
    env = Env(tmp_path, honour_keys=False)
    await lose_four(env)
    with caplog.at_level(logging.WARNING, logger="evolink"):
        second = await env.run(PROMPTS)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    outcomes = second.outcomes
    assert outcomes[1].kind is COMPLETED
    assert outcomes[1].possible_duplicate
    for o in outcomes[2:5]:
        assert o.kind is UNCERTAIN
        assert o.error_code == "ambiguous_listing"
        assert not o.possible_duplicate
        assert o.idempotency_key
    # Nothing resent for them: one create in the whole second run.
    assert [p for p, _, _ in env.server.create_log] == [PROMPTS[1]]
    assert sum(o.possible_duplicate for o in outcomes) == 1
    assert any(r.levelno == logging.WARNING for r in caplog.records), "the duplicate is warned"
    # Their candidates are named in the message.
    for o in outcomes[2:5]:
        for p in LOST:
            assert env.server.tasks_of(p)[0].id in (o.error_message or "")
