"""Evolink's callbacks to a replica chosen at random: the replicas test's router (uvicorn).

The simulator sends every callback here (the replicas' PUBLIC_URL); each goes on to one of
REPLICA_URLS (comma-separated) at random, as a load balancer in front of replicas would
send it. Each delivery is logged as one JSON line in CALLBACK_LOG: the task, the replica,
when it was passed on and answered (Unix time), the replica's status. The token in the
path is passed on, never logged.
"""

# No `from __future__ import annotations`: FastAPI reads handler annotations at runtime.

import json
import os
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
from fastapi import FastAPI, Request, Response

REPLICAS = os.environ["REPLICA_URLS"].split(",")
LOG = Path(os.environ["CALLBACK_LOG"])
clients: list[httpx.AsyncClient] = []


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with httpx.AsyncClient(timeout=10) as client:
        clients.append(client)
        yield


app = FastAPI(lifespan=lifespan)


@app.post("/evolink/callbacks/{token}")
async def forward(token: str, request: Request) -> Response:
    body = await request.body()
    replica = random.randrange(len(REPLICAS))
    forwarded = time.time()
    answer = await clients[0].post(
        f"{REPLICAS[replica]}/evolink/callbacks/{token}",
        content=body,
        headers={"content-type": "application/json"},
    )
    record = {
        "task_id": json.loads(body).get("id"),
        "replica": replica,
        "forwarded": forwarded,
        "answered": time.time(),
        "status": answer.status_code,
    }
    async with await anyio.Path(LOG).open("a") as log:
        await log.write(json.dumps(record) + "\n")
    return Response(status_code=answer.status_code)
