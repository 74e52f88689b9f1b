"""The probe meets a server that misleads it: its own create never arrived, its resend is
refused or lost, the resumed run is cut short again."""

from __future__ import annotations

import pytest

from ._harness import COMPLETED, UNCERTAIN, Env, check, check_duplicates, kinds, tasks_per_prompt

pytestmark = pytest.mark.anyio

PROMPTS = [f"an owl on a fence post, number {i}" for i in range(5)]


async def first_run(env: Env, actions: dict[str, str]) -> None:
    env.server.create_action = lambda p, n: actions.get(p, "ok")
    first = await env.run(PROMPTS, max_retries=0)
    check(env, first, PROMPTS)
    for p in actions:
        assert first.outcomes[PROMPTS.index(p)].kind is UNCERTAIN
    env.server.create_action = lambda p, n: "ok"
    env.server.create_log.clear()


async def test_probe_whose_create_never_arrived_takes_no_others_task(tmp_path) -> None:
    # (d) key-honouring server: input 0's create never reached it, 1 and 2 made tasks.
    env = Env(tmp_path, honour_keys=True, replay_header=True)
    await first_run(env, {PROMPTS[0]: "drop", PROMPTS[1]: "lose", PROMPTS[2]: "lose"})
    assert tasks_per_prompt(env, PROMPTS)[PROMPTS[0]] == 0
    second = await env.run(PROMPTS)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    # The probe (input 0) is answered with a new task: it keeps it, flagged; the others
    # end uncertain, nothing resent for them.
    assert second.outcomes[0].kind is COMPLETED
    assert second.outcomes[0].possible_duplicate
    assert [o.error_code for o in second.outcomes[1:3]] == ["ambiguous_listing"] * 2
    assert [p for p, _, _ in env.server.create_log] == [PROMPTS[0]]
    # A third run: the probe now holds its task; 1 and 2 are told apart by the server.
    third = await env.run(PROMPTS)
    check(env, third, PROMPTS)
    check_duplicates(env, PROMPTS)
    assert [o.kind for o in third.outcomes] == [COMPLETED] * 5
    assert tasks_per_prompt(env, PROMPTS) == dict.fromkeys(PROMPTS, 1)


async def test_probe_whose_create_never_arrived_not_first(tmp_path) -> None:
    # (d') the one that never arrived is the last: the probe (input 0) proves the keys.
    env = Env(tmp_path, honour_keys=True, replay_header=False)
    await first_run(env, {PROMPTS[0]: "lose", PROMPTS[1]: "lose", PROMPTS[2]: "drop"})
    second = await env.run(PROMPTS)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    assert kinds(second) == [("completed", None, False)] * 5
    assert tasks_per_prompt(env, PROMPTS) == dict.fromkeys(PROMPTS, 1)


@pytest.mark.parametrize("refusal", ["402", "409", "400"])
@pytest.mark.parametrize("honour", [True, False], ids=["honours", "ignores"])
async def test_probe_refused(tmp_path, refusal, honour) -> None:
    # (e) the probe's resend is refused: it proves nothing; all of them end uncertain.
    env = Env(tmp_path, honour_keys=honour)
    lost = dict.fromkeys(PROMPTS[:3], "lose")
    await first_run(env, lost)
    env.server.create_action = lambda p, n: refusal if p == PROMPTS[0] else "ok"
    second = await env.run(PROMPTS)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    assert second.outcomes[0].kind is UNCERTAIN, "a refusal after a lost create proves nothing"
    assert [o.kind for o in second.outcomes[:3]] == [UNCERTAIN] * 3
    assert [o.error_code for o in second.outcomes[1:3]] == ["ambiguous_listing"] * 2
    assert [p for p, _, _ in env.server.create_log] == [PROMPTS[0]]
    assert tasks_per_prompt(env, PROMPTS) == dict.fromkeys(PROMPTS, 1)


@pytest.mark.parametrize("honour", [True, False], ids=["honours", "ignores"])
async def test_probe_answer_lost_again(tmp_path, honour) -> None:
    # (e') the probe's resend is answered by a dropped connection again (it made a task
    # on a server that ignores keys).
    env = Env(tmp_path, honour_keys=honour, replay_header=True)
    await first_run(env, dict.fromkeys(PROMPTS[:3], "lose"))
    env.server.create_action = lambda p, n: "lose" if p == PROMPTS[0] else "ok"
    second = await env.run(PROMPTS)
    check(env, second, PROMPTS)
    assert [o.kind for o in second.outcomes[:3]] == [UNCERTAIN] * 3
    assert [o.error_code for o in second.outcomes[1:3]] == ["ambiguous_listing"] * 2
    assert {p for p, _, _ in env.server.create_log} == {PROMPTS[0]}
    assert len(env.server.create_log) == 1, "an unproven server gets one resend, no more"
    check_duplicates(env, PROMPTS)
