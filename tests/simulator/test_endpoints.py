"""Every endpoint of the simulator, its auth, validation, errors and idempotency."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from _sim_support import AUTH, BASE_URL, CREATE, api, create, create_id

from evolink.testing import TEST_API_KEY, Fixed, Simulator, VirtualClock

pytestmark = pytest.mark.anyio


async def test_create_answers_a_pending_task(clock: VirtualClock) -> None:
    """A create answers the documented pending task, with a request id and a reservation."""
    sim = Simulator(clock=clock, durations=Fixed(20))
    async with api(sim) as client:
        response = await create(client, n=2, size="2:3")
    assert 200 == response.status_code
    body = response.json()
    assert body["id"].startswith(f"task-unified-{int(clock.time())}-")
    assert {
        "created": int(clock.time()),
        "model": "gpt-4o-image-beta",  # the alias, mapped as the docs say
        "object": "image.generation.task",
        "progress": 0,
        "status": "pending",
        "type": "image",
        "usage": {"billing_rule": "per_call", "credits_reserved": 5.0, "user_group": "default"},
    } == {k: v for k, v in body.items() if k not in {"id", "task_info"}}
    assert body["task_info"]["can_cancel"] is True
    assert response.headers["x-request-id"].startswith("sim-req-")


async def test_read_a_task(clock: VirtualClock) -> None:
    """`GET /v1/tasks/{id}` answers the task; completed ones carry results and credits used."""
    sim = Simulator(clock=clock, durations=Fixed(10))
    async with api(sim) as client:
        task_id = await create_id(client)
        clock.advance(11)
        response = await client.get(f"/v1/tasks/{task_id}")
    body = response.json()
    assert 200 == response.status_code
    assert "completed" == body["status"]
    assert 100 == body["progress"]
    assert [f"{BASE_URL}/results/{task_id}/0.png"] == body["results"]
    assert 2.5 == body["usage"]["credits_used"]
    assert {"can_cancel": False} == body["task_info"]


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        pytest.param({}, "/v1/credits", id="no-header"),
        pytest.param({"Authorization": "Basic abc"}, "/v1/models", id="not-bearer"),
        pytest.param({"Authorization": "Bearer sk-other"}, "/v1/tasks", id="not-sk-evo"),
        pytest.param({"Authorization": "Bearer sk-evo-"}, CREATE, id="prefix-only"),
    ],
)
async def test_unauthorized(clock: VirtualClock, headers: dict[str, str], path: str) -> None:
    """Without a valid bearer key every API route answers 401 `unauthorized`."""
    sim = Simulator(clock=clock)
    async with httpx.AsyncClient(transport=sim.transport(), base_url=BASE_URL) as client:
        method = "POST" if path == CREATE else "GET"
        response = await client.request(method, path, headers=headers, json={})
    assert 401 == response.status_code
    code = response.json()["error"]["code"]
    assert (401 if path == "/v1/credits" else "unauthorized") == code
    assert "authentication_error" == response.json()["error"]["type"]


async def test_api_keys_knob_limits_keys(clock: VirtualClock) -> None:
    """With `api_keys`, only those keys are accepted."""
    sim = Simulator(clock=clock, api_keys={"sk-evo-only-this-one"})
    async with api(sim) as client:
        refused = await client.get("/v1/credits")
    async with api(sim, key="sk-evo-only-this-one") as client:
        accepted = await client.get("/v1/credits")
    assert (401, 200) == (refused.status_code, accepted.status_code)


INVALID_BODIES = [
    pytest.param({"prompt": "x"}, "model", id="no-model"),
    pytest.param({"prompt": ""}, "prompt", id="empty-prompt"),
    pytest.param({"prompt": "   "}, "prompt", id="blank-prompt"),
    pytest.param({"prompt": "x" * 2001}, "prompt", id="prompt-too-long"),
    pytest.param({"prompt": 3}, "prompt", id="prompt-not-string"),
    pytest.param({"size": "16:9"}, "size", id="size-not-in-enum"),
    pytest.param({"size": 5}, "size", id="size-not-string"),
    pytest.param({"n": 3}, "n", id="n-3"),
    pytest.param({"n": True}, "n", id="n-bool"),
    pytest.param({"n": "2"}, "n", id="n-string"),
    pytest.param({"image_urls": "https://a.example/x.png"}, "image_urls", id="urls-not-list"),
    pytest.param({"image_urls": ["ftp://a.example/x.png"]}, "image_urls", id="urls-not-http"),
    pytest.param(
        {"image_urls": [f"https://a.example/{i}.png" for i in range(6)]},
        "image_urls",
        id="six-urls",
    ),
    pytest.param({"mask_url": "not a url"}, "mask_url", id="mask-not-url"),
    pytest.param(
        {
            "image_urls": ["https://a.example/1.png", "https://a.example/2.png"],
            "mask_url": "https://a.example/m.png",
        },
        "mask_url",
        id="mask-with-two-images",
    ),
    pytest.param({"callback_url": "http://hooks.example.com/x"}, "callback_url", id="cb-http"),
    pytest.param({"callback_url": "https://127.0.0.1/x"}, "callback_url", id="cb-loopback"),
    pytest.param({"callback_url": "https://10.1.2.3/x"}, "callback_url", id="cb-private"),
    pytest.param({"callback_url": "https://localhost/x"}, "callback_url", id="cb-localhost"),
    pytest.param({"callback_url": "https://box.internal/x"}, "callback_url", id="cb-internal"),
    pytest.param(
        {"callback_url": "https://hooks.example.com/" + "x" * 2048}, "callback_url", id="cb-long"
    ),
    pytest.param({"callback_url": "hooks"}, "callback_url", id="cb-relative"),
    pytest.param({"callback_url": 7}, "callback_url", id="cb-not-string"),
    pytest.param({"model": "qwen-image-edit"}, "image_urls", id="edit-model-needs-images"),
    pytest.param({"model": "z-image-turbo", "n": 11}, "n", id="other-model-n-range"),
    pytest.param({"model": "z-image-turbo", "prompt": "x" * 10_001}, "prompt", id="long-other"),
]


@pytest.mark.parametrize(("override", "param"), INVALID_BODIES)
async def test_invalid_create(clock: VirtualClock, override: dict[str, Any], param: str) -> None:
    """A create breaking a documented rule answers 400 `invalid_request` naming the field."""
    sim = Simulator(clock=clock)
    body: dict[str, Any] = {"model": "gpt-4o-image", "prompt": "a fox"}
    body.update(override)
    if param == "model":
        del body["model"]
    async with api(sim) as client:
        response = await client.post(CREATE, json=body)
    assert 400 == response.status_code
    assert {"code": "invalid_request", "type": "invalid_request_error", "param": param} == {
        k: v for k, v in response.json()["error"].items() if k != "message"
    }
    assert {} == dict(sim.tasks)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_create_body_must_be_an_object(clock: VirtualClock, content: bytes) -> None:
    """A create whose body is not a JSON object answers 400."""
    sim = Simulator(clock=clock)
    async with api(sim) as client:
        response = await client.post(CREATE, content=content)
    assert (400, "body") == (response.status_code, response.json()["error"]["param"])


@pytest.mark.parametrize(
    "override",
    [
        pytest.param({"model": "gpt-4o-image-beta", "size": "1536x1024", "n": 4}, id="beta-n4"),
        pytest.param(
            {"image_urls": ["https://a.example/1.png"], "mask_url": "https://a.example/m.png"},
            id="mask-with-one-image",
        ),
        pytest.param(
            {
                "model": "doubao-seedream-5.0-pro-layerize",
                "prompt": None,
                "image_urls": ["https://a.example/1.png"],
            },
            id="layerize-no-prompt",
        ),
        pytest.param(
            {"model": "nano-banana-2-beta", "size": "21:9", "quality": "2K"},
            id="other-model-fields",
        ),
        pytest.param({"callback_url": "https://hooks.example.com/evolink"}, id="public-cb"),
    ],
)
async def test_valid_creates(clock: VirtualClock, override: dict[str, Any]) -> None:
    """Documented combinations and other models' own fields are accepted."""
    sim = Simulator(clock=clock)
    body: dict[str, Any] = {"model": "gpt-4o-image", "prompt": "a fox", **override}
    body = {k: v for k, v in body.items() if v is not None}
    async with api(sim) as client:
        response = await client.post(CREATE, json=body)
    assert 200 == response.status_code, response.text


