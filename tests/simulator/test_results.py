"""Result images: real PNGs of the requested size, deterministic, and expiring."""

from __future__ import annotations

import struct
import zlib

import httpx
import pytest
from _sim_support import BASE_URL, api, create_id

from evolink.testing import Fixed, Simulator, VirtualClock
from evolink.testing._png import image_size

pytestmark = pytest.mark.anyio


def decode_png(data: bytes) -> tuple[int, int]:
    """Check a PNG's structure and CRCs, inflate it, and return its width and height."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        payload = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + payload) & 0xFFFFFFFF == crc
        chunks.append((kind, payload))
        offset += 12 + length
    assert [b"IHDR", b"IDAT", b"IEND"] == [kind for kind, _ in chunks]
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (8, 2) == (depth, colour)
    raw = zlib.decompress(chunks[1][1])
    assert height * (1 + 3 * width) == len(raw)
    return width, height


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        pytest.param("1:1", (1024, 1024), id="1:1"),
        pytest.param("2:3", (1024, 1536), id="2:3"),
        pytest.param("3:2", (1536, 1024), id="3:2"),
        pytest.param("1536x1024", (1536, 1024), id="pixels"),
        pytest.param(None, (1024, 1024), id="default"),
    ],
)
async def test_results_are_pngs_of_the_size(
    clock: VirtualClock, size: str | None, expected: tuple[int, int]
) -> None:
    """Each result URL serves a valid PNG of the requested size, without the API key."""
    sim = Simulator(clock=clock, durations=Fixed(5))
    async with api(sim) as client:
        task_id = await create_id(client, n=2, **({} if size is None else {"size": size}))
        clock.advance(5)
        urls = (await client.get(f"/v1/tasks/{task_id}")).json()["results"]
    async with httpx.AsyncClient(transport=sim.transport()) as anonymous:
        images = [await anonymous.get(url) for url in urls]
    assert [200, 200] == [r.status_code for r in images]
    assert {"image/png"} == {r.headers["content-type"] for r in images}
    assert [expected, expected] == [decode_png(r.content) for r in images]
    assert images[0].content != images[1].content


def test_pngs_are_deterministic_from_the_prompt() -> None:
    """The same prompt gives the same image; another prompt another one."""
    from evolink.testing._png import render_png  # noqa: PLC0415

    render_png.cache_clear()
    first = render_png("a fox", 64, 48, 0)
    render_png.cache_clear()
    assert first == render_png("a fox", 64, 48, 0)
    assert first != render_png("a cat", 64, 48, 0)
    assert (64, 48) == decode_png(first)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        pytest.param("16:9", (1360, 768), id="ratio"),
        pytest.param("auto", (1024, 1024), id="auto"),
        pytest.param("9999x20", (4096, 20), id="clamped"),
        pytest.param("0:1", (1024, 1024), id="zero-ratio"),
    ],
)
def test_other_sizes(size: str, expected: tuple[int, int]) -> None:
    """Other models' sizes map to about a megapixel in their shape."""
    assert expected == image_size(size)


async def test_results_expire(clock: VirtualClock) -> None:
    """After `result_ttl` from the task's end, result URLs answer 410."""
    sim = Simulator(clock=clock, durations=Fixed(5), result_ttl=60)
    async with api(sim) as client:
        task_id = await create_id(client)
        clock.advance(5 + 59)
        fresh = await client.get(f"/results/{task_id}/0.png")
        clock.advance(1)
        stale = await client.get(f"/results/{task_id}/0.png")
    assert (200, 410) == (fresh.status_code, stale.status_code)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("1.png", id="index-too-big"),
        pytest.param("0.jpg", id="not-png"),
        pytest.param("x.png", id="not-index"),
    ],
)
async def test_missing_results(clock: VirtualClock, name: str) -> None:
    """Result routes for images that do not exist answer 404."""
    sim = Simulator(clock=clock, durations=Fixed(5))
    async with api(sim) as client:
        task_id = await create_id(client)
        early = await client.get(f"{BASE_URL}/results/{task_id}/0.png")
        clock.advance(5)
        missing = await client.get(f"/results/{task_id}/{name}")
        unknown = await client.get("/results/task-unified-0-none/0.png")
    assert (404, 404, 404) == (early.status_code, missing.status_code, unknown.status_code)
