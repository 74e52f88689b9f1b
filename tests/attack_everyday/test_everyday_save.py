"""tasks.save against hostile result hosts: nothing partial, no key sent, typed errors."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import httpx
import pytest
from _attack_helpers import (
    API,
    JPEG,
    KEY,
    PNG,
    TASK_ID,
    FakeAPI,
    base,
    result_server,
    task_json,
)

import evolink
from evolink import AsyncEvolink, DownloadError, Evolink, SavedImage, Task

pytestmark = pytest.mark.anyio

HOST = "https://results.example"
Handler = Callable[[httpx.Request], httpx.Response]


def _task(*urls: str, status: str = "completed") -> Task:
    return Task.from_dict(task_json(status, results=list(urls)))


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


class Host:
    """A result host as an httpx handler, recording what it was sent."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        route = self.routes.get(request.url.path)
        if route is None:
            return httpx.Response(404, text="no")
        return route(request)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


def _image(body: bytes = PNG, ctype: str = "image/png") -> Handler:
    return lambda _: httpx.Response(200, content=body, headers={"content-type": ctype})


async def _save(task: Task, folder: Path, host: Host, **kwargs: object) -> list[Path]:
    api = FakeAPI()
    async with AsyncEvolink(
        api_key=KEY, base_url=API, transport=api.transport(), max_retries=0
    ) as client:
        async with host.client() as http:
            with anyio.fail_after(30):
                paths = await client.tasks.save(task, folder, http_client=http, **kwargs)
    assert api.requests == [], "save must not talk to the API"
    return paths


async def test_saves_in_order_with_types_and_progress(tmp_path):
    host = Host({"/a": _image(), "/b": _image(JPEG, "image/jpeg")})
    seen: list[SavedImage] = []
    paths = await _save(_task(f"{HOST}/a", f"{HOST}/b"), tmp_path, host, on_progress=seen.append)
    assert [p.name for p in paths] == [f"{TASK_ID}-1.png", f"{TASK_ID}-2.jpg"]
    assert paths[0].read_bytes() == PNG
    assert paths[1].read_bytes() == JPEG
    assert [s.path for s in seen] == paths
    assert [s.size for s in seen] == [len(PNG), len(JPEG)]
    assert _files(tmp_path) == sorted(p.name for p in paths)
    for request in host.seen:
        assert "authorization" not in request.headers
        assert KEY not in str(request.headers)


async def test_folder_is_made_and_name_is_used(tmp_path):
    host = Host({"/a": _image()})
    folder = tmp_path / "deep" / "er"
    paths = await _save(_task(f"{HOST}/a"), folder, host, name="fox")
    assert paths == [folder / "fox-1.png"]


@pytest.mark.parametrize(
    "name", ["../evil", "a/b", "..", ".", "", "x\x00y", "/abs", "..\\evil", "a\\..\\..\\b"]
)
async def test_names_that_are_not_plain_file_names_are_refused(tmp_path, name):
    host = Host({"/a": _image()})
    folder = tmp_path / "out"
    with pytest.raises(evolink.ValidationError):
        await _save(_task(f"{HOST}/a"), folder, host, name=name)
    assert host.seen == []
    assert _files(tmp_path) in ([], ["out"])


async def test_a_running_task_is_validation_error_and_a_failed_one_task_failed(tmp_path):
    host = Host({"/a": _image()})
    with pytest.raises(evolink.ValidationError):
        await _save(_task(f"{HOST}/a", status="processing"), tmp_path, host)
    failed = Task.from_dict(
        task_json("failed", error={"code": "content_policy_violation", "message": "no"})
    )
    with pytest.raises(evolink.TaskFailedError) as info:
        await _save(failed, tmp_path, host)
    assert info.value.task == failed
    assert host.seen == []