async def test_local_callbacks_switch(clock: VirtualClock) -> None:
    """`allow_local_callbacks` accepts http:// and loopback callback URLs."""
    sim = Simulator(clock=clock, allow_local_callbacks=True)
    async with api(sim) as client:
        response = await create(client, callback_url="http://127.0.0.1:9/hook")
    assert 200 == response.status_code


async def test_unknown_model_is_denied(clock: VirtualClock) -> None:
    """A model the simulator does not offer answers 403 `model_access_denied`."""
    sim = Simulator(clock=clock)
    async with api(sim) as client:
        response = await create(client, model="dall-e-9")
    assert 403 == response.status_code
    assert "model_access_denied" == response.json()["error"]["code"]


async def test_prices_knob_adds_models(clock: VirtualClock) -> None:
    """`prices` changes a model's price and can add a model."""
    sim = Simulator(clock=clock, prices={"gpt-4o-image": "3", "my-model": 1.1})
    async with api(sim) as client:
        first = await create(client)
        second = await create(client, model="my-model", n=3)
    assert 3.0 == first.json()["usage"]["credits_reserved"]
    assert 3.3 == second.json()["usage"]["credits_reserved"]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        pytest.param("/v1/tasks/abc", 400, "invalid_task_id", id="bad-prefix"),
        pytest.param("/v1/tasks/task-unified-1-nothere", 404, "task_not_found", id="unknown"),
    ],
)
async def test_read_errors(clock: VirtualClock, path: str, status: int, code: str) -> None:
    """Task reads answer the task-read error codes."""
    sim = Simulator(clock=clock)
    async with api(sim) as client:
        response = await client.get(path)
    assert (status, code) == (response.status_code, response.json()["error"]["code"])


