"""A small scriptable fake Evolink server for the model attack tests."""

from __future__ import annotations

import itertools
import json
import pathlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

DOCS = pathlib.Path("/work/shared/api/docs-2026-08-21")
KEY = "sk-evo-" + "a" * 48
BASE = "https://fake.evolink.invalid"

KIND_OF_PATH = {
    "/v1/images/generations": "image",
    "/v1/videos/generations": "video",
    "/v1/audios/generations": "audio",
}


def doc_examples() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(kind, spec file, example name, body) for every documented create example."""
    found: list[tuple[str, str, str, dict[str, Any]]] = []
    for path in sorted(DOCS.rglob("*.json")):
        if "_archived" in path.parts:
            continue
        doc = json.loads(path.read_text())
        for route, ops in doc.get("paths", {}).items():
            if route not in KIND_OF_PATH:
                continue
            content = ops["post"].get("requestBody", {}).get("content", {})
            media = content.get("application/json", {})
            bodies: list[tuple[str, Any]] = []
            if "example" in media:
                bodies.append(("example", media["example"]))
            for name, ex in media.get("examples", {}).items():
                bodies.append((name, ex.get("value")))
            rel = str(path.relative_to(DOCS))
            for name, body in bodies:
                found.append((KIND_OF_PATH[route], rel, name, body))
    return found


def request_schema(spec_rel: str) -> dict[str, Any]:
    doc = json.loads((DOCS / spec_rel).read_text())
    for route, ops in doc["paths"].items():
        if route in KIND_OF_PATH:
            ref = ops["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    raise KeyError(spec_rel)


class FakeServer:
    """Records every request; answers creates and task reads through overridable hooks."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.creates: list[dict[str, Any]] = []
        self.create_paths: list[str] = []
        self._ids = itertools.count(1)
        self.tasks: dict[str, dict[str, Any]] = {}
        # on_create(body, path) -> httpx.Response | None (None: default answer)
        self.on_create: Callable[[dict[str, Any], str], httpx.Response | None] | None = None
        # on_read(task) -> dict body for the read (default: completed)
        self.on_read: Callable[[dict[str, Any]], Any] | None = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _task(self, body: dict[str, Any], path: str) -> dict[str, Any]:
        kind = KIND_OF_PATH[path]
        tid = f"task-unified-1757169743-{next(self._ids):08d}"
        task = {
            "created": 1757169743,
            "id": tid,
            "model": body.get("model"),
            "object": f"{kind}.generation.task",
            "progress": 0,
            "status": "pending",
            "task_info": {"can_cancel": True, "estimated_time": 30},
            "type": kind,
            "usage": {
                "billing_rule": "per_second" if kind == "video" else "per_call",
                "credits_reserved": 5,
                "user_group": "default",
            },
        }
        self.tasks[tid] = task
        return task

    def completed(self, task: dict[str, Any]) -> dict[str, Any]:
        ext = {"image": "png", "video": "mp4", "audio": "mp3"}[task["type"]]
        done = dict(task, status="completed", progress=100)
        done["results"] = [f"{BASE}/files/{task['id']}.{ext}"]
        return done

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST" and path in KIND_OF_PATH:
            body = json.loads(request.content)
            self.creates.append(body)
            self.create_paths.append(path)
            if self.on_create is not None:
                answer = self.on_create(body, path)
                if answer is not None:
                    return answer
            return httpx.Response(200, json=self._task(body, path))
        if request.method == "GET" and path.startswith("/v1/tasks/"):
            tid = path.rsplit("/", 1)[1]
            task = self.tasks.get(tid)
            if task is None:
                return httpx.Response(
                    404, json={"error": {"code": "task_not_found", "message": "no"}}
                )
            if self.on_read is not None:
                answer = self.on_read(task)
                if isinstance(answer, httpx.Response):
                    return answer
                return httpx.Response(200, json=answer)
            return httpx.Response(200, json=self.completed(task))
        if request.method == "POST" and path == "/v1/tasks/batch":
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})
        if request.method == "GET" and path.startswith("/files/"):
            kind = path.rsplit(".", 1)[1]
            data = {
                "png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
                "mp4": b"\0\0\0\x18ftypisom\0\0\0\0isomiso2" + b"\0" * 64,
                "mp3": b"ID3\x03\0\0\0\0\0\0" + b"\xff\xfb\x90\x00" * 32,
            }[kind]
            ctype = {"png": "image/png", "mp4": "video/mp4", "mp3": "audio/mpeg"}[kind]
            return httpx.Response(200, content=data, headers={"Content-Type": ctype})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()
