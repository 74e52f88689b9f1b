"""Promise 5: the option next to the rest. A wait's timeout still ends it on time; 429s
still back off (a Retry-After longer than the interval is honoured, not cut to the
interval); callbacks still end waits at once; the key shows nowhere.
"""

from __future__ import annotations

import collections
import itertools
import logging
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from evolink import OutcomeKind, Task, WaitTimeoutError
from evolink.fastapi import EvolinkIntegration

from . import _server as s
from ._harness import EPS, batch, client_for, describe, fresh, run, waits
from ._server import API_KEY

# -- timeouts ---------------------------------------------------------------------------


def _timed_waits(
    interval: float | None, batch_endpoint: bool, timeout: float
) -> tuple[s.FakeServer, dict[str, float]]:
    """Four waits with `timeout`, started 0.7 s apart, of tasks that run a minute; returns
    how long each took to give up."""
    server = fresh(durations=s.fixed(60.0), progress=s.share(0.4), batch_endpoint=batch_endpoint)
    took: dict[str, float] = {}

    async def main() -> None:
        async with client_for(server, interval) as client, server.clock.running():

            async def one(i: int) -> None:
                await server.clock.sleep(0.7 * i)
                task = await client.images.generate(f"p{i}")
                started = server.clock.monotonic()
                with pytest.raises(WaitTimeoutError):
                    await client.tasks.wait(task, timeout=timeout)
                took[task.id] = server.clock.monotonic() - started

            async with anyio.create_task_group() as tg:
                for i in range(4):
                    tg.start_soon(one, i)

    run(main)
    assert len(took) == 4
    return server, took


@pytest.mark.parametrize("batch_endpoint", [False, True])
@pytest.mark.parametrize("interval", [0.5, 2.0, 50.0])
def test_a_wait_timeout_still_ends_the_wait_on_time(interval: float, batch_endpoint: bool) -> None:
    """Each wait gives up at its timeout: no later than it does without the option (which,
    with batch reads, is itself up to a batch window late: see the report), and no read of
    its task after it gave up."""
    timeout = 3.3
    _, plain = _timed_waits(None, batch_endpoint, timeout)
    server, took = _timed_waits(interval, batch_endpoint, timeout)
    for task_id, seconds in took.items():
        assert seconds <= max(timeout, plain[task_id]) + EPS, (task_id, seconds, plain[task_id])
        fake = server.tasks[task_id]
        gave_up = fake.created + seconds
        assert all(t <= gave_up + EPS for t in fake.read_times()), describe(server)
    if not batch_endpoint:
        assert max(took.values()) <= timeout + EPS, took


# -- 429 ----------------------------------------------------------------------------------


def _early_retries(server: s.FakeServer, retry_after: float) -> list[tuple[str, float, float]]:
    """Each (task, 429 at, next request naming it after) that came before Retry-After."""
    by_id: dict[str, list[s.Request]] = collections.defaultdict(list)
    for request in server.read_requests():
        for task_id in request.ids:
            by_id[task_id].append(request)
    early = []
    for task_id, requests in by_id.items():
        for before, after in itertools.pairwise(requests):
            if before.status == 429 and after.at - before.at < retry_after - EPS:
                early.append((task_id[-5:], round(before.at, 3), round(after.at - before.at, 3)))
    return early


@pytest.mark.parametrize("mode", ["waits-get", "waits-batch-reads", "batch"])
def test_a_retry_after_longer_than_the_interval_is_honoured(mode: str) -> None:
    """Every read from 10 s to 30 s is refused with Retry-After: 5 (the interval is 0.5)."""
    server = fresh(
        durations=s.spread(20, 45, 11),
        progress=s.share(0.4),
        limiter=s.limit_window(10.0, 30.0, "5"),
        batch_endpoint=mode != "waits-get",
    )
    if mode == "batch":
        report = batch(server, 0.5, 10, max_in_flight=10)
        assert report.counts[OutcomeKind.COMPLETED] == 10
    else:
        results = waits(server, 0.5, 10, stagger=0.3)
        assert all(isinstance(r, Task) for r in results), results
    refused = [r for r in server.read_requests() if r.status == 429]
    assert refused, "the server refused nothing: the test measures nothing"
    early = _early_retries(server, 5.0)
    assert not early, f"read again before Retry-After (task, 429 at, next after): {early[:8]}"
    # Not a storm: in the 20 s of refusals, at most one request a task per Retry-After.
    assert len(refused) <= 10 * (20 / 5 + 1), len(refused)