async def test_redirect_loop_is_download_error_and_leaves_nothing(tmp_path):
    def loop(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": f"{HOST}/loop?{len(request.url.query)}x"})

    host = Host({"/loop": loop})
    with pytest.raises(DownloadError) as info:
        await _save(_task(f"{HOST}/loop"), tmp_path, host)
    assert not info.value.transient
    assert len(host.seen) < 30
    assert _files(tmp_path) == []


async def test_a_few_redirects_are_followed_even_with_a_users_plain_client(tmp_path):
    host = Host(
        {
            "/r1": lambda _: httpx.Response(302, headers={"location": "/r2"}),
            "/r2": lambda _: httpx.Response(307, headers={"location": "https://cdn.example/final"}),
            "/final": _image(),
        }
    )
    paths = await _save(_task(f"{HOST}/r1"), tmp_path, host)
    assert paths[0].read_bytes() == PNG


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://results.example/a.png", "data:image/png;base64,AAAA"]
)
async def test_non_http_result_urls_are_not_fetched(tmp_path, url):
    host = Host({})
    with pytest.raises((DownloadError, evolink.ValidationError)):
        await _save(_task(url), tmp_path, host)
    assert _files(tmp_path) == []


async def test_redirect_to_a_file_url_is_refused(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG)
    host = Host({"/a": lambda _: httpx.Response(302, headers={"location": secret.as_uri()})})
    out = tmp_path / "out"
    with pytest.raises(DownloadError):
        await _save(_task(f"{HOST}/a"), out, host)
    assert _files(out) == []


@pytest.mark.parametrize("declared", [True, False])
async def test_a_body_over_max_bytes_is_refused_and_not_read_to_the_end(tmp_path, declared):
    sent = 0
    total = 10_000_000

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield PNG[:16]
        sent += 16
        while sent < total:
            yield b"\x00" * 65536
            sent += 65536

    def huge(_: httpx.Request) -> httpx.Response:
        headers = {"content-type": "image/png"}
        if declared:
            headers["content-length"] = str(total)
        return httpx.Response(200, content=body(), headers=headers)

    host = Host({"/a": huge})
    with pytest.raises(DownloadError) as info:
        await _save(_task(f"{HOST}/a"), tmp_path, host, max_bytes=100_000)
    assert not info.value.transient
    assert sent < 2_000_000
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("text/html", b"<html>expired</html>"),
        ("image/png", b"<html>a CDN error page with an image type</html>"),
        ("application/json", b'{"error": "gone"}'),
    ],
)
async def test_not_an_image_is_refused(tmp_path, ctype, body):
    host = Host({"/a": _image(body, ctype)})
    with pytest.raises(DownloadError) as info:
        await _save(_task(f"{HOST}/a"), tmp_path, host)
    assert not info.value.transient
    assert _files(tmp_path) == []


async def test_an_empty_body_is_not_saved(tmp_path):
    host = Host({"/a": _image(b"", "image/png")})
    with pytest.raises(DownloadError):
        await _save(_task(f"{HOST}/a"), tmp_path, host)
    assert _files(tmp_path) == []


@pytest.mark.parametrize("status", [404, 410, 403])
async def test_expired_or_missing_results_are_permanent(tmp_path, status):
    host = Host({"/a": lambda _: httpx.Response(status, text="gone")})
    with pytest.raises(DownloadError) as info:
        await _save(_task(f"{HOST}/a"), tmp_path, host)
    assert not info.value.transient
    assert len(host.seen) == 1
    assert str(status) in str(info.value)
    assert _files(tmp_path) == []


async def test_transient_errors_are_retried(tmp_path):
    answers = iter([503, 502])

    def flaky(_: httpx.Request) -> httpx.Response:
        status = next(answers, 200)
        if status != 200:
            return httpx.Response(status, text="busy")
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})

    host = Host({"/a": flaky})
    paths = await _save(_task(f"{HOST}/a"), tmp_path, host)
    assert paths[0].read_bytes() == PNG
    assert len(host.seen) == 3


async def test_a_connection_cut_mid_body_leaves_no_partial_file(tmp_path):
    calls = 0

    async def cut() -> AsyncIterator[bytes]:
        yield PNG[:20]
        raise httpx.RemoteProtocolError("peer closed connection")

    def handler(_: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, content=cut(), headers={"content-type": "image/png"})

    host = Host({"/a": handler})
    with pytest.raises(DownloadError) as info:
        await _save(_task(f"{HOST}/a"), tmp_path, host)
    assert info.value.transient
    assert calls >= 2, "a dropped connection is transient: it is retried"
    assert _files(tmp_path) == []


async def test_second_image_failing_keeps_the_first_whole_and_no_temp_files(tmp_path):
    host = Host({"/a": _image(), "/b": lambda _: httpx.Response(410, text="expired")})
    with pytest.raises(DownloadError):
        await _save(_task(f"{HOST}/a", f"{HOST}/b"), tmp_path, host)
    assert _files(tmp_path) == [f"{TASK_ID}-1.png"]
    assert (tmp_path / f"{TASK_ID}-1.png").read_bytes() == PNG


