"""A real server process: the SDK's simulator, wrapped with a few extra behaviours.

Run: python _server.py PORT CONFIG_JSON

CONFIG keys: sim (Simulator kwargs), faults (Faults kwargs), list_error (bool: GET /v1/tasks
answers 500), storm_creates (int: the first N creates answered 429 with Retry-After),
storm_retry_after (seconds). Extra routes: GET /__record (the simulator's record),
POST /__control (JSON: update list_error / storm_creates).
"""

from __future__ import annotations

import asyncio
import json
import sys

import uvicorn

from evolink.testing import Faults, Simulator


def main() -> None:
    port = int(sys.argv[1])
    config = json.loads(sys.argv[2])
    knobs = dict(config.get("sim", {}))
    if isinstance(knobs.get("durations"), list):
        knobs["durations"] = tuple(knobs["durations"])
    sim = Simulator(faults=Faults(**config.get("faults", {})), **knobs)
    inner = sim.app
    state = {
        "list_error": bool(config.get("list_error", False)),
        "storm_creates": int(config.get("storm_creates", 0)),
        "storm_retry_after": str(config.get("storm_retry_after", 1)),
        "storm_answered": 0,
        "delay_create_answer": float(config.get("delay_create_answer", 0)),
    }

    async def send_json(send, status, payload, headers=()):
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        path, method = scope["path"], scope["method"]
        if path == "/__record":
            return await send_json(send, 200, sim.record())
        if path == "/__control":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            state.update(json.loads(body or b"{}"))
            return await send_json(send, 200, state)
        if path == "/v1/tasks" and method == "GET" and state["list_error"]:
            return await send_json(
                send, 500, {"error": {"code": "internal_error", "message": "listing down"}}
            )
        if path == "/v1/images/generations" and method == "POST" and state["storm_creates"] > 0:
            state["storm_creates"] -= 1
            state["storm_answered"] += 1
            return await send_json(
                send,
                429,
                {
                    "error": {
                        "code": "rate_limit_exceeded",
                        "message": "slow down",
                        "type": "rate_limit_error",
                    }
                },
                headers=[(b"retry-after", state["storm_retry_after"].encode())],
            )
        delay = float(state.get("delay_create_answer", 0) or 0)
        if path == "/v1/images/generations" and method == "POST" and delay > 0:
            # The task is made now; its answer leaves `delay` seconds later.
            held = []

            async def hold(message):
                held.append(message)

            await inner(scope, receive, hold)
            await asyncio.sleep(delay)
            for message in held:
                await send(message)
            return None
        return await inner(scope, receive, send)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
