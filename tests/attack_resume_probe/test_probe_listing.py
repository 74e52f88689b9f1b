"""A listing that misleads, a listing that cannot be read, a create held past the window."""

from __future__ import annotations

import pytest

from ._harness import COMPLETED, UNCERTAIN, Env, check, check_duplicates, kinds, tasks_per_prompt

pytestmark = pytest.mark.anyio

PROMPTS = [f"a kite over the dunes, number {i}" for i in range(5)]


async def lose(env: Env, lost: dict[str, str]) -> None:
    env.server.create_action = lambda p, n: lost.get(p, "ok")
    first = await env.run(PROMPTS, max_retries=0)
    check(env, first, PROMPTS)
    env.server.create_action = lambda p, n: "ok"
    env.server.create_log.clear()


def fake_row(env: Env, tid: str, model: str, created: float) -> dict:
    return {
        "created": int(created),
        "id": tid,
        "model": model,
        "object": "image.generation.task",
        "progress": 10,
        "status": "processing",
        "task_info": {"can_cancel": True},
        "type": "image",
        "usage": {"credits_reserved": 4.0},
    }


@pytest.mark.parametrize("honour", [True, False], ids=["honours", "ignores"])
async def test_listing_repeats_every_row(tmp_path, honour) -> None:
    env = Env(tmp_path, honour_keys=honour, replay_header=False)
    await lose(env, {PROMPTS[1]: "lose", PROMPTS[3]: "lose"})
    env.server.listing_duplicates = True
    second = await env.run(PROMPTS)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    if honour:
        assert kinds(second) == [("completed", None, False)] * 5
    else:
        assert sum(o.possible_duplicate for o in second.outcomes) == 1
        assert sum(o.error_code == "ambiguous_listing" for o in second.outcomes) == 1
    assert len(env.server.create_log) <= 2


async def test_listing_shows_tasks_of_another_model_in_the_window(tmp_path) -> None:
    # One lost create (its task made) and, the same second, tasks of another model: it
    # is told apart, adopted without any create, on a server that ignores keys.
    env = Env(tmp_path, honour_keys=False)
    await lose(env, {PROMPTS[2]: "lose"})
    (mine,) = env.server.tasks_of(PROMPTS[2])
    env.server.listing_extra = [
        fake_row(env, f"task-unified-{int(mine.created)}-other{i}", "nano-banana-pro", mine.created)
        for i in range(3)
    ]
    second = await env.run(PROMPTS)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    assert second.outcomes[2].kind is COMPLETED
    assert second.outcomes[2].task.id == mine.id
    assert env.server.create_log == []
    assert tasks_per_prompt(env, PROMPTS) == dict.fromkeys(PROMPTS, 1)


async def test_listing_shows_a_phantom_of_the_same_model(tmp_path) -> None:
    # The lost create never arrived; the listing shows one task of its model the same
    # second that the server then does not know. It ends with one outcome, no other's task.
    env = Env(tmp_path, honour_keys=False)
    await lose(env, {PROMPTS[2]: "drop"})
    now = env.clock.time()
    env.server.listing_extra = [
        fake_row(env, f"task-unified-{int(now)}-phantom", "gpt-image-2", now)
    ]
    second = await env.run(PROMPTS)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    assert second.outcomes[2].kind is UNCERTAIN


async def test_listing_unreadable_on_a_key_ignoring_server(tmp_path) -> None:
    # The listing answers 500: each lost create is resent under its key ("as before").
    # A server that ignores keys makes a second task for each: never silently.
    env = Env(tmp_path, honour_keys=False)
    await lose(env, {PROMPTS[1]: "lose", PROMPTS[2]: "lose", PROMPTS[3]: "lose"})
    env.server.listing_status = 500
    second = await env.run(PROMPTS)
    check(env, second, PROMPTS)
    assert all(o.kind in (COMPLETED, UNCERTAIN) for o in second.outcomes)
    check_duplicates(env, PROMPTS)


@pytest.mark.parametrize("honour", [True, False], ids=["honours", "ignores"])
async def test_create_held_by_the_rate_limit_brake_past_the_window(tmp_path, honour) -> None:
    # Input 0's create waits out three 429s (Retry-After: 60, the batch's brake), then
    # makes its task 180 s after the journal says it was sent, and the answer is lost.
    # Input 1 is sent next, and never reaches the server. On resume the listing holds one
    # task of the model, input 0's: it must not be handed to input 1.
    prompts = PROMPTS[:2]
    env = Env(tmp_path, honour_keys=honour)

    def action(p: str, n: int) -> str:
        if p == prompts[0]:
            return "429" if n <= 3 else "lose"
        return "drop"

    env.server.create_action = action
    first = await env.run(prompts, max_retries=0, max_in_flight=1)
    check(env, first, prompts)
    assert [o.kind for o in first.outcomes] == [UNCERTAIN, UNCERTAIN]
    assert len(env.server.tasks_of(prompts[0])) == 1
    assert not env.server.tasks_of(prompts[1])
    env.server.create_action = lambda p, n: "ok"
    second = await env.run(prompts)
    check(env, second, prompts)
    check_duplicates(env, prompts)
