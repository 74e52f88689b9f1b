"""The CLI tests' server: `evolink.testing.Simulator`, put behind `--simulate`.

`--simulate` builds its simulator with `make_simulator`; `use` makes it return the test's
own, so a test can set its knobs and read what it was sent. The CLI waits on real time, so
these simulators keep the system clock and short tasks (`Fixed(0.05)`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import httpx
import pytest

from evolink.cli._demo import SIMULATOR_KEY
from evolink.testing import Fixed, RecordedRequest, Simulator

#: Image tasks of 50 ms on the system clock. The simulator never estimates under a second,
#: so the SDK reads a task after about half a second: a small batch takes about a second.
QUICK = Fixed(0.05)
#: Where the CLI's SDK client sends its requests (the host result URLs are made with).
API = "https://api.evolink.ai"


def use(monkeypatch: pytest.MonkeyPatch, server: Any) -> Any:
    """`--simulate` talks to `server` (anything with `transport()`) until the test ends."""
    monkeypatch.setattr("evolink.cli._backend.make_simulator", lambda **_: server)
    return server


def quick(**knobs: Any) -> Simulator:
    """A simulator with 50 ms image tasks (`knobs` go to `Simulator`)."""
    return Simulator(**{"seed": 0, "durations": QUICK, **knobs})


def creates(sim: Simulator, since: int = 0) -> list[RecordedRequest]:
    """The creates the simulator was sent, from its `since`-th request on."""
    return [
        r for r in sim.requests[since:] if r.method == "POST" and r.path.endswith("/generations")
    ]


def with_fates(fates: Sequence[str], **knobs: Any) -> Simulator:
    """A quick simulator whose first tasks end as `fates` says ("completed", "failed"), in
    the order they are created.

    Task fates are the seed's draws (`Faults(task_failure=...)`), the same for every body of
    one model: this is the first seed whose first `len(fates)` tasks end so, found by making
    them on a probe simulator with the same knobs.
    """
    probing = {**knobs, "api_keys": None}  # which keys it takes does not change fates
    for seed in range(1000):
        probe = quick(**{**probing, "seed": seed})
        made = [create(probe, f"probe {i}")["id"] for i in range(len(fates))]
        if [probe.task(i).final_status.value for i in made] == list(fates):
            return quick(**{**knobs, "seed": seed})
    raise AssertionError(f"no seed below 1000 gives {fates}")  # pragma: no cover


def create(
    sim: Simulator, prompt: str, key: str | None = None, *, wait: bool = False
) -> dict[str, Any]:
    """Make a gpt-image-2 task as `--simulate` would (its key, `key` as Idempotency-Key), as a
    run killed mid-way leaves it on the server; with `wait`, once it has ended. Its read."""

    async def make(http: httpx.AsyncClient) -> dict[str, Any]:
        headers = {} if key is None else {"Idempotency-Key": key}
        made = await http.post(
            "/v1/images/generations",
            json={"model": "gpt-image-2", "prompt": prompt},
            headers=headers,
        )
        task = made.raise_for_status().json()
        while wait and task["status"] in ("pending", "processing"):
            await anyio.sleep(0.01)
            task = (await http.get(f"/v1/tasks/{task['id']}")).raise_for_status().json()
        return task

    return _call(sim, make)


def read(sim: Simulator, task_id: str) -> dict[str, Any]:
    """The task as `--simulate`'s key reads it."""

    async def get(http: httpx.AsyncClient) -> dict[str, Any]:
        return (await http.get(f"/v1/tasks/{task_id}")).raise_for_status().json()

    return _call(sim, get)


def _call(sim: Simulator, call: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        headers = {"Authorization": f"Bearer {SIMULATOR_KEY}"}
        async with httpx.AsyncClient(
            transport=sim.transport(), base_url=API, headers=headers
        ) as http:
            return await call(http)

    return anyio.run(run)


class BrokenFiles(httpx.AsyncBaseTransport):
    """The simulator's transport, except that the first task's result files answer
    `answer` (status, content type, body): a CDN gone wrong, the API untouched."""

    def __init__(self, sim: Simulator, answer: tuple[int, str, bytes]) -> None:
        self.sim = sim
        self.inner = sim.transport()
        self.answer = answer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        first = next(iter(self.sim.tasks), None)
        if first is not None and request.url.path.startswith(f"/results/{first}/"):
            status, kind, body = self.answer
            return httpx.Response(status, headers={"Content-Type": kind}, content=body)
        return await self.inner.handle_async_request(request)
