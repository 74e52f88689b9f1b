"""A first script: the blocking client against the in-process simulator (docs/how-to/sync.md)."""

from __future__ import annotations

import struct
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

import evolink
from evolink import Evolink, Task, TaskFailedError, TaskStatus
from evolink.testing import Faults, Simulator

KEY = "sk-evo-newcomer-sync-0001"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def sim() -> Simulator:
    return Simulator(durations=(0.05, 0.15), seed=11)


def test_generate_wait_save_and_credits(sim: Simulator, tmp_path: Path) -> None:
    with Evolink(api_key=KEY, transport=sim.transport()) as client:
        before = client.credits().remaining_credits
        task = client.images.generate("a red fox in snow", size="1:1", n=2)
        assert isinstance(task, Task)
        assert task.id.startswith("task-unified-")
        assert task.status is TaskStatus.PENDING
        assert task.model == "gpt-image-2"  # the documented default model
        assert task.credits_reserved == Decimal("5.0")

        done = client.tasks.wait(task, timeout=30)
        assert done.id == task.id
        assert done.status is TaskStatus.COMPLETED
        assert done.is_success
        assert len(done.results) == 2
        assert all(url.endswith(".png") for url in done.results)

        images = httpx.AsyncClient(transport=sim.transport())
        paths = client.tasks.save(done, tmp_path / "out", http_client=images)
        after = client.credits().remaining_credits

    assert [p.name for p in paths] == [f"{task.id}-1.png", f"{task.id}-2.png"]
    for path in paths:
        assert _png_size(path.read_bytes()) == (1024, 1024)  # 1:1 is 1024x1024
    # What the task reserved was charged in full (two images made), and the balance says so.
    assert sim.ledger.charged == Decimal("5.0")
    assert before - after == Decimal("5.0")
    assert client.is_closed


def test_run_is_generate_plus_wait(sim: Simulator) -> None:
    with Evolink(api_key=KEY, transport=sim.transport()) as client:
        done = client.images.run("a lighthouse at dusk", timeout=30)
    assert done.status is TaskStatus.COMPLETED
    assert len(done.results) == 1
    assert sim.count("POST", "/v1/images/generations") == 1


def test_run_raises_task_failed_with_the_task() -> None:
    sim = Simulator(durations=(0.05, 0.1), faults=Faults(task_failure=1.0), seed=3)
    with Evolink(api_key=KEY, transport=sim.transport()) as client:
        with pytest.raises(TaskFailedError) as caught:
            client.images.run("a doomed fox", timeout=30)
    exc = caught.value
    assert exc.task.status is TaskStatus.FAILED
    assert exc.code == exc.task.error.code
    assert exc.code in evolink.testing.TASK_ERROR_CODES
    # A failed task releases its whole reservation.
    assert sim.ledger.charged == 0


def test_save_of_a_running_task_is_a_validation_error(tmp_path: Path) -> None:
    sim = Simulator(durations=(30, 40))
    with Evolink(api_key=KEY, transport=sim.transport()) as client:
        task = client.images.generate("slow fox")
        with pytest.raises(evolink.ValidationError):
            client.tasks.save(task, tmp_path)
    assert not list(tmp_path.iterdir())


def test_missing_key_is_a_configuration_error_at_first_call(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator
) -> None:
    monkeypatch.delenv("EVOLINK_API_KEY", raising=False)
    client = Evolink(transport=sim.transport())  # documented: raises at the first call
    try:
        with pytest.raises(evolink.ConfigurationError):
            client.images.generate("a fox")
    finally:
        client.close()
    assert sim.requests == [] or len(sim.requests) == 0


def test_closed_client_refuses_calls(sim: Simulator) -> None:
    client = Evolink(api_key=KEY, transport=sim.transport())
    client.images.generate("a fox")
    client.close()
    with pytest.raises(evolink.ConfigurationError):
        client.images.generate("a fox")
