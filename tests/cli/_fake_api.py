"""A small fake of the Evolink API for CLI tests, on real time (tasks take `duration` s).

It stands in for `evolink.testing.Simulator` where a test needs exact control: prompts
containing `fail_word` (FAIL) fail, `images` maps a URL path to a (status, content type,
body) answer.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import attrs
import httpx

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


@attrs.define(slots=False)  # tests patch its methods
class FakeAPI:
    duration: float = 0.05
    image_base: str = "https://files.fake.test"
    price: float = 2.5
    fail_word: str = "FAIL"
    images: dict[str, tuple[int, str, bytes]] = attrs.field(factory=dict)
    requests: list[httpx.Request] = attrs.field(factory=list)
    tasks: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    keys: dict[str, str] = attrs.field(factory=dict)
    _ids: Any = attrs.field(factory=lambda: itertools.count(1))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def creates(self) -> list[httpx.Request]:
        return [
            r for r in self.requests if r.method == "POST" and r.url.path.endswith("generations")
        ]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.url.host == "files.fake.test" or path.startswith("/files/"):
            status, kind, body = self.images.get(path, (200, "image/png", PNG))
            return httpx.Response(status, headers={"Content-Type": kind}, content=body)
        if path == "/v1/images/generations":
            return self._create(request)
        if path == "/v1/tasks/batch":
            ids = json.loads(request.content)["task_ids"]
            return httpx.Response(
                200, json={"data": [self._view(i) for i in ids if i in self.tasks]}
            )
        if path.startswith("/v1/tasks/"):
            task_id = path.rsplit("/", 1)[1]
            if task_id not in self.tasks:
                return httpx.Response(
                    404, json={"error": {"code": "task_not_found", "message": "no"}}
                )
            return httpx.Response(200, json=self._view(task_id))
        if path == "/v1/credits":
            balance = {"remaining_credits": 100, "used_credits": 5}
            return httpx.Response(200, json={"success": True, "data": {"user": balance}})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        key = request.headers.get("Idempotency-Key")
        if key in self.keys:
            return httpx.Response(200, json=self._view(self.keys[key]))
        task_id = f"task-unified-1757156493-{next(self._ids):08d}"
        n = body.get("n", 1)
        self.tasks[task_id] = {"body": body, "started": time.monotonic(), "n": n}
        if key:
            self.keys[key] = task_id
        return httpx.Response(200, json=self._view(task_id))

    def _view(self, task_id: str) -> dict[str, Any]:
        task = self.tasks[task_id]
        done = time.monotonic() - task["started"] >= self.duration
        failing = self.fail_word in task["body"]["prompt"]
        status = "processing"
        if done:
            status = "failed" if failing else "completed"
        view: dict[str, Any] = {
            "id": task_id,
            "created": 1757156493,
            "model": task["body"]["model"],
            "object": "image.generation.task",
            "progress": 100 if done else 10,
            "status": status,
            "task_info": {"can_cancel": True, "estimated_time": self.duration},
            "type": "image",
            "usage": {"billing_rule": "per_call", "credits_reserved": self.price * task["n"]},
        }
        if status == "completed":
            view["results"] = [
                f"{self.image_base}/{task_id}/{k}.png" for k in range(1, task["n"] + 1)
            ]
        if status == "failed":
            view["error"] = {
                "code": "content_policy_violation",
                "message": "refused",
                "type": "task_error",
            }
        return view
