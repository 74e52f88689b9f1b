"""Helpers for the simulator's tests: raw HTTP into a simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from evolink.testing import TEST_API_KEY, Simulator

BASE_URL = "http://simulator.evolink.invalid"
AUTH = {"Authorization": f"Bearer {TEST_API_KEY}"}
CREATE = "/v1/images/generations"


@asynccontextmanager
async def api(
    sim: Simulator, *, key: str | None = TEST_API_KEY
) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client into the simulator, authenticated with `key`."""
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        transport=sim.transport(), base_url=BASE_URL, headers=headers
    ) as client:
        yield client


async def create(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    """POST a create with a default model and prompt."""
    payload: dict[str, Any] = {"model": "gpt-4o-image", "prompt": "a red fox in snow"}
    payload.update(body)
    return await client.post(CREATE, json=payload)


async def create_id(client: httpx.AsyncClient, **body: Any) -> str:
    response = await create(client, **body)
    assert 200 == response.status_code, response.text
    task_id: str = response.json()["id"]
    return task_id


def openapi_validator(file: str, schema: str) -> Any:
    """A JSON Schema validator for one schema of a vendored OpenAPI file (`cancelled` added
    to the task status enum, as test_openapi_schemas.py explains)."""
    import copy  # noqa: PLC0415 - only the schema checks need these
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    import jsonschema  # noqa: PLC0415

    document = json.loads((Path(__file__).parent / "openapi" / file).read_text())
    components = copy.deepcopy(document["components"])
    status = components["schemas"][schema].get("properties", {}).get("status", {})
    if "enum" in status:
        status["enum"].append("cancelled")
    root = {"$ref": f"#/components/schemas/{schema}", "components": components}
    return jsonschema.Draft202012Validator(root)


def task_validator() -> Any:
    """Validates a task read (`GET /v1/tasks/{id}`)."""
    return openapi_validator("get-task-detail.json", "TaskDetailResponse")


def create_validator() -> Any:
    """Validates a create's answer (`POST /v1/images/generations`)."""
    return openapi_validator("gpt-4o-image-generation.json", "ImageGenerationResponse")
