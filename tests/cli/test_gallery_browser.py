"""The gallery in a real headless browser: 1,000 cards at desktop and phone widths.

Debian's Chromium, driven by playwright (never playwright's own browser download, which this
network refuses); the page is opened from disk, as users open it. The `tests` nox session
installs Chromium where apt can; without it these tests skip locally and fail under CI=true.
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from evolink.cli._gallery import write_gallery
from evolink.cli._manifest import Result

CARDS = 1000
#: Every 7th prompt fails; every 4th completed one has four images.
FAILED = {i for i in range(CARDS) if i % 7 == 3}
#: A word only these prompts contain, so a search's expected count is known.
NEEDLE, NEEDLE_EVERY = "zebra", 50
#: A prompt that would run script or break the layout if it reached the page as markup.
HOSTILE = (
    '</p></article><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
    + "unbroken" * 60
)
#: Measured 51.5k px for 1,000 cards at 1,280 px wide (seven columns); the old page, one card
#: per row, took 195 px a prompt (195k px): this bound fails if the grid falls back to rows.
MAX_DESKTOP_HEIGHT_PER_CARD = 60
VIEWPORTS = [
    pytest.param((1280, 800), id="desktop-1280"),
    pytest.param((390, 844), id="phone-390"),
]
# The flags this machine needs: no sandbox as root, and no background connections to a
# network that refuses them.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing(reason: str) -> None:
    # CI must run these tests: a missing browser there is a broken setup, not a skip.
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI=true: the tests nox session installs it)")
    pytest.skip(reason)


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _png_facts(data: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct byte values in the decoded pixels."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    idat, at = b"", 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        if data[at + 4 : at + 8] == b"IDAT":
            idat += data[at + 8 : at + 8 + length]
        at += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def _prompt(index: int) -> str:
    if index == 2:
        return HOSTILE
    words = ("red fox", "neon city", "castle", "ocean at dusk", "robot", "dragon")
    prompt = f"{words[index % len(words)]} number {index} " + "in soft light " * (index % 5)
    return prompt + (f" with a {NEEDLE.upper()}" if index % NEEDLE_EVERY == 0 else "")


def _matching(*words: str) -> int:
    return sum(all(w in _prompt(i).lower() for w in words) for i in range(CARDS))


def _result(index: int, folder: Path) -> Result:
    prompt = _prompt(index)
    if index in FAILED:
        return Result(
            index=index,
            line=index + 1,
            prompt=prompt,
            status="failed",
            task_id=f"task-unified-{index:08d}",
            reserved=Decimal(2),
            error_code="content_policy_violation",
            error_message="refused",
        )
    files = tuple(f"{index + 1:04d}-{k}.png" for k in range(4 if index % 4 == 1 else 1))
    for k, name in enumerate(files):
        colour = ((index * 37) % 256, (index * 91 + k * 50) % 256, (index * 13) % 256)
        (folder / name).write_bytes(_png(48, 48, colour))
    return Result(
        index=index,
        line=index + 1,
        prompt=prompt,
        status="completed",
        task_id=f"task-unified-{index:08d}",
        reserved=Decimal(2),
        charged=Decimal(2),
        files=files,
    )


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gallery")
    results = [_result(i, folder) for i in range(CARDS)]
    return write_gallery(folder, results, title="1,000 prompts")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        _missing("Debian's chromium is not installed")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional tool
    except ImportError:
        _missing("playwright is not installed")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        yield context
        context.close()


@pytest.fixture
def page(browser: Any, gallery: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    width, height = getattr(request, "param", (1280, 800))
    tab = browser.new_page()
    tab.set_viewport_size({"width": width, "height": height})
    tab.goto(gallery.as_uri(), wait_until="load")
    yield tab
    tab.close()


def _visible(page: Any) -> list[str]:
    """The statuses of the cards on show, in order."""
    return list(
        page.eval_on_selector_all(
            "main .card", "cs => cs.filter(c => !c.hidden).map(c => c.dataset.status)"
        )
    )


@pytest.mark.parametrize("page", VIEWPORTS, indirect=True)
def test_screenshot_and_layout(page, tmp_path, request):
    """A real screenshot at each width; no horizontal scrolling; a grid, not rows, on desktop."""
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    shot = tmp_path / f"gallery-{request.node.callspec.id}.png"
    page.screenshot(path=str(shot))
    shot_width, shot_height, shades = _png_facts(shot.read_bytes())
    assert (width, height) == (shot_width, shot_height)
    assert shot.stat().st_size > 20_000
    assert shades > 100, "the screenshot is nearly blank"

    layout = page.evaluate(
        """() => {
        const cards = [...document.querySelectorAll('main .card')];
        const top = cards[0].getBoundingClientRect().top;
        return {
            scrollWidth: document.documentElement.scrollWidth,
            pageHeight: document.documentElement.scrollHeight,
            columns: cards.filter(c => c.getBoundingClientRect().top === top).length,
            widestRight: Math.max(...cards.map(c => c.getBoundingClientRect().right)),
        };
    }"""
    )
    assert layout["scrollWidth"] <= width, "the page scrolls sideways"
    assert layout["widestRight"] <= width
    if width >= 1000:
        assert layout["columns"] >= 5
        assert layout["pageHeight"] <= CARDS * MAX_DESKTOP_HEIGHT_PER_CARD, layout
    else:
        assert 2 == layout["columns"]


def test_search_filters_cards(page):
    """Typing in the search box keeps only the prompts holding every word typed."""
    assert CARDS == len(_visible(page))
    page.fill("#search", NEEDLE)
    expected = len(range(0, CARDS, NEEDLE_EVERY))
    assert expected == len(_visible(page))
    assert f"{expected} shown" == page.text_content("#shown")
    page.fill("#search", "  neon   NUMBER 40 ")  # every word, in any case and spacing
    assert _matching("neon", "number 40") == len(_visible(page))
    assert 0 < len(_visible(page)) < 20
    page.fill("#search", "no prompt says this")
    assert [] == _visible(page)
    assert page.is_visible("#nomatch")
    page.fill("#search", "")
    assert CARDS == len(_visible(page))


def test_status_filter_hides_others(page):
    """A status button shows that status alone; it combines with the search."""
    page.click('.filters button[data-status="failed"]')
    assert ["failed"] * len(FAILED) == _visible(page)
    assert "true" == page.get_attribute('.filters button[data-status="failed"]', "aria-pressed")
    page.fill("#search", NEEDLE)
    expected = len([i for i in FAILED if i % NEEDLE_EVERY == 0])
    assert ["failed"] * expected == _visible(page)
    page.click('.filters button[data-status="all"]')
    page.fill("#search", "")
    assert CARDS == len(_visible(page))


def test_images_are_lazy(page):
    """Every image is lazy: the first screen's load, the last card's waits for a scroll."""
    loading = page.eval_on_selector_all("main img", "is => is.map(i => i.loading)")
    assert len(loading) > CARDS / 2
    assert {"lazy"} == set(loading)
    page.wait_for_function("document.querySelector('main img').naturalWidth > 0")
    last = "[...document.querySelectorAll('main img')].at(-1)"
    assert 0 == page.evaluate(f"{last}.naturalWidth")
    page.evaluate(f"{last}.scrollIntoView()")
    page.wait_for_function(f"{last}.naturalWidth > 0")


def test_hostile_prompt_stays_text(page):
    """A prompt full of markup shows as its own text, runs nothing, and breaks no card."""
    assert page.evaluate("window.pwned") is None
    assert 1 == page.evaluate("document.scripts.length")
    assert CARDS == page.evaluate("document.querySelectorAll('main .card').length")
    assert HOSTILE == page.text_content("main .card:nth-child(3) .prompt")


def test_players_render_by_extension(browser, tmp_path):
    """An .mp4 becomes a video player and an .mp3 an audio one, neither fetched up front."""
    results = [
        Result(index=0, line=1, prompt="a clip", status="completed", files=("0001-1.mp4",)),
        Result(index=1, line=2, prompt="a song", status="completed", files=("0002-1.mp3",)),
    ]
    for name in ("0001-1.mp4", "0002-1.mp3"):
        (tmp_path / name).write_bytes(b"")
    tab = browser.new_page()
    tab.goto(write_gallery(tmp_path, results, title="media").as_uri())
    players = tab.eval_on_selector_all(
        "main video, main audio", "ps => ps.map(p => [p.tagName, p.preload, p.controls])"
    )
    tab.close()
    assert [["VIDEO", "none", True], ["AUDIO", "none", True]] == players
