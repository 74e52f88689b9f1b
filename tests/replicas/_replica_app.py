"""One replica of an app that waits on Evolink tasks, for the replicas test (run by uvicorn).

Configured from the environment: EVOLINK_API_KEY and EVOLINK_BASE_URL (the served
simulator), PUBLIC_URL (where Evolink's callbacks go: the random forwarder), DATABASE_URL
(the PostgreSQL every replica shares), REPLICA_NAME and CALLBACK_GRACE.
"""

# No `from __future__ import annotations`: FastAPI reads handler annotations at runtime.

import os
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from evolink import AsyncEvolink
from evolink.fastapi import EvolinkIntegration

NAME = os.environ["REPLICA_NAME"]

evolink = EvolinkIntegration(
    public_url=os.environ["PUBLIC_URL"],
    journal=os.environ["DATABASE_URL"],  # replicas share callbacks (and the secret)
    client_factory=lambda: AsyncEvolink(allow_local_callbacks=True),
    callback_grace=float(os.environ.get("CALLBACK_GRACE", "5")),
)
app = FastAPI(lifespan=evolink.lifespan)
app.include_router(evolink.callback_router)
Client = Annotated[AsyncEvolink, Depends(evolink.client)]


@app.get("/health")
async def health() -> dict[str, str]:
    return {"replica": NAME}


@app.post("/images")
async def create(prompt: str, client: Client) -> dict[str, Any]:
    task = await client.images.generate(prompt, callback_url=evolink.callback_url())
    return {"task_id": task.id, "replica": NAME}


@app.get("/images/{task_id}/wait")
async def wait(task_id: str) -> dict[str, Any]:
    task = await evolink.wait(task_id, timeout=60)
    return {"status": task.status.value, "woke": time.time(), "replica": NAME}


@app.get("/stats")
async def stats() -> dict[str, Any]:
    channel = evolink._replicas  # the test reads how callbacks travelled
    return {
        "replica": NAME,
        "deliveries": evolink.deliveries,
        "heard": channel.heard if channel else None,
        "published": channel.published if channel else None,
    }
