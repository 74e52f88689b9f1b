"""The API key never reaches an outcome, whatever the probe's server says."""

from __future__ import annotations

import pytest

from ._harness import UNCERTAIN, Env, check, check_duplicates
from ._server import API_KEY

pytestmark = pytest.mark.anyio

PROMPTS = [f"a paper boat on a puddle, number {i}" for i in range(4)]


@pytest.mark.parametrize("leak", ["lose-leak", "400-leak"])
async def test_probe_answer_quoting_the_key(tmp_path, leak) -> None:
    env = Env(tmp_path, honour_keys=True, replay_header=False)
    env.server.create_action = lambda p, n: "lose-leak" if p in PROMPTS[:3] else "ok"
    first = await env.run(PROMPTS, max_retries=0)
    check(env, first, PROMPTS)
    env.server.create_action = lambda p, n: leak if p == PROMPTS[0] else "ok"
    second = await env.run(PROMPTS)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    assert [o.kind for o in second.outcomes[:3]] == [UNCERTAIN] * 3


async def test_listing_row_whose_id_quotes_the_key(tmp_path) -> None:
    # The one lost create never arrived; the listing's only candidate has an id that
    # holds the API key. Reading it would put the key in an address.
    env = Env(tmp_path, honour_keys=True)
    env.server.create_action = lambda p, n: "drop" if p == PROMPTS[1] else "ok"
    first = await env.run(PROMPTS, max_retries=0)
    check(env, first, PROMPTS)
    now = env.clock.time()
    env.server.listing_extra = [
        {
            "created": int(now),
            "id": f"task-unified-{int(now)}-{API_KEY}",
            "model": "gpt-image-2",
            "object": "image.generation.task",
            "progress": 0,
            "status": "pending",
            "type": "image",
        }
    ]
    env.server.create_action = lambda p, n: "ok"
    second = await env.run(PROMPTS)
    check(env, second, PROMPTS)
    check_duplicates(env, PROMPTS)
    assert not any(API_KEY in path for _, path in env.server.requests)
