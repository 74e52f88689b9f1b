"""One client run against a served simulator, in its own process; prints JSON.

    python benchmarks/scenario.py NAME BASE_URL --tasks N --in-flight K [--backend B]

Names: `ours` (batch reads), `ours_get` (one GET per task), `hand_1s` / `official_3s`
(peers.poll_loop), `raw` (bare httpx replaying a request mix), `scale` (N tasks in flight
at once: CPU while waiting, memory per task), `waits` (N request handlers on one client,
each `images.generate` then `tasks.wait`; reports when each wait returned), `waits_loop`
(the same handlers hand-written: each polls its task every second).

`--max-poll-interval S` gives `ours` and `waits` that client option.

`--speed S --anchor T` runs on `ScaledClock(S, anchor=T)`, as the served simulator does:
the peers' intervals are clock seconds, and `wall` is reported in clock seconds.

`wall` of a batch (`ours`, `ours_get`, the peers) is the batch alone, on a warm client (as
in a running app: the HTTP backend imported, one connection open): the oracle starts the
first tasks at once, and a cold process's first request (aiohttp's import: about 0.1 s)
is not the waiting engine's. `cpu` is the whole run's.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import anyio
import peers
import psutil

from evolink import AsyncEvolink
from evolink.testing import ScaledClock

KEY = "sk-evo-benchmark-key-0000"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kb() -> float:
    return psutil.Process().memory_info().rss / 1024


def prompts(n: int) -> list[str]:
    return [f"benchmark prompt {i}" for i in range(n)]


def clock(args: argparse.Namespace) -> ScaledClock | None:
    return None if args.speed == 1 else ScaledClock(args.speed, anchor=args.anchor)


async def ours(args: argparse.Namespace, *, batch_reads: bool) -> dict[str, Any]:
    async with AsyncEvolink(
        api_key=KEY,
        base_url=args.base_url,
        http_backend=args.backend,
        max_connections=64,
        clock=clock(args),
        max_poll_interval=args.max_poll_interval,
    ) as client:
        await client.credits()  # warm, as `mixed` is: see the module's docstring
        start = client.clock.monotonic()
        report = await client.images.generate_many(
            prompts(args.tasks), max_in_flight=args.in_flight, batch_reads=batch_reads
        )
        wall = client.clock.monotonic() - start
    return {"completed": report.counts[report.outcomes[0].kind.COMPLETED], "wall": wall}


async def peer(args: argparse.Namespace, interval: float) -> dict[str, Any]:
    result = await peers.poll_loop(
        args.base_url,
        KEY,
        prompts(args.tasks),
        max_in_flight=args.in_flight,
        interval=interval / args.speed,
    )
    return {**result, "wall": result["elapsed"] * args.speed}


async def waits(args: argparse.Namespace) -> dict[str, Any]:
    """N request handlers at once on one client: each creates a task and waits for it."""
    returned: dict[str, float] = {}
    async with AsyncEvolink(
        api_key=KEY,
        base_url=args.base_url,
        http_backend=args.backend,
        max_connections=64,
        clock=clock(args),
        max_poll_interval=args.max_poll_interval,
    ) as client:

        async def handler(prompt: str) -> None:
            task = await client.images.generate(prompt)
            done = await client.tasks.wait(task)
            returned[done.id] = client.clock.time()

        async with anyio.create_task_group() as tg:
            for prompt in prompts(args.tasks):
                tg.start_soon(handler, prompt)
    return {"completed": len(returned), "returned": returned}


async def waits_loop(args: argparse.Namespace) -> dict[str, Any]:
    """The same N handlers, hand-written: httpx, each polling its task every second."""
    scaled = clock(args)
    returned = await peers.poll_waits(
        args.base_url,
        KEY,
        prompts(args.tasks),
        interval=1.0 / args.speed,
        connections=64,
        now=time.time if scaled is None else scaled.time,
    )
    return {"completed": len(returned), "returned": returned}


async def mixed(args: argparse.Namespace) -> dict[str, Any]:
    """One `generate_many` per kind, all started at once on one client."""
    plan: dict[str, dict[str, Any]] = json.loads(args.plan)
    kinds: dict[str, dict[str, Any]] = {}
    async with AsyncEvolink(
        api_key=KEY,
        base_url=args.base_url,
        http_backend=args.backend,
        max_connections=64,
        clock=clock(args),
    ) as client:
        doors = {"image": client.images, "video": client.videos, "audio": client.audios}
        # A warm client, as in a running app: the HTTP backend imported, a connection open.
        # Cold, those real milliseconds would weigh `speed` times more on the scaled clock.
        await client.credits()
        start = client.clock.monotonic()

        async def one(kind: str, spec: dict[str, Any]) -> None:
            report = await doors[kind].generate_many(
                [f"benchmark {kind} {i}" for i in range(spec["tasks"])],
                model=spec["model"],
                params=spec.get("params", {}),
                max_in_flight=args.in_flight,
            )
            kinds[kind] = {
                "wall": client.clock.monotonic() - start,
                "completed": len(report.completed),
                "outcomes": {k.value: n for k, n in report.counts.items() if n},
                "requests": report.requests,
                "reserved": str(report.reserved),
                "charged": str(report.charged),
                "released": str(report.released),
            }

        async with anyio.create_task_group() as tg:
            for kind, spec in plan.items():
                tg.start_soon(one, kind, spec)
    return {"completed": sum(k["completed"] for k in kinds.values()), "kinds": kinds}


async def raw(args: argparse.Namespace) -> dict[str, Any]:
    mix = json.loads(args.mix)
    body = {"model": "gpt-4o-image", "prompt": "benchmark prompt"}
    creates = [("POST", "/v1/images/generations", body)] * int(mix.get("creates", 0))
    sent = await peers.raw_requests(args.base_url, KEY, creates, concurrency=args.in_flight)
    # Reads of tasks that exist: the same number and shape as the client under test made.
    async with AsyncEvolink(api_key=KEY, base_url=args.base_url, http_backend="httpx") as c:
        listed = [task.id async for task in c.tasks.list(page_size=50, limit=50)]
    ids = listed or ["task-unified-0-missing"]
    per_batch = max(1, round(mix.get("batch_read_ids", 0) / max(1, mix.get("batch_reads", 1))))
    reads = [("POST", "/v1/tasks/batch", {"task_ids": ids[:per_batch]})] * int(
        mix.get("batch_reads", 0)
    )
    reads += [("GET", f"/v1/tasks/{ids[0]}", None)] * int(mix.get("task_reads", 0))
    start = cpu()
    sent += await peers.raw_requests(args.base_url, KEY, reads, concurrency=args.in_flight)
    return {"requests": sent, "cpu_reads": cpu() - start}


async def scale(args: argparse.Namespace) -> dict[str, Any]:
    """Put every task in flight at once; then measure CPU over a waiting window and RSS."""
    async with AsyncEvolink(
        api_key=KEY, base_url=args.base_url, http_backend=args.backend, max_connections=64
    ) as client:
        before = rss_kb()
        result: dict[str, Any] = {}
        with anyio.CancelScope() as scope:
            async with client.batch(max_in_flight=args.tasks) as batch:
                await batch.submit_all(prompts(args.tasks))
                while batch.progress().in_flight < args.tasks:  # noqa: ASYNC110 - a bench probe
                    await anyio.sleep(0.2)
                result["created_after"] = time.monotonic() - START
                await anyio.sleep(2)  # let the first reads settle into their plans
                cpu0, wall0 = cpu(), time.monotonic()
                await anyio.sleep(args.window)
                result["cpu_while_waiting"] = (cpu() - cpu0) / (time.monotonic() - wall0)
                result["rss_per_task_kb"] = (rss_kb() - before) / args.tasks
                scope.cancel()
    return result


START = time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("base_url")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--backend", default="httpx")
    parser.add_argument("--mix", default="{}")
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--anchor", type=float, default=0.0)
    parser.add_argument("--plan", default="{}")
    parser.add_argument("--max-poll-interval", type=float, default=None)
    args = parser.parse_args()
    runners = {
        "ours": lambda: ours(args, batch_reads=True),
        "ours_get": lambda: ours(args, batch_reads=False),
        "hand_1s": lambda: peer(args, 1.0),
        "official_3s": lambda: peer(args, 3.0),
        "raw": lambda: raw(args),
        "scale": lambda: scale(args),
        "waits": lambda: waits(args),
        "waits_loop": lambda: waits_loop(args),
        "mixed": lambda: mixed(args),
    }
    cpu0, wall0 = cpu(), time.monotonic()
    result = anyio.run(runners[args.name])
    wall = (time.monotonic() - wall0) * args.speed
    result.update(cpu=cpu() - cpu0, rss_kb=rss_kb())
    result.setdefault("wall", wall)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
