"""Every JSON response shape the simulator produces validates against Evolink's OpenAPI.

The OpenAPI 3.1 files' schemas are JSON Schema 2020-12; `$ref`s resolve inside each file.
One honest exception: the task-detail schema's `status` enum lacks `cancelled`, which the
real API sends (undocumented, SPEC.md); the check adds it to that enum and nothing else.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from _sim_support import CREATE, api, create, create_id

from evolink.testing import Faults, Fixed, Simulator, VirtualClock

pytestmark = pytest.mark.anyio
# Evolink's own OpenAPI files, vendored beside this test so it never skips.
OPENAPI = Path(__file__).parent / "openapi"


def validator(file: str, schema: str, *, patch_cancelled: bool = False) -> jsonschema.Validator:
    document = json.loads((OPENAPI / file).read_text())
    components = copy.deepcopy(document["components"])
    if patch_cancelled:
        components["schemas"][schema]["properties"]["status"]["enum"].append("cancelled")
    root = {"$ref": f"#/components/schemas/{schema}", "components": components}
    return jsonschema.Draft202012Validator(root)


pytest.importorskip("jsonschema")
needs_openapi = pytest.mark.skipif(not OPENAPI.is_dir(), reason="no OpenAPI files here")
assert OPENAPI.is_dir(), "the vendored OpenAPI files are missing"


class Checker:
    """Validates each response by route and status, and remembers which shapes it saw."""

    def __init__(self) -> None:
        self.task = validator("get-task-detail.json", "TaskDetailResponse", patch_cancelled=True)
        self.task_error = validator("get-task-detail.json", "ErrorResponse")
        self.create = validator("gpt-4o-image-generation.json", "ImageGenerationResponse")
        self.create_error = validator("gpt-4o-image-generation.json", "ErrorResponse")
        self.credits = validator("get-credits.json", "CreditsResponse")
        self.credits_error = validator("get-credits.json", "ErrorResponse")
        self.seen: set[tuple[str, int]] = set()

    def check(self, response: httpx.Response) -> None:
        path, status = response.request.url.path, response.status_code
        body: Any = response.json()
        if path == CREATE:
            (self.create if status == 200 else self.create_error).validate(body)
            kind = "create"
        elif path == "/v1/credits":
            (self.credits if status == 200 else self.credits_error).validate(body)
            kind = "credits"
        elif status != 200:
            self.task_error.validate(body)
            kind = "read"
        elif path.startswith("/v1/tasks/") and path != "/v1/tasks/batch":
            self.task.validate(body)
            kind = f"read-{body['status']}"
        else:  # batch and list: each task is a task read
            for task in body["data"]:
                self.task.validate(task)
            kind = path
        self.seen.add((kind, status))


@needs_openapi
async def test_every_response_shape_validates(clock: VirtualClock) -> None:
    """Creates, reads in every status, batch, list, credits and each error validate."""
    checker = Checker()
    sim = Simulator(clock=clock, durations=Fixed(10), balance="22.5", max_concurrent_tasks=3)
    failing = Simulator(clock=clock, durations=Fixed(10), faults=Faults(task_failure=1.0), seed=1)
    cancelling = Simulator(clock=clock, durations=Fixed(10), faults=Faults(cancellation=1.0))
    broken = Simulator(
        clock=clock, faults=Faults(create_errors=1.0, read_errors=1.0), retry_after=1
    )
    storm = Simulator(clock=clock, faults=Faults(rate_limit=1.0))
    responses: list[httpx.Response] = []
    async with api(sim) as client, api(sim, key=None) as anonymous:
        responses.append(await create(client, n=4))
        task_id = responses[-1].json()["id"]
        responses.append(await client.get(f"/v1/tasks/{task_id}"))  # pending
        clock.advance(5)
        responses.append(await client.get(f"/v1/tasks/{task_id}"))  # processing
        responses.append(await create(client, n=4))
        responses.append(await create(client, n=2))  # 402 (2.5 of 22.5 left)
        responses.append(await create(client, size="7:5"))  # 400
        responses.append(await create(client, model="nope"))  # 403
        key = {"Idempotency-Key": "schema-0123456789ab"}
        responses.append(
            await client.post(CREATE, json={"model": "gpt-4o-image", "prompt": "a"}, headers=key)
        )
        responses.append(
            await client.post(CREATE, json={"model": "gpt-4o-image", "prompt": "b"}, headers=key)
        )  # 409
        responses.append(await create(client))  # 429: three unfinished
        clock.advance(5)
        responses.append(await client.get(f"/v1/tasks/{task_id}"))  # completed
        responses.append(await client.post("/v1/tasks/batch", json={"task_ids": [task_id]}))
        responses.append(await client.get("/v1/tasks"))
        responses.append(await client.get("/v1/credits"))
        responses.append(await client.get("/v1/tasks/nope"))  # 400
        responses.append(await client.get("/v1/tasks/task-unified-0-none"))  # 404
        responses.append(await anonymous.get("/v1/tasks/task-unified-0-none"))  # 401
        responses.append(await anonymous.post(CREATE, json={}))  # 401
        responses.append(await anonymous.get("/v1/credits"))  # 401 (legacy envelope)
    async with api(sim, key="sk-evo-intruder-key-000") as intruder:
        responses.append(await intruder.get(f"/v1/tasks/{task_id}"))  # 403
    for other, path in ((failing, "failed"), (cancelling, "cancelled")):
        async with api(other) as client:
            other_id = await create_id(client)
            clock.advance(10)
            responses.append(await client.get(f"/v1/tasks/{other_id}"))
            assert path == responses[-1].json()["status"]
    async with api(broken) as client:
        for _ in range(6):
            responses.append(await create(client))
            responses.append(await client.get("/v1/tasks/task-unified-0-none"))
            responses.append(await client.get("/v1/credits"))
    async with api(storm) as client:
        responses.append(await create(client))
        responses.append(await client.get("/v1/tasks/task-unified-0-none"))
        responses.append(await client.get("/v1/credits"))
    for response in responses:
        checker.check(response)
    expected = {
        ("create", 200),
        ("create", 400),
        ("create", 401),
        ("create", 402),
        ("create", 403),
        ("create", 409),
        ("create", 429),
        ("create", 500),
        ("create", 502),
        ("create", 503),
        ("read-pending", 200),
        ("read-processing", 200),
        ("read-completed", 200),
        ("read-failed", 200),
        ("read-cancelled", 200),
        ("read", 400),
        ("read", 401),
        ("read", 403),
        ("read", 404),
        ("read", 429),
        ("/v1/tasks/batch", 200),
        ("/v1/tasks", 200),
        ("credits", 200),
        ("credits", 401),
        ("credits", 429),
    }
    assert expected <= checker.seen


@needs_openapi
@pytest.mark.parametrize(
    "file",
    sorted(
        p.name
        for p in OPENAPI.glob("*.json")
        if "image" in p.name
        or p.name.startswith(("mj-", "qwen", "seedream", "wan", "z-", "krea", "grok", "nanobanana"))
    )
    if OPENAPI.is_dir()
    else [],
)
async def test_other_models_creates_validate(clock: VirtualClock, file: str) -> None:
    """Each model's OpenAPI example request creates a task whose answer fits that file."""
    document = json.loads((OPENAPI / file).read_text())
    operation = document["paths"][CREATE]["post"]
    examples = operation["requestBody"]["content"]["application/json"].get("examples", {})
    body = dict(next(iter(examples.values()))["value"])
    schema = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    required = document["components"]["schemas"][schema.rsplit("/", 1)[-1]]["required"]
    if "image_urls" in required and "image_urls" not in body:
        # Some files' examples leave out a field their own schema requires.
        body["image_urls"] = ["https://example.com/input.png"]
    sim = Simulator(clock=clock)
    async with api(sim) as client:
        response = await client.post(CREATE, json=body)
    assert 200 == response.status_code, (file, response.text)
    validator(file, "ImageGenerationResponse").validate(response.json())
