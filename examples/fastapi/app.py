"""A FastAPI app that creates images with Evolink and hears back by callback.

Run it against the simulator with one command (no key needed):

    python examples/fastapi/app.py

then open http://127.0.0.1:8001/docs, or:

    curl -X POST 'http://127.0.0.1:8001/images?prompt=a+red+fox'
    curl http://127.0.0.1:8001/images/<task_id>/wait
    curl -X POST http://127.0.0.1:8001/batches -H 'content-type: application/json' \\
         -d '["a fox", "an owl", "a heron"]'
    curl -N http://127.0.0.1:8001/batches/<batch_id>/events      # live progress (SSE)

An unknown task id answers 404 and a malformed one 422; the event stream sends a progress
snapshot on every change and an `outcome` event as each input ends, a rejected prompt too.

With `EVOLINK_API_KEY` set, it talks to the real API instead; set `PUBLIC_URL` to the
HTTPS address Evolink can reach this app at, and `EVOLINK_CALLBACK_SECRET` to a secret.
Running several replicas? Set `EVOLINK_JOURNAL` to one PostgreSQL database for all of them
(the `postgres` extra): a callback received by any replica wakes the waiter on another.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse

from evolink import (
    AsyncEvolink,
    EvolinkError,
    NotFoundError,
    Outcome,
    ValidationError,
    WaitTimeoutError,
)
from evolink.fastapi import EvolinkIntegration

PORT = int(os.environ.get("PORT", "8001"))
SIMULATED = not os.environ.get("EVOLINK_API_KEY")
# Against a local simulator, callbacks come over plain http to 127.0.0.1.
LOCAL = SIMULATED or os.environ.get("EVOLINK_BASE_URL", "").startswith("http://127.0.0.1")

evolink = EvolinkIntegration(
    public_url=os.environ.get("PUBLIC_URL", f"http://127.0.0.1:{PORT}"),
    secret=os.environ.get("EVOLINK_CALLBACK_SECRET"),
    client_factory=lambda: AsyncEvolink(allow_local_callbacks=LOCAL),
    journal=os.environ.get("EVOLINK_JOURNAL"),  # a PostgreSQL URL: replicas share callbacks
)
app = FastAPI(title="evolink example", lifespan=evolink.lifespan)
app.include_router(evolink.callback_router)
Client = Annotated[AsyncEvolink, Depends(evolink.client)]
# Each running batch's outcomes as they end (the batch hook appends), for its event stream.
outcomes_by_batch: dict[str, list[Outcome]] = {}


# The SDK's errors, as HTTP answers: never a 500 with a traceback for a caller's mistake.
@app.exception_handler(NotFoundError)
async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
    """No such task (or it expired)."""
    return JSONResponse({"detail": exc.message}, status_code=404)


@app.exception_handler(ValidationError)
async def invalid(_: Request, exc: ValidationError) -> JSONResponse:
    """Not a task id, or a request the API would refuse: nothing was sent."""
    return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=422)


@app.exception_handler(WaitTimeoutError)
async def still_running(_: Request, exc: WaitTimeoutError) -> JSONResponse:
    """The task did not end in time; it may still finish."""
    return JSONResponse({"detail": str(exc)}, status_code=504)


@app.post("/images")
async def create(prompt: str, client: Client) -> dict[str, Any]:
    """Create a task; Evolink will call us back when it ends."""
    try:
        task = await client.images.generate(prompt, callback_url=evolink.callback_url())
    except ValidationError:
        raise  # 422, by its handler
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
    ended: list[Outcome] = []
    batch_id = evolink.start_batch(prompts, max_in_flight=16, on_outcome=ended.append)
    outcomes_by_batch[batch_id] = ended
    for known in list(outcomes_by_batch):  # the integration forgets old batches: so do we
        if not _remembered(known):
            del outcomes_by_batch[known]
    return {"batch_id": batch_id}


def _remembered(batch_id: str) -> bool:
    try:
        evolink.batch(batch_id)
    except KeyError:
        return False
    return True


@app.get("/batches/{batch_id}/events")
async def batch_events(batch_id: str) -> StreamingResponse:
    """Server-sent events: an `outcome` event as each input ends, and a progress snapshot
    per change, until the batch ends."""
    try:
        batch = evolink.batch(batch_id)
    except KeyError:
        raise HTTPException(status_code=404, detail="no such batch") from None
    ended = outcomes_by_batch.get(batch_id, [])

    async def events() -> AsyncIterator[str]:
        sent = 0
        async for p in batch.progress_events():
            # Outcomes first: the snapshot that counts one comes after the event naming it.
            # One at a time: an outcome may end while an event is being sent.
            while sent < len(ended):
                yield f"event: outcome\ndata: {json.dumps(_outcome(ended[sent]))}\n\n"
                sent += 1
            data = {
                "completed": p.completed,
                "failed": p.failed,
                "rejected": p.rejected,
                "skipped": p.skipped,
                "cancelled": p.cancelled,
                "uncertain": p.uncertain,
                "finished": p.finished,
                "in_flight": p.in_flight,
                "total": p.total,
                "charged": str(p.charged),
                "eta": p.eta,
            }
            yield f"data: {json.dumps(data)}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def _outcome(outcome: Outcome) -> dict[str, Any]:
    """How one input ended: a rejected prompt never became a task, so it has no task id."""
    return {
        "index": outcome.index,
        "status": outcome.kind.value,
        "prompt": outcome.request.prompt if outcome.request is not None else None,
        "task_id": outcome.task_id,
        "error": outcome.error_message,
    }


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
