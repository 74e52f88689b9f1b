"""Regressions for bugs the reliability work found: each once crashed a run or hung a batch."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx
import pytest

from _fake_server import FakeEvolink
from evolink import AsyncEvolink, OutcomeKind, ResponseDecodeError
from evolink._downloads import Downloader, DownloadError
from evolink.cli._input import Defaults, read_prompt_file
from evolink.fastapi import _task_id_of
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

DEEP = b"[" * 100_000


def _redirect_forever(request: httpx.Request) -> httpx.Response:
    return httpx.Response(302, headers={"Location": str(request.url)})


def _bad_gzip(request: httpx.Request) -> httpx.Response:
    headers = {"Content-Type": "image/png", "Content-Encoding": "gzip"}
    return httpx.Response(200, headers=headers, content=b"not gzip" * 10)


@pytest.mark.parametrize(
    ("handler", "url", "transient"),
    [
        pytest.param(_redirect_forever, "https://cdn.test/a.png", False, id="redirect-loop"),
        pytest.param(_bad_gzip, "https://cdn.test/a.png", True, id="bad-gzip"),
        pytest.param(_redirect_forever, "file:///etc/passwd", False, id="file-url"),
        pytest.param(_redirect_forever, "http://[::1/x", False, id="invalid-url"),
    ],
)
async def test_download_failures_are_download_errors(anyio_backend, handler, url, transient):
    """Redirect loops, bad encodings and unusable URLs end as DownloadError, not a crash."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=True)
    async with client:
        downloader = Downloader(client=client, folder=Path(tempfile.mkdtemp()), backoff=0.001)
        with pytest.raises(DownloadError) as caught:
            await downloader.fetch(url, "0001-x-1")
    assert transient == caught.value.transient


async def test_json_nested_absurdly_deep_is_a_typed_error(anyio_backend):
    """A response body of 100,000 '[' is a ResponseDecodeError, not a RecursionError."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=DEEP))
    async with AsyncEvolink(
        api_key="sk-evo-x", base_url="https://a.test", transport=transport
    ) as c:
        with pytest.raises(ResponseDecodeError):
            await c.tasks.get("task-unified-1-abc")


def test_deep_json_in_a_prompt_file_or_callback_is_refused(tmp_path):
    """A JSONL line or a callback body nested too deeply is an input error, not a crash."""
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(b'{"prompt": "ok"}\n' + DEEP + b"\n")
    rows = read_prompt_file(path, Defaults()).rows
    assert [True, False] == [row.valid for row in rows]
    assert (2, "not valid JSON (nested too deeply)") == (rows[1].line, rows[1].error)
    assert _task_id_of(DEEP) is None


async def test_a_read_answered_with_another_task_does_not_hang_the_batch(anyio_backend):
    """A GET that answers a different task's body is not taken for the task asked about."""
    clock = VirtualClock()
    fake = FakeEvolink(clock, batch_endpoint=False)
    original = fake.view

    def wrong_id(task):
        data = original(task)
        data["id"] = "task-unified-someone-else"
        return data

    fake.view = wrong_id
    async with (
        clock.running(),
        AsyncEvolink(
            api_key="sk-evo-x", base_url="https://a.test", transport=fake.transport(), clock=clock
        ) as client,
    ):
        fake.view = original  # the create's answer is right...
        async with client.batch() as batch:
            await batch.submit("a fox")
            fake.view = wrong_id  # ...every read after it is for another task
    outcome = batch.report().outcomes[0]
    assert OutcomeKind.UNCERTAIN == outcome.kind


async def test_reads_that_always_fail_end_the_task_uncertain(anyio_backend):
    """A task whose every read fails ends uncertain after a bounded time, not never."""
    clock = VirtualClock()
    fake = FakeEvolink(clock)
    fake.read_script = [500] * 10_000
    async with (
        clock.running(),
        AsyncEvolink(
            api_key="sk-evo-x", base_url="https://a.test", transport=fake.transport(), clock=clock
        ) as client,
    ):
        report = await client.images.generate_many(["a fox"])
    assert OutcomeKind.UNCERTAIN == report.outcomes[0].kind
    assert report.elapsed < 3600


async def test_a_create_refused_with_429_forever_ends_failed(anyio_backend):
    """A create answered 429 every time ends failed (retryable) after a bounded time."""
    clock = VirtualClock()
    fake = FakeEvolink(clock)
    fake.create_script = [429] * 10_000
    async with (
        clock.running(),
        AsyncEvolink(
            api_key="sk-evo-x", base_url="https://a.test", transport=fake.transport(), clock=clock
        ) as client,
    ):
        report = await client.images.generate_many(["a fox"])
    outcome = report.outcomes[0]
    assert (OutcomeKind.FAILED, True) == (outcome.kind, outcome.retryable)
    assert 0 == len(fake.tasks)
