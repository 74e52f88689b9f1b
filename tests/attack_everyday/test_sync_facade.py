"""The blocking client: types across the portal, lifecycle, threads, loops, callbacks."""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import signal
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest
import trio
from _attack_helpers import API, KEY, TASK_ID, FakeAPI, error_json, task_json

import evolink
from evolink import BatchProgress, ConfigurationError, Evolink, Task
from evolink.testing import Faults, Simulator


def _evolink_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t is not threading.main_thread() and t.daemon]


def _client(api: FakeAPI, **kwargs: object) -> Evolink:
    return Evolink(api_key=KEY, base_url=API, transport=api.transport(), max_retries=0, **kwargs)


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_task_id", evolink.BadRequestError),
        (401, "unauthorized", evolink.AuthenticationError),
        (403, "permission_denied", evolink.PermissionDeniedError),
        (404, "task_not_found", evolink.NotFoundError),
        (429, "rate_limit_exceeded", evolink.RateLimitError),
        (503, "service_unavailable", evolink.ServerError),
    ],
)
def test_errors_cross_the_portal_with_their_type_message_and_attributes(status, code, cls):
    api = FakeAPI()
    api.routes["GET", f"/v1/tasks/{TASK_ID}"] = lambda _: error_json(status, code, "ünïcode why")
    with _client(api) as client:
        with pytest.raises(cls) as info:
            client.tasks.get(TASK_ID)
    exc = info.value
    assert type(exc) is cls
    assert exc.status_code == status
    assert exc.code == code
    assert exc.message == "ünïcode why"
    assert "ünïcode why" in str(exc)
    text = "".join(traceback.format_exception(exc))
    assert f"evolink.{cls.__name__}: " in text
    assert "evolink._errors" not in text
    assert KEY not in text
    assert KEY not in repr(exc)
    assert KEY not in repr(vars(exc))


def test_validation_error_crosses_with_field_and_rule_and_sends_nothing():
    api = FakeAPI()
    with _client(api) as client:
        with pytest.raises(evolink.ValidationError) as info:
            client.images.run("a fox", size="7:3")
        with pytest.raises(evolink.ValidationError) as empty:
            client.images.generate("")
    assert info.value.field == "size"
    assert empty.value.field == "prompt"
    assert isinstance(info.value, ValueError)
    assert api.requests == []


def test_close_twice_and_use_after_close():
    api = FakeAPI()
    api.routes["GET", f"/v1/tasks/{TASK_ID}"] = lambda _: httpx.Response(200, json=task_json())
    client = _client(api)
    assert client.tasks.get(TASK_ID).id == TASK_ID
    client.close()
    client.close()
    assert client.is_closed
    with pytest.raises(ConfigurationError):
        client.tasks.get(TASK_ID)
    with pytest.raises(ConfigurationError):
        client.credits()
    with pytest.raises(ConfigurationError):
        client.images.run("a fox")
    with client:  # `with` on a closed client: no hang, no crash, still closed
        pass
    assert client.is_closed


def test_close_before_any_call_then_use_raises():
    client = Evolink(api_key=KEY, base_url=API, transport=FakeAPI().transport())
    client.close()
    client.close()
    with pytest.raises(ConfigurationError):
        client.tasks.get(TASK_ID)
    assert not [t for t in _evolink_threads() if t.name == "evolink"]


def test_missing_key_is_configuration_error_at_first_call_not_at_construction(monkeypatch):
    monkeypatch.delenv("EVOLINK_API_KEY", raising=False)
    client = Evolink(base_url=API, transport=FakeAPI().transport())
    with pytest.raises(ConfigurationError) as info:
        client.credits()
    assert "EVOLINK_API_KEY" in str(info.value)
    # A second call is refused the same way; the failed start leaves no thread behind.
    with pytest.raises(ConfigurationError):
        client.credits()
    client.close()
    time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "evolink"]


def test_key_not_in_reprs():
    api = FakeAPI()
    api.routes["GET", f"/v1/tasks/{TASK_ID}"] = lambda _: httpx.Response(200, json=task_json())
    with _client(api) as client:
        client.tasks.get(TASK_ID)
        for obj in (client, client.images, client.tasks):
            assert KEY not in repr(obj)
            assert KEY not in str(obj)
        assert KEY[-12:] not in repr(client)


