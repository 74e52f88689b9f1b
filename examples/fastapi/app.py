"""A FastAPI app that creates images with Evolink and hears back by callback.

Run it against the simulator with one command (no key needed):

    python examples/fastapi/app.py

then open http://127.0.0.1:8001/docs, or:

    curl -X POST 'http://127.0.0.1:8001/images?prompt=a+red+fox'
    curl http://127.0.0.1:8001/images/<task_id>/wait
    curl -X POST http://127.0.0.1:8001/batches -H 'content-type: application/json' \\
         -d '["a fox", "an owl", "a heron"]'
    curl -N http://127.0.0.1:8001/batches/<batch_id>/events      # live progress (SSE)

With `EVOLINK_API_KEY` set, it talks to the real API instead; set `PUBLIC_URL` to the
HTTPS address Evolink can reach this app at, and `EVOLINK_CALLBACK_SECRET` to a secret.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException
from fastapi.responses import StreamingResponse

from evolink import AsyncEvolink, EvolinkError
from evolink.fastapi import EvolinkIntegration

PORT = int(os.environ.get("PORT", "8001"))
SIMULATED = not os.environ.get("EVOLINK_API_KEY")
# Against a local simulator, callbacks come over plain http to 127.0.0.1.
LOCAL = SIMULATED or os.environ.get("EVOLINK_BASE_URL", "").startswith("http://127.0.0.1")

evolink = EvolinkIntegration(
    public_url=os.environ.get("PUBLIC_URL", f"http://127.0.0.1:{PORT}"),
    secret=os.environ.get("EVOLINK_CALLBACK_SECRET"),
    client_factory=lambda: AsyncEvolink(allow_local_callbacks=LOCAL),
)
app = FastAPI(title="evolink example", lifespan=evolink.lifespan)
app.include_router(evolink.callback_router)
Client = Annotated[AsyncEvolink, Depends(evolink.client)]


@app.post("/images")
async def create(prompt: str, client: Client) -> dict[str, Any]:
    """Create a task; Evolink will call us back when it ends."""
    try:
        task = await client.images.generate(prompt, callback_url=evolink.callback_url())
    except EvolinkError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    return {"task_id": task.id, "status": task.status.value}


@app.get("/images/{task_id}")
async def status(task_id: str, client: Client) -> dict[str, Any]:
    """Read a task as it is now."""
    task = await client.tasks.get(task_id)
    return {"status": task.status.value, "progress": task.progress, "results": task.results}


@app.get("/images/{task_id}/wait")
async def wait(task_id: str) -> dict[str, Any]:
    """Wait for the task: by its callback, or by reading it if the callback is late."""
    task = await evolink.wait(task_id, timeout=300)
    return {"status": task.status.value, "results": task.results}


@app.post("/batches")
async def start_batch(prompts: Annotated[list[str], Body()]) -> dict[str, str]:
    """Start a batch in the background; follow it at /batches/{id}/events."""
    return {"batch_id": evolink.start_batch(prompts, max_in_flight=16)}


@app.get("/batches/{batch_id}/events")
async def batch_events(batch_id: str) -> StreamingResponse:
    """Server-sent events: one progress snapshot per change, until the batch ends."""
    try:
        batch = evolink.batch(batch_id)
    except KeyError:
        raise HTTPException(status_code=404, detail="no such batch") from None

    async def events() -> AsyncIterator[str]:
        async for p in batch.progress_events():
            data = {
                "completed": p.completed,
                "failed": p.failed,
                "in_flight": p.in_flight,
                "total": p.total,
                "charged": str(p.charged),
                "eta": p.eta,
            }
            yield f"data: {json.dumps(data)}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def main() -> None:
    import uvicorn  # noqa: PLC0415

    if SIMULATED:
        from evolink.testing import TEST_API_KEY, Simulator  # noqa: PLC0415

        sim = Simulator(durations=(3, 8), allow_local_callbacks=True)
        with sim.serve_in_thread() as base_url:
            os.environ.update(EVOLINK_API_KEY=TEST_API_KEY, EVOLINK_BASE_URL=base_url)
            print(f"simulator at {base_url}; app at http://127.0.0.1:{PORT}")
            uvicorn.run(app, host="127.0.0.1", port=PORT)
    else:
        uvicorn.run(app, host="127.0.0.1", port=PORT)


if __name__ == "__main__":
    main()