async def test_folder_that_is_a_file_is_a_download_error(tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file")
    host = Host({"/a": _image()})
    with pytest.raises(DownloadError):
        await _save(_task(f"{HOST}/a"), blocker, host)
    assert blocker.read_text() == "a file"


async def test_an_existing_file_is_replaced_whole(tmp_path):
    (tmp_path / f"{TASK_ID}-1.png").write_bytes(b"old")
    host = Host({"/a": _image()})
    paths = await _save(_task(f"{HOST}/a"), tmp_path, host)
    assert paths[0].read_bytes() == PNG
    assert _files(tmp_path) == [f"{TASK_ID}-1.png"]


async def test_default_http_client_never_sends_the_key_even_to_the_api_host(tmp_path):
    with result_server() as server:
        url = base(server)
        server.routes["/v1/x.png"] = (200, {"Content-Type": "image/png"}, PNG)
        server.routes["/hop"] = (302, {"Location": f"{url}/v1/x.png"}, b"")
        # The result host is the API host itself: still no key on image requests.
        async with AsyncEvolink(api_key=KEY, base_url=url, max_retries=0) as client:
            with anyio.fail_after(30):
                paths = await client.tasks.save(_task(f"{url}/v1/x.png", f"{url}/hop"), tmp_path)
        assert [p.read_bytes() for p in paths] == [PNG, PNG]
        assert len(server.seen) == 3
        for _, headers in server.seen:
            lowered = {k.lower(): v for k, v in headers.items()}
            assert "authorization" not in lowered
            assert all(KEY not in v for v in headers.values())


def test_sync_save_without_http_client_sends_no_key_and_works_in_a_thread(tmp_path):
    with result_server() as server:
        url = base(server)
        server.routes["/img.png"] = (200, {"Content-Type": "image/png"}, PNG)
        api = FakeAPI()
        with Evolink(api_key=KEY, base_url=API, transport=api.transport()) as client:
            paths = client.tasks.save(_task(f"{url}/img.png"), tmp_path, name="x")
        assert paths == [tmp_path / "x-1.png"]
        assert api.requests == []
        for _, headers in server.seen:
            assert all(KEY not in v for v in headers.values())
            assert "authorization" not in {k.lower() for k in headers}


def test_sync_save_errors_cross_the_portal_typed(tmp_path):
    with result_server() as server:
        url = base(server)
        server.routes["/gone.png"] = (410, {"Content-Type": "text/plain"}, b"expired")
        with Evolink(api_key=KEY, base_url=API, transport=FakeAPI().transport()) as client:
            with pytest.raises(DownloadError) as info:
                client.tasks.save(_task(f"{url}/gone.png"), tmp_path)
    assert type(info.value) is DownloadError
    assert not info.value.transient
    assert "evolink.DownloadError" in f"{type(info.value).__module__}.{type(info.value).__name__}"
    assert _files(tmp_path) == []


async def test_content_length_shorter_than_body_is_not_saved_truncated(tmp_path):
    def liar(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=PNG,
            headers={"content-type": "image/png", "content-length": str(len(PNG) + 50)},
        )

    host = Host({"/a": liar})
    try:
        paths = await _save(_task(f"{HOST}/a"), tmp_path, host)
    except DownloadError:
        assert _files(tmp_path) == []
    else:
        assert paths[0].read_bytes() == PNG


def test_sync_md_in_tests_example(tmp_path, monkeypatch):
    from evolink.testing import Simulator  # noqa: PLC0415

    monkeypatch.chdir(tmp_path)
    sim = Simulator(durations=(0.05, 0.2))
    with Evolink(api_key="sk-evo-test", transport=sim.transport()) as client:
        done = client.images.run("a red fox in snow", timeout=30)
        images = httpx.AsyncClient(transport=sim.transport())
        paths = client.tasks.save(done, "test-images", http_client=images)
    assert sim.count("POST", "/v1/images/generations") == 1
    assert len(paths) == 1
    assert paths[0].read_bytes().startswith(b"\x89PNG")
    assert os.path.relpath(paths[0], tmp_path).startswith("test-images")