async def test_other_keys_task_is_forbidden(clock: VirtualClock) -> None:
    """A task made with one key answers 403 `permission_denied` to another key."""
    sim = Simulator(clock=clock)
    async with api(sim) as client:
        task_id = await create_id(client)
    async with api(sim, key="sk-evo-somebody-else-1234") as other:
        response = await other.get(f"/v1/tasks/{task_id}")
        batch = await other.post("/v1/tasks/batch", json={"task_ids": [task_id]})
    assert (403, "permission_denied") == (response.status_code, response.json()["error"]["code"])
    assert {"data": []} == batch.json()


async def test_tasks_expire(clock: VirtualClock) -> None:
    """After `task_ttl` a task answers 404."""
    sim = Simulator(clock=clock, durations=Fixed(5), task_ttl=100)
    async with api(sim) as client:
        task_id = await create_id(client)
        clock.advance(99)
        before = await client.get(f"/v1/tasks/{task_id}")
        clock.advance(1)
        after = await client.get(f"/v1/tasks/{task_id}")
    assert (200, 404) == (before.status_code, after.status_code)


async def test_batch_endpoint(clock: VirtualClock) -> None:
    """`POST /v1/tasks/batch` answers the known ids in the asked order, once each."""
    sim = Simulator(clock=clock)
    async with api(sim) as client:
        ids = [await create_id(client) for _ in range(3)]
        asked = [ids[2], "task-unified-0-missing", ids[0], ids[2], "garbage"]
        response = await client.post("/v1/tasks/batch", json={"task_ids": asked})
    assert 200 == response.status_code
    assert [ids[2], ids[0]] == [task["id"] for task in response.json()["data"]]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"task_ids": [f"task-unified-1-{i}" for i in range(51)]}, id="51-ids"),
        pytest.param({"task_ids": "task-unified-1-x"}, id="not-a-list"),
        pytest.param({"task_ids": [1]}, id="not-strings"),
        pytest.param([], id="not-an-object"),
    ],
)
async def test_batch_endpoint_refusals(clock: VirtualClock, body: Any) -> None:
    """The batch endpoint takes at most 50 string ids in an object."""
    sim = Simulator(clock=clock)
    async with api(sim) as client:
        response = await client.post("/v1/tasks/batch", json=body)
    assert (400, "task_ids") == (response.status_code, response.json()["error"]["param"])


async def test_batch_endpoint_switch(clock: VirtualClock) -> None:
    """With `batch_endpoint=False` the batch route answers 404, like an unknown route."""
    sim = Simulator(clock=clock, batch_endpoint=False)
    async with api(sim) as client:
        response = await client.post("/v1/tasks/batch", json={"task_ids": []})
    assert 404 == response.status_code


async def test_list_tasks(clock: VirtualClock) -> None:
    """`GET /v1/tasks` lists the key's tasks newest first, filtered and paginated."""
    sim = Simulator(clock=clock, durations=Fixed(10))
    async with api(sim) as client:
        old = [await create_id(client) for _ in range(3)]
        clock.advance(20)
        new = [await create_id(client) for _ in range(2)]
        everything = (await client.get("/v1/tasks", params={"page_size": 4})).json()
        second = (await client.get("/v1/tasks", params={"page": 2, "page_size": 4})).json()
        completed = (await client.get("/v1/tasks", params={"status": "completed"})).json()
        bad = await client.get("/v1/tasks", params={"page": "x"})
        zero = await client.get("/v1/tasks", params={"page": 0})
    assert [*reversed(new), *reversed(old)][:4] == [t["id"] for t in everything["data"]]
    assert (5, 1, 4) == (everything["total"], everything["page"], everything["page_size"])
    assert [old[0]] == [t["id"] for t in second["data"]]
    assert list(reversed(old)) == [t["id"] for t in completed["data"]]
    assert (400, 400) == (bad.status_code, zero.status_code)


async def test_models(clock: VirtualClock) -> None:
    """`GET /v1/models` lists the models on offer."""
    sim = Simulator(clock=clock)
    async with api(sim) as client:
        response = await client.get("/v1/models")
    ids = {model["id"] for model in response.json()["data"]}
    assert {"gpt-4o-image", "gpt-4o-image-beta", "z-image-turbo"} <= ids


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/v2/nothing", 404, id="unknown-route"),
        pytest.param("DELETE", "/v1/tasks/task-unified-1-x", 405, id="wrong-method"),
        pytest.param("GET", CREATE, 405, id="get-create"),
    ],
)
async def test_unknown_routes(clock: VirtualClock, method: str, path: str, status: int) -> None:
    """Unknown routes answer 404 and known ones with the wrong method 405."""
    sim = Simulator(clock=clock)
    async with api(sim) as client:
        response = await client.request(method, path)
    assert status == response.status_code
    assert "x-request-id" in response.headers


async def test_idempotent_replay(clock: VirtualClock) -> None:
    """The same key and body answer the same task, flagged as a replay, reserved once."""
    sim = Simulator(clock=clock)
    headers = {"Idempotency-Key": "key-0123456789abcdef"}
    body = {"model": "gpt-4o-image", "prompt": "a fox", "n": 2}
    async with api(sim) as client:
        first = await client.post(CREATE, json=body, headers=headers)
        clock.advance(3)
        second = await client.post(CREATE, json=body, headers=headers)
    assert first.json() == second.json()
    assert "idempotency-replayed" not in first.headers
    assert "true" == second.headers["idempotency-replayed"]
    assert 1 == len(sim.tasks)
    assert 5 == sim.ledger.reserved
    assert [False, True] == [r.replayed for r in sim.requests]


