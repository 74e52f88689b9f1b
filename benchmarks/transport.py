"""Client CPU per request: stock httpx transport against httpx-aiohttp's, through AsyncEvolink.

A tiny uvicorn server answers one task JSON on loopback (in its own process); the client
reads it N times, `concurrency` at a time, and reports its own CPU seconds per request.
Run: `python benchmarks/transport.py [--requests 3000]` (needs uvicorn, httpx-aiohttp).
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import subprocess
import sys
import time
from typing import Any

import anyio

TASK = {
    "id": "task-unified-1757156493-imcg5zqt",
    "status": "processing",
    "progress": 40,
    "created": 1757156493,
    "object": "image.generation.task",
    "type": "image",
    "task_info": {"can_cancel": True},
    "usage": {"billing_rule": "per_call", "credits_reserved": 2.5, "user_group": "default"},
}

SERVER = """
import json, sys, uvicorn
BODY = json.dumps(%r).encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": BODY})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(base_url: str, transport_name: str, requests: int, concurrency: int) -> float:
    from evolink import AsyncEvolink  # noqa: PLC0415

    transport: Any = None
    if transport_name == "aiohttp":
        from httpx_aiohttp import AiohttpTransport  # noqa: PLC0415

        transport = AiohttpTransport()
    async with AsyncEvolink(
        api_key="sk-evo-bench", base_url=base_url, transport=transport, max_connections=concurrency
    ) as client:
        await client.tasks.get(TASK["id"])  # warm the pool
        left = requests
        start = cpu()

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await client.tasks.get(TASK["id"])

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
        return (cpu() - start) / requests


def run(requests: int, concurrency: int) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER % (TASK,), str(port)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        base_url = f"http://127.0.0.1:{port}"
        results = {}
        for name in ("httpx", "aiohttp"):
            results[name] = anyio.run(measure, base_url, name, requests, concurrency)
        return results
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    results = run(args.requests, args.concurrency)
    for name, seconds in results.items():
        print(f"{name:8s} {seconds * 1000:.3f} ms CPU per request")
    print(f"aiohttp / httpx: {results['aiohttp'] / results['httpx']:.2f}")
    print(json.dumps({"cpu_per_request_ms": {k: v * 1000 for k, v in results.items()}}))


if __name__ == "__main__":
    main()