def test_auth_error_and_traceback_never_show_the_key():
    api = FakeAPI()

    def refuse(request: httpx.Request) -> httpx.Response:
        # A hostile server echoing the key back in its message.
        return error_json(401, "unauthorized", f"bad key {request.headers['authorization']}")

    api.routes["GET", "/v1/credits"] = refuse
    with _client(api) as client:
        with pytest.raises(evolink.AuthenticationError) as info:
            client.credits()
    text = "".join(traceback.format_exception(info.value))
    assert KEY not in text
    assert KEY not in repr(info.value.body)


def test_many_threads_share_one_client():
    sim = Simulator(durations=(0.02, 0.08), pending_time=0.01)
    with Evolink(api_key=KEY, transport=sim.transport()) as client:
        with ThreadPoolExecutor(max_workers=16) as pool:
            done = list(pool.map(lambda i: client.images.run(f"a boat {i}", timeout=30), range(32)))
    assert all(task.is_success for task in done)
    assert len({task.id for task in done}) == 32
    assert sim.count("POST", "/v1/images/generations") == 32


def test_threads_racing_the_first_call_start_one_loop():
    sim = Simulator(durations=0.01, pending_time=0.001)
    client = Evolink(api_key=KEY, transport=sim.transport())
    barrier = threading.Barrier(12)

    def first() -> str:
        barrier.wait()
        return str(client.credits().remaining_credits)

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda _: first(), range(12)))
    assert len(set(answers)) == 1
    assert len([t for t in threading.enumerate() if t.name == "evolink"]) <= 1
    client.close()


def test_close_while_other_threads_call():
    sim = Simulator(durations=(0.05, 0.1), pending_time=0.01)
    client = Evolink(api_key=KEY, transport=sim.transport())
    client.credits()
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            client.images.run(f"a kite {i}", timeout=30)
        except ConfigurationError as exc:
            errors.append(exc)
        except evolink.EvolinkError as exc:  # closed mid-call: an SDK error, not a hang
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.02)
    client.close()
    for t in threads:
        t.join(10)
        assert not t.is_alive(), "a caller hung after close()"
    assert client.is_closed


def test_works_inside_a_running_asyncio_loop():
    sim = Simulator(durations=0.02, pending_time=0.001)

    async def cell() -> Task:
        with Evolink(api_key=KEY, transport=sim.transport()) as client:
            return client.images.run("a lighthouse", timeout=30)

    assert asyncio.run(cell()).is_success


def test_works_inside_a_running_trio_loop():
    sim = Simulator(durations=0.02, pending_time=0.001)

    async def cell() -> Task:
        with Evolink(api_key=KEY, transport=sim.transport()) as client:
            return client.images.run("a lighthouse", timeout=30)

    assert trio.run(cell).is_success


def test_client_made_in_one_loop_used_in_another_and_from_plain_code():
    sim = Simulator(durations=0.01, pending_time=0.001)
    client = Evolink(api_key=KEY, transport=sim.transport())

    async def use() -> str:
        return str(client.credits().remaining_credits)

    first = asyncio.run(use())
    second = asyncio.run(use())
    third = trio.run(use)
    assert first == second == third == str(client.credits().remaining_credits)
    client.close()


def test_generate_many_and_progress_callbacks_through_the_facade():
    sim = Simulator(durations=(0.02, 0.05), pending_time=0.001)
    seen: list[BatchProgress] = []
    threads: set[int] = set()

    def show(progress: BatchProgress) -> None:
        seen.append(progress)
        threads.add(threading.get_ident())

    with Evolink(api_key=KEY, transport=sim.transport()) as client:
        report = client.images.generate_many(
            [f"a koi {i}" for i in range(6)] + [""], max_in_flight=3, on_progress=show
        )
    assert len(report.outcomes) == 7
    assert len(report.completed) == 6
    assert report.counts[evolink.OutcomeKind.REJECTED] == 1
    assert seen
    assert seen[-1].finished == 7
    assert threading.get_ident() not in threads


def test_calling_the_client_from_its_own_callback_raises_not_deadlocks():
    sim = Simulator(durations=0.02, pending_time=0.001)
    caught: list[BaseException] = []

    def reenter(_: BatchProgress) -> None:
        try:
            client.credits()
        except ConfigurationError as exc:
            caught.append(exc)

    with Evolink(api_key=KEY, transport=sim.transport()) as client:
        done: list[object] = []
        worker = threading.Thread(
            target=lambda: done.append(
                client.images.generate_many(["a", "b"], on_progress=reenter)
            ),
            daemon=True,
        )
        worker.start()
        worker.join(20)
        assert not worker.is_alive(), "calling the client from its callback deadlocked"
    assert caught
    assert all(isinstance(exc, ConfigurationError) for exc in caught)


def test_closing_from_a_callback_does_not_deadlock():
    sim = Simulator(durations=0.02, pending_time=0.001)
    client = Evolink(api_key=KEY, transport=sim.transport())
    outcome: list[object] = []

    def close_it(_: BatchProgress) -> None:
        try:
            client.close()
        except ConfigurationError as exc:
            outcome.append(exc)

    def run() -> None:
        try:
            outcome.append(client.images.generate_many(["a", "b"], on_progress=close_it))
        except evolink.EvolinkError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "close() from a callback deadlocked"
    client.close()


def test_exception_raised_by_a_callback_reaches_the_caller_or_is_contained():
    sim = Simulator(durations=0.02, pending_time=0.001)

    class BoomError(Exception):
        pass

    def explode(_: BatchProgress) -> None:
        raise BoomError("from the callback")

    with Evolink(api_key=KEY, transport=sim.transport()) as client:
        raised: BaseException | None = None
        try:
            client.images.generate_many(["a", "b"], on_progress=explode)
        except BaseException as exc:  # noqa: BLE001
            raised = exc
        assert raised is None or isinstance(raised, BoomError), repr(raised)
        # The client still works afterwards.
        assert client.credits().remaining_credits is not None


def test_garbage_collected_without_close_stops_its_thread():
    sim = Simulator(durations=0.01)
    before = len([t for t in threading.enumerate() if t.name == "evolink"])
    client = Evolink(api_key=KEY, transport=sim.transport())
    client.credits()
    del client
    for _ in range(50):
        gc.collect()
        if len([t for t in threading.enumerate() if t.name == "evolink"]) <= before:
            break
        time.sleep(0.02)
    assert len([t for t in threading.enumerate() if t.name == "evolink"]) <= before


def test_keyboard_interrupt_during_a_blocked_call_leaves_a_closable_client():
    api = FakeAPI()
    release = threading.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        api.requests.append(request)
        with anyio.move_on_after(20):
            while not release.is_set():
                await anyio.sleep(0.01)
        return httpx.Response(200, json=task_json())

    client = Evolink(api_key=KEY, base_url=API, transport=httpx.MockTransport(slow), max_retries=0)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            client.tasks.get(TASK_ID)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 10, "Ctrl-C was not seen while blocked"
    release.set()
    closing = time.monotonic()
    client.close()
    assert time.monotonic() - closing < 10
    assert client.is_closed


def test_errors_pickle_with_their_public_name():
    exc = evolink.NotFoundError.__new__(evolink.NotFoundError)
    assert pickle.dumps(evolink.NotFoundError).find(b"evolink._errors") == -1
    del exc
    api = FakeAPI()
    api.routes["GET", f"/v1/tasks/{TASK_ID}"] = lambda _: error_json(404, "task_not_found", "gone")
    with _client(api) as client:
        with pytest.raises(evolink.NotFoundError) as info:
            client.tasks.get(TASK_ID)
    again = pickle.loads(pickle.dumps(info.value))  # noqa: S301
    assert type(again) is evolink.NotFoundError
    assert str(again) == str(info.value)


def test_run_failure_and_timeout_through_the_facade():
    sim = Simulator(
        durations=0.05,
        pending_time=0.001,
        faults=Faults(task_failure=1.0, failure_codes=("content_policy_violation",)),
    )
    with Evolink(api_key=KEY, transport=sim.transport()) as client:
        with pytest.raises(evolink.TaskFailedError) as failed:
            client.images.run("a fox", timeout=30)
    assert failed.value.task.status.value == "failed"
    assert failed.value.code == "content_policy_violation"
    assert failed.value.task.id in sim.tasks

    slow = Simulator(durations=30, pending_time=0.001)
    with Evolink(api_key=KEY, transport=slow.transport()) as client:
        started = time.monotonic()
        with pytest.raises(evolink.WaitTimeoutError) as late:
            client.images.run("a fox", timeout=0.3)
        assert time.monotonic() - started < 5
    assert isinstance(late.value, TimeoutError)
    assert late.value.task.id in slow.tasks
    assert not late.value.task.is_terminal