async def test_idempotency_conflict(clock: VirtualClock) -> None:
    """The same key with another body answers 409 `idempotency_conflict`."""
    sim = Simulator(clock=clock)
    headers = {"Idempotency-Key": "key-0123456789abcdef"}
    async with api(sim) as client:
        await client.post(CREATE, json={"model": "gpt-4o-image", "prompt": "a"}, headers=headers)
        response = await client.post(
            CREATE, json={"model": "gpt-4o-image", "prompt": "b"}, headers=headers
        )
    assert (409, "idempotency_conflict") == (
        response.status_code,
        response.json()["error"]["code"],
    )


async def test_idempotency_keys_are_per_api_key(clock: VirtualClock) -> None:
    """Two API keys may use the same Idempotency-Key independently."""
    sim = Simulator(clock=clock)
    headers = {"Idempotency-Key": "key-0123456789abcdef"}
    body = {"model": "gpt-4o-image", "prompt": "a"}
    async with api(sim) as one, api(sim, key="sk-evo-another-key-9999") as two:
        first = await one.post(CREATE, json=body, headers=headers)
        second = await two.post(CREATE, json=body, headers=headers)
    assert first.json()["id"] != second.json()["id"]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("short", id="too-short"),
        pytest.param("x" * 97, id="too-long"),
        pytest.param("has spaces in it here", id="bad-chars"),
    ],
)
async def test_idempotency_key_format(clock: VirtualClock, key: str) -> None:
    """An Idempotency-Key outside 16-96 chars of [A-Za-z0-9._-] answers 400."""
    sim = Simulator(clock=clock)
    async with api(sim) as client:
        response = await client.post(
            CREATE, json={"model": "gpt-4o-image", "prompt": "a"}, headers={"Idempotency-Key": key}
        )
    assert (400, "Idempotency-Key") == (response.status_code, response.json()["error"]["param"])


async def test_idempotency_off(clock: VirtualClock) -> None:
    """With `idempotency=False` the header is ignored: every create makes a task."""
    sim = Simulator(clock=clock, idempotency=False)
    headers = {"Idempotency-Key": "bad"}
    async with api(sim) as client:
        for _ in range(2):
            await client.post(
                CREATE, json={"model": "gpt-4o-image", "prompt": "a"}, headers=headers
            )
    assert 2 == len(sim.tasks)


async def test_request_record(clock: VirtualClock) -> None:
    """Every request is recorded with its time, redacted key, body and status."""
    sim = Simulator(clock=clock)
    async with api(sim) as client:
        await create(client)
        clock.advance(2)
        await client.get("/v1/credits")
    create_record, credits_record = sim.requests
    assert ("POST", CREATE, 200) == (create_record.method, create_record.path, create_record.status)
    assert {"model": "gpt-4o-image", "prompt": "a red fox in snow"} == create_record.body
    assert "sk-evo-…0000" == create_record.key
    assert TEST_API_KEY not in repr(sim.requests)
    assert clock.time() - 2 == create_record.time
    assert (None, 1, 1, 2) == (
        credits_record.body,
        sim.count("POST"),
        sim.count("GET", "/v1/credits"),
        sim.count(),
    )


async def test_host_header_names_the_origin(clock: VirtualClock) -> None:
    """Result URLs use the host the request came to."""
    sim = Simulator(clock=clock, durations=Fixed(1))
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url="https://elsewhere.test:8443", headers=AUTH
    ) as client:
        task_id = await create_id(client)
        clock.advance(2)
        body = (await client.get(f"/v1/tasks/{task_id}")).json()
    assert body["results"][0].startswith("https://elsewhere.test:8443/results/")
