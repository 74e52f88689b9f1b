"""Constants and payload builders shared by the core client's tests."""

from __future__ import annotations

from typing import Any

from evolink import RetryPolicy

API_KEY = "sk-evo-SECRET-abc123"
BASE_URL = "https://api.test.evolink"
TASK_ID = "task-unified-1757156493-imcg5zqt"
CREATE_PATH = "/v1/images/generations"
TASK_PATH = f"/v1/tasks/{TASK_ID}"
#: Backoff short enough that real-time retries cost nothing.
FAST_RETRIES = RetryPolicy(initial_delay=0.0, max_delay=0.0, max_retry_after=0.0)


def task_payload(**overrides: Any) -> dict[str, Any]:
    """A task as the API sends it (the SPEC's example), with `overrides` on top."""
    payload: dict[str, Any] = {
        "created": 1757156493,
        "id": TASK_ID,
        "model": "gpt-image-2",
        "object": "image.generation.task",
        "progress": 0,
        "status": "pending",
        "task_info": {"can_cancel": True, "estimated_time": 100},
        "type": "image",
        "usage": {"billing_rule": "per_call", "credits_reserved": 2.5, "user_group": "default"},
    }
    payload.update(overrides)
    return payload


def error_body(code: str | int, message: str = "nope", type_: str = "api_error") -> dict[str, Any]:
    """The current error envelope."""
    return {"error": {"code": code, "message": message, "type": type_}}