def test_a_replan_does_not_cut_a_429_back_off_short() -> None:
    """Waits read by GET; the server refuses the reads of every odd task from 5 s to 60 s
    with Retry-After: 10, while the even ones end and are seen. When a model's record grows
    (its 16th end) the engine plans its waiting tasks again: the refused ones must still
    wait out their Retry-After. Without the option: none read early."""
    for interval in (None, 1.0):
        server = fresh(
            durations=s.spread(8, 50, 41),
            progress=s.share(0.4),
            batch_endpoint=False,
            limiter=s.limit_ids(5.0, 60.0, lambda task_id: int(task_id[-5:]) % 2 == 1, "10"),
        )
        waits(server, interval, 40)
        assert any(r.status == 429 for r in server.read_requests())
        early = _early_retries(server, 10.0)
        assert not early, (
            f"max_poll_interval={interval}: {len(early)} reads came before the Retry-After of "
            f"10 s (task, 429 at, next request after): {early[:10]}"
        )


def test_a_429_without_retry_after_is_no_storm() -> None:
    """No Retry-After: the next read of a refused task is not sooner than the interval."""
    server = fresh(
        durations=s.spread(10, 30, 7),
        progress=s.stuck_at(99),
        batch_endpoint=False,
        limiter=s.limit_window(5.0, 15.0, ""),
    )
    waits(server, 0.2, 6, stagger=0.3)
    early = _early_retries(server, 0.2)
    assert any(r.status == 429 for r in server.read_requests())
    assert not early, early[:8]


# -- callbacks ------------------------------------------------------------------------------


def _fastapi_run(
    server: s.FakeServer, interval: float | None, count: int, callback_delay: float | None
) -> dict[str, float]:
    """`count` handlers create a task with the app's callback URL and `evolink.wait` it;
    the server POSTs each task's callback `callback_delay` after its end (None: never).
    Returns when each handler's wait returned."""
    integration = EvolinkIntegration(
        public_url="https://my.app", client_factory=lambda: client_for(server, interval)
    )
    app = FastAPI(lifespan=integration.lifespan)
    app.include_router(integration.callback_router)
    returned: dict[str, float] = {}

    async def main() -> None:
        async with integration.lifespan(app), server.clock.running():
            client = integration.client()
            web = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="https://my.app"
            )
            async with web:

                async def deliver(task: Task) -> None:
                    fake = server.tasks[task.id]
                    assert callback_delay is not None
                    await server.clock.sleep(fake.end - server.clock.monotonic() + callback_delay)
                    path = integration.callback_url().removeprefix("https://my.app")
                    body = server._view(fake, server.clock.monotonic())
                    answer = await web.post(path, json=body)
                    assert answer.status_code == 202

                async def handler(i: int, tg: anyio.abc.TaskGroup) -> None:
                    await server.clock.sleep(0.37 * i)
                    url = integration.callback_url()
                    task = await client.images.generate(f"p{i}", callback_url=url)
                    if callback_delay is not None:
                        tg.start_soon(deliver, task)
                    done = await integration.wait(task)
                    assert done.is_terminal
                    returned[task.id] = server.clock.monotonic()

                async with anyio.create_task_group() as tg:
                    for i in range(count):
                        tg.start_soon(handler, i, tg)

    run(main)
    return returned


