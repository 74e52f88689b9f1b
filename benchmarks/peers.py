"""The clients we measure ourselves against, written as users write them by hand.

`poll_loop` is the usual script: httpx, an asyncio.Semaphore for concurrency, and a read of
each task every `interval` seconds (1 s by hand, 3 s as Evolink's own client does).
`raw_requests` replays a list of requests with bare httpx, to price our own overhead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx


async def poll_loop(
    base_url: str, api_key: str, prompts: list[str], *, max_in_flight: int, interval: float
) -> dict[str, Any]:
    """Create each task under a semaphore and read it every `interval` s until it ends.

    `elapsed` is the batch's own time in seconds, from a warm client (one request made).
    """
    semaphore = asyncio.Semaphore(max_in_flight)
    headers = {"Authorization": f"Bearer {api_key}"}
    done = 0
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits) as http:
        await http.get("/v1/credits")
        start = time.monotonic()

        async def one(prompt: str) -> None:
            nonlocal done
            async with semaphore:
                created = await http.post(
                    "/v1/images/generations", json={"model": "gpt-4o-image", "prompt": prompt}
                )
                task_id = created.json()["id"]
                while True:
                    await asyncio.sleep(interval)
                    task = (await http.get(f"/v1/tasks/{task_id}")).json()
                    if task["status"] in {"completed", "failed", "cancelled"}:
                        done += 1
                        return

        await asyncio.gather(*(one(p) for p in prompts))
        elapsed = time.monotonic() - start
    return {"completed": done, "elapsed": elapsed}


async def poll_waits(
    base_url: str,
    api_key: str,
    prompts: list[str],
    *,
    interval: float,
    connections: int,
    now: Callable[[], float],
) -> dict[str, float]:
    """Every prompt's handler at once: create, then read every `interval` s until it ends.

    The hand-written counterpart of N concurrent `tasks.wait` calls; returns when each
    task's loop saw it end (`now()`), by task id.
    """
    headers = {"Authorization": f"Bearer {api_key}"}
    returned: dict[str, float] = {}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=60
    ) as http:

        async def one(prompt: str) -> None:
            created = await http.post(
                "/v1/images/generations", json={"model": "gpt-4o-image", "prompt": prompt}
            )
            task_id = created.json()["id"]
            while True:
                await asyncio.sleep(interval)
                task = (await http.get(f"/v1/tasks/{task_id}")).json()
                if task["status"] in {"completed", "failed", "cancelled"}:
                    returned[task_id] = now()
                    return

        await asyncio.gather(*(one(p) for p in prompts))
    return returned


async def raw_requests(
    base_url: str, api_key: str, requests: list[tuple[str, str, Any]], *, concurrency: int
) -> int:
    """Send exactly these requests with bare httpx, `concurrency` at a time."""
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    queue: asyncio.Queue[tuple[str, str, Any]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    sent = 0
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits) as http:

        async def worker() -> None:
            nonlocal sent
            while not queue.empty():
                method, path, body = queue.get_nowait()
                response = await http.request(method, path, json=body)
                response.json()
                sent += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent
