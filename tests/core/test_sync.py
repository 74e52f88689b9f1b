"""`evolink.Evolink`: the blocking client, against the simulator on a real (short) clock.

No test here is async: the client runs its own event loop in a thread, and the tests call
it the ways users do (a script, another thread, inside a running loop, a callback).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from evolink import (
    BatchProgress,
    ConfigurationError,
    Evolink,
    OutcomeKind,
    SavedImage,
    Task,
    TaskFailedError,
    TaskStatus,
    ValidationError,
    WaitTimeoutError,
)
from evolink.testing import Faults, Simulator

KEY = "sk-evo-sync-tests"


class ServerClock:
    """The system clock, one second ahead, as a server's may be (see tests/docs/conftest.py).

    The API stamps `created` in whole seconds; ahead, a sub-second task never looks older
    than it is to the client's read plan.
    """

    def time(self) -> float:
        return time.time() + 1.0

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


def simulator(**options) -> Simulator:
    options.setdefault("durations", (0.05, 0.15))
    return Simulator(clock=ServerClock(), seed=3, pending_time=0.02, **options)


@pytest.fixture
def sim() -> Simulator:
    return simulator()


@pytest.fixture
def client(sim: Simulator) -> Iterator[Evolink]:
    with Evolink(api_key=KEY, transport=sim.transport()) as client:
        yield client


def test_run_from_a_script(client: Evolink, sim: Simulator):
    """images.run blocks until the task is completed and returns it, as a Task."""
    task = client.images.run("a red fox in snow", n=2, timeout=30)

    assert isinstance(task, Task)
    assert TaskStatus.COMPLETED == task.status
    assert 2 == len(task.results)
    assert 1 == sim.count("POST", "/v1/images/generations")


def test_every_resource_method_forwards(client: Evolink):
    """generate, create, tasks.get, tasks.wait and credits() give the async client's answers."""
    created = client.images.generate("a lighthouse at dusk")
    assert TaskStatus.PENDING == created.status
    read = client.tasks.get(created.id)
    assert created.id == read.id
    done = client.tasks.wait(created, timeout=30)
    assert done.is_success

    credits = client.credits()
    assert credits.remaining_credits is not None
    assert credits.remaining_credits < 10_000


def test_errors_arrive_as_the_async_client_raises_them(client: Evolink):
    """A refused input raises the same typed error, with the same fields, in the caller."""
    with pytest.raises(ValidationError) as caught:
        client.images.generate("")

    assert "prompt" == caught.value.field


def test_the_async_client_is_made_lazily_on_the_portal_thread(sim: Simulator):
    """Nothing starts before the first call; the async client is made on the portal's loop."""
    before = {t.name for t in threading.enumerate()}
    client = Evolink(api_key=KEY, transport=sim.transport())
    assert "Evolink(not started)" == repr(client)
    assert before == {t.name for t in threading.enumerate()}
    try:
        client.credits()
        assert client._loop_thread not in {None, threading.get_ident()}
        assert "evolink" in {t.name for t in threading.enumerate()}
    finally:
        client.close()
    assert "evolink" not in {t.name for t in threading.enumerate()}


def test_a_missing_key_raises_at_the_first_call(monkeypatch: pytest.MonkeyPatch):
    """No API key: the first call raises ConfigurationError, and no thread is left running."""
    monkeypatch.delenv("EVOLINK_API_KEY", raising=False)
    client = Evolink()

    with pytest.raises(ConfigurationError):
        client.credits()
    assert "evolink" not in {t.name for t in threading.enumerate()}
    client.close()


def test_calls_from_other_threads_share_one_client(client: Evolink, sim: Simulator):
    """Several threads call at once; each gets its own result from the one client."""
    results: dict[int, Task] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = client.images.run(f"a jellyfish, {i}", timeout=30)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [] == errors
    assert [0, 1, 2, 3] == sorted(results)
    assert all(task.is_success for task in results.values())
    assert 4 == sim.count("POST", "/v1/images/generations")


def test_a_call_from_inside_a_running_event_loop(client: Evolink):
    """Inside asyncio.run (as in a Jupyter cell) a blocking call works: the loop is the portal's."""

    async def cell() -> Task:
        return client.images.run("a red fox in snow", timeout=30)

    task = asyncio.run(cell())

    assert task.is_success


def test_generate_many_calls_on_progress_on_the_portal_thread(client: Evolink):
    """generate_many returns the report; on_progress runs on the client's own thread."""
    seen: list[tuple[BatchProgress, str]] = []
    prompts = [f"a lantern, {i}" for i in range(5)]

    report = client.images.generate_many(
        prompts,
        max_in_flight=3,
        on_progress=lambda p: seen.append((p, threading.current_thread().name)),
    )

    assert 5 == report.counts[OutcomeKind.COMPLETED]
    assert seen
    assert {"evolink"} == {name for _, name in seen}
    assert 5 == seen[-1][0].completed


def test_calling_the_client_from_its_own_callback_is_refused(client: Evolink):
    """A callback that calls back in gets a ConfigurationError, not a deadlock."""
    errors: list[BaseException] = []

    def reenter(_: BatchProgress) -> None:
        if not errors:
            try:
                client.credits()
            except ConfigurationError as exc:
                errors.append(exc)

    client.images.generate_many(["a kite"], on_progress=reenter)

    assert 1 == len(errors)
    assert "callbacks" in str(errors[0])


def test_run_raises_task_failed(sim: Simulator):
    """A task that ends failed raises TaskFailedError carrying the task."""
    failing = simulator(faults=Faults(task_failure=1.0))
    with Evolink(api_key=KEY, transport=failing.transport()) as client:
        with pytest.raises(TaskFailedError) as caught:
            client.images.run("a red fox in snow", timeout=30)

    assert TaskStatus.FAILED == caught.value.task.status


def test_run_raises_wait_timeout():
    """A task still running at the deadline raises WaitTimeoutError carrying the last read."""
    slow = simulator(durations=(30.0, 30.0))
    with Evolink(api_key=KEY, transport=slow.transport()) as client:
        with pytest.raises(WaitTimeoutError) as caught:
            client.images.run("a red fox in snow", timeout=0.2)

    assert not caught.value.task.is_terminal


def test_save_writes_the_images(client: Evolink, sim: Simulator, tmp_path: Path):
    """tasks.save downloads a completed task's images and reports each as it lands."""
    task = client.images.run("a red fox in snow", n=2, timeout=30)
    saved: list[SavedImage] = []
    images = httpx.AsyncClient(transport=sim.transport())

    paths = client.tasks.save(task, tmp_path / "out", http_client=images, on_progress=saved.append)

    assert [tmp_path / "out" / f"{task.id}-{n}.png" for n in (1, 2)] == paths
    assert paths == [s.path for s in saved]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)
    anyio.run(images.aclose)


def test_close_is_idempotent_and_final(sim: Simulator):
    """After close() (twice is fine) a call raises ConfigurationError; `with` closes too."""
    with Evolink(api_key=KEY, transport=sim.transport()) as client:
        client.credits()
    assert client.is_closed
    client.close()

    with pytest.raises(ConfigurationError, match="closed"):
        client.credits()
    assert "closed" in repr(client)


def test_close_before_any_call_starts_nothing(sim: Simulator):
    """A client never used closes without starting a thread."""
    client = Evolink(api_key=KEY, transport=sim.transport())
    client.close()

    assert client.is_closed
    with pytest.raises(ConfigurationError):
        client.images.generate("a cat")


def test_methods_keep_the_async_docstrings():
    """help(client.images.run) shows the async method's documentation."""
    from evolink._images import Images  # noqa: PLC0415

    assert Images.run.__doc__ == Evolink(api_key=KEY).images.run.__doc__
    assert "run" == Evolink(api_key=KEY).images.run.__name__
    assert isinstance(Evolink.credits.__doc__, str)
