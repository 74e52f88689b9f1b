"""`client.tasks.save`: a completed task's images to disk, through the SDK's safe downloader."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from evolink import (
    AsyncEvolink,
    DownloadError,
    SavedImage,
    Task,
    TaskFailedError,
    TaskStatus,
    ValidationError,
)
from evolink._downloads import MAX_REDIRECTS, image_client
from evolink.testing import Faults, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

KEY = "sk-evo-save-tests"
PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 64


def _files(folder: Path) -> list[Path]:
    return list(folder.iterdir())


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def sim(clock: VirtualClock) -> Simulator:
    return Simulator(clock=clock, seed=5, result_ttl=3600.0)


@pytest.fixture
async def client(sim: Simulator, clock: VirtualClock) -> AsyncIterator[AsyncEvolink]:
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            yield client


@pytest.fixture
async def images(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """The image client a test passes: the simulator serves the result URLs."""
    async with httpx.AsyncClient(transport=sim.transport()) as http:
        yield http


async def test_save_writes_every_image(client: AsyncEvolink, images, tmp_path: Path):
    """Each image lands whole under `<task id>-<n>.png`, in order, reported as it lands."""
    task = await client.images.run("a red fox in snow", n=2)
    saved: list[SavedImage] = []

    paths = await client.tasks.save(
        task, tmp_path / "new", http_client=images, on_progress=saved.append
    )

    assert [tmp_path / "new" / f"{task.id}-{n}.png" for n in (1, 2)] == paths
    assert list(task.results) == [s.url for s in saved]
    assert [p.stat().st_size for p in paths] == [s.size for s in saved]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [p.name for p in paths]
    assert not images.is_closed  # a borrowed client stays open


async def test_save_takes_a_name(client: AsyncEvolink, images, tmp_path: Path):
    """`name=` sets the files' stem."""
    task = await client.images.run("a red fox in snow")

    paths = await client.tasks.save(task, str(tmp_path), name="fox", http_client=images)

    assert [tmp_path / "fox-1.png"] == paths


@pytest.mark.parametrize("name", ["../fox", "a/b", ".hidden", "", "a\\b"])
async def test_save_refuses_a_name_that_is_not_a_plain_file_name(
    client: AsyncEvolink, images, tmp_path: Path, name: str
):
    """A name with a separator, `..` or a leading dot is refused before any download."""
    task = await client.images.run("a red fox in snow")

    with pytest.raises(ValidationError, match="plain file name"):
        await client.tasks.save(task, tmp_path, name=name, http_client=images)
    assert [] == _files(tmp_path)


async def test_save_refuses_an_unfinished_task(client: AsyncEvolink, images, tmp_path: Path):
    """A task still pending has nothing to save: ValidationError, nothing fetched."""
    task = await client.images.generate("a red fox in snow")

    with pytest.raises(ValidationError, match="still pending"):
        await client.tasks.save(task, tmp_path, http_client=images)


async def test_save_raises_for_a_failed_task(clock: VirtualClock, images, tmp_path: Path):
    """A failed task raises TaskFailedError, as `raise_for_status` does."""
    sim = Simulator(clock=clock, seed=5, faults=Faults(task_failure=1.0))
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            task = await client.tasks.wait(await client.images.generate("a red fox in snow"))
            assert TaskStatus.FAILED == task.status
            with pytest.raises(TaskFailedError):
                await client.tasks.save(task, tmp_path, http_client=images)


async def test_expired_results_raise_download_error(
    client: AsyncEvolink, clock: VirtualClock, images, tmp_path: Path
):
    """A result URL past its lifetime (410) raises a DownloadError that is not transient."""
    task = await client.images.run("a red fox in snow")
    await clock.sleep(3601)

    with pytest.raises(DownloadError, match="HTTP 410") as caught:
        await client.tasks.save(task, tmp_path, http_client=images)
    assert not caught.value.transient
    assert [] == _files(tmp_path)


async def test_a_completed_task_without_images_saves_nothing(client: AsyncEvolink, tmp_path: Path):
    """No results, no files (and no request)."""
    task = Task(id="task-unified-1", status=TaskStatus.COMPLETED)

    assert [] == await client.tasks.save(task, tmp_path / "out")


async def test_the_default_image_client_is_plain_and_closed_after(
    client: AsyncEvolink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """Without `http_client`, save makes a plain client (no key) and closes it afterwards."""
    seen: list[httpx.Request] = []
    made: list[httpx.AsyncClient] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"Content-Type": "image/png"}, content=PNG)

    def fake_image_client() -> httpx.AsyncClient:
        http = image_client()
        made.append(http)
        http._transport = httpx.MockTransport(respond)
        return http

    monkeypatch.setattr("evolink._tasks.image_client", fake_image_client)
    task = Task(id="task-unified-1", status=TaskStatus.COMPLETED, results=("https://img.test/a",))

    paths = await client.tasks.save(task, tmp_path)

    assert [tmp_path / "task-unified-1-1.png"] == paths
    assert "authorization" not in {k.lower() for k in seen[0].headers}
    assert made[0].is_closed


async def test_image_client_follows_a_few_redirects_only():
    """The default image client follows redirects, up to a small limit."""
    async with image_client() as http:
        assert http.follow_redirects
        assert MAX_REDIRECTS == http.max_redirects
        assert "authorization" not in {k.lower() for k in http.headers}
