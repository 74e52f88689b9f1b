"""The simulator served in its own process for the benchmarks, with one extra route.

`python benchmarks/sim_server.py PORT '{"durations": [2, 6], ...}'` serves
`Simulator(**knobs)`; `GET /_bench/truth` answers every task's true creation time,
duration, model, kind and credits charged and the server's request counts (in all and by
kind), so the harness can compute the oracle.

Two knobs are the harness's own: `"behaviour": NAME` merges that entry of
benchmarks/behaviours.py over the others, and `"speed": S, "anchor": T` runs the
simulator on `ScaledClock(S, anchor=T)` (the client takes the same clock). `"durations"`
is a `[low, high]` pair or a mapping of model to pairs (`ByModel`).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

import uvicorn
from behaviours import simulator_knobs

from evolink.testing import EntryKind, Faults, ScaledClock, Simulator


def by_kind(sim: Simulator) -> dict[str, Counter[str]]:
    """Creates and reads per kind of task: a batch read counts once for each kind it read."""
    kind_of = {t.id: t.kind.value for t in sim.tasks.values()}
    counts: dict[str, Counter[str]] = {}
    for request in sim.requests:
        if request.path.startswith("/v1/tasks/batch"):
            if request.status != 200:
                continue
            read = Counter(kind_of.get(i, "?") for i in (request.body or {}).get("task_ids", []))
            for kind, ids in read.items():
                counts.setdefault(kind, Counter()).update(batch_reads=1, batch_read_ids=ids)
            if len(read) > 1:
                for kind in read:
                    counts[kind]["batch_reads_shared"] += 1
        elif request.path.startswith("/v1/tasks/"):
            kind = kind_of.get(request.path.rsplit("/", 1)[-1], "?")
            counts.setdefault(kind, Counter())["task_reads"] += 1
        elif request.path.endswith("s/generations"):
            kind = request.path.split("/")[2].removesuffix("s")
            counts.setdefault(kind, Counter())["creates"] += 1
    return counts


def truth(sim: Simulator) -> dict[str, Any]:
    tasks = sorted(sim.tasks.values(), key=lambda t: t.created)
    charged: Counter[str] = Counter()
    for entry in sim.ledger.entries:
        if entry.kind is EntryKind.CHARGE:
            charged[entry.task_id] += float(entry.amount)
    kinds: Counter[str] = Counter()
    for request in sim.requests:
        if request.path.startswith("/v1/tasks/batch"):
            kinds["batch_reads"] += 1
            if request.status == 200:  # a refused batch (404, 429) read no task
                kinds["batch_read_ids"] += len((request.body or {}).get("task_ids", []))
        elif request.path.startswith("/v1/tasks/"):
            kinds["task_reads"] += 1
        elif request.path.endswith("/generations"):
            kinds["creates"] += 1
        if request.status == 429:
            kinds["rate_limited"] += 1
        kinds["requests"] += 1
    return {
        "tasks": [
            {
                "id": t.id,
                "created": t.created,
                "duration": t.duration,
                "status": t.final_status.value,
                "model": t.model,
                "kind": t.kind.value,
                "charged": charged[t.id],
            }
            for t in tasks
        ],
        "counts": dict(kinds),
        "by_kind": {kind: dict(counts) for kind, counts in by_kind(sim).items()},
    }


def main() -> None:
    port = int(sys.argv[1])
    knobs = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    if "faults" in knobs:
        faults = knobs.pop("faults")
        if "rate_limit_window" in faults:
            faults["rate_limit_window"] = tuple(faults["rate_limit_window"])
        knobs["faults"] = Faults(**faults)
    if isinstance(knobs.get("durations"), dict):
        knobs["durations"] = {m: tuple(pair) for m, pair in knobs["durations"].items()}
    elif "durations" in knobs:
        knobs["durations"] = tuple(knobs["durations"])
    if "behaviour" in knobs:
        knobs.update(simulator_knobs(knobs.pop("behaviour")))
    if "speed" in knobs:
        knobs["clock"] = ScaledClock(knobs.pop("speed"), anchor=knobs.pop("anchor"))
    sim = Simulator(**knobs)
    inner = sim.app

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_bench/truth":
            body = json.dumps(truth(sim)).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await inner(scope, receive, send)

    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )


if __name__ == "__main__":
    main()