def test_fastapi_waits_without_callbacks_are_held_to_the_interval() -> None:
    """The callbacks never come (the integration expects them, and adds its grace)."""
    server = fresh(durations=s.spread(10, 40, 11), progress=s.share(0.4))
    returned = _fastapi_run(server, 1.0, 12, None)
    assert server.worst_gap() <= 1.0 + EPS, describe(server)
    for task in server.tasks.values():
        assert returned[task.id] - task.end <= 1.0 + EPS, describe(server)


def test_fastapi_callbacks_still_end_waits_at_once() -> None:
    """Callbacks 0.2 s after each end, a 10 s interval: each wait returns 0.2 s after its
    task's end (one confirming read), not at the next tick."""
    server = fresh(durations=s.spread(10, 40, 11), progress=s.share(0.4))
    returned = _fastapi_run(server, 10.0, 12, 0.2)
    assert server.worst_gap() <= 10.0 + EPS, describe(server)
    for task in server.tasks.values():
        assert returned[task.id] - task.end <= 0.2 + EPS, (task.id, returned[task.id] - task.end)


def test_a_batch_fed_its_callbacks_ends_each_input_at_once() -> None:
    """`batch.feed(...)` with each task's callback body 0.1 s after its end, interval 10."""
    server = fresh(durations=s.spread(10, 40, 11), progress=s.share(0.4))
    outcome_at: dict[str, float] = {}

    async def main() -> None:
        async with client_for(server, 10.0) as client, server.clock.running():
            holder: dict[str, Any] = {}

            async def feed(task_id: str) -> None:
                fake = server.tasks[task_id]
                await server.clock.sleep(fake.end + 0.1 - server.clock.monotonic())
                holder["batch"].feed(server._view(fake, server.clock.monotonic()))

            def on_created(_index: int, task: Task) -> None:
                holder["feeders"].start_soon(feed, task.id)

            def on_outcome(outcome: Any) -> None:
                outcome_at[outcome.task.id] = server.clock.monotonic()

            async with anyio.create_task_group() as feeders:
                holder["feeders"] = feeders
                options = {"on_created": on_created, "on_outcome": on_outcome}
                async with client.batch(max_in_flight=12, **options) as b:
                    holder["batch"] = b
                    await b.submit_all([f"p{i}" for i in range(12)])

    run(main)
    assert len(outcome_at) == 12
    for task in server.tasks.values():
        assert outcome_at[task.id] - task.end <= 0.1 + EPS, (task.id, outcome_at[task.id])


# -- secrecy --------------------------------------------------------------------------------


def test_the_key_shows_nowhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = fresh(
        durations=s.spread(5, 20, 7),
        progress=s.share(0.4),
        limiter=s.limit_window(3.0, 6.0, "2"),
    )
    shown: list[str] = []

    async def main() -> None:
        async with client_for(server, 0.5) as client, server.clock.running():
            shown.append(repr(client))
            shown.append(repr(client.__dict__))
            task = await client.images.generate("secret-free")
            try:
                await client.tasks.wait(task, timeout=1.0)
            except WaitTimeoutError as exc:
                shown.extend([str(exc), repr(exc), repr(exc.task)])
            done = await client.tasks.wait(task)
            shown.append(repr(done))
            shown.append(repr(client._engine))
            report = await client.images.generate_many([f"p{i}" for i in range(4)])
            shown.append(str(report))
            shown.append(repr(report))

    run(main)
    for bad in (0, float("nan"), "1", -1.0):
        with pytest.raises(Exception) as caught:  # noqa: PT011 - any error; its text is checked
            client_for(server, bad)  # type: ignore[arg-type]
        shown.extend([str(caught.value), repr(caught.value)])
    assert len(server.log) > 10
    assert any(r.status == 429 for r in server.log)
    assert len(caplog.records) > 10  # the client's and httpx's request logs were captured
    for text in [*shown, caplog.text]:
        assert API_KEY not in text
        assert API_KEY[8:] not in text
