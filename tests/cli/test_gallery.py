"""The gallery page's markup: escaped text, lazy media, a card per prompt, no network.

Its behaviour in a browser (layout, search, filter, lazy loading) is pinned by
`test_gallery_browser.py`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evolink.cli._gallery import GALLERY_NAME, render_gallery, write_gallery
from evolink.cli._manifest import Result


class _Page(HTMLParser):
    """What a browser would read from the page: prompt texts, media tags and attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.prompts: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.title = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if tag == "p" and found.get("class") == "prompt":
            self.prompts.append("")
            self._in = "prompt"
        elif tag == "title":
            self._in = "title"

    def handle_endtag(self, tag: str) -> None:
        if tag in {"p", "title"}:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "prompt":
            self.prompts[-1] += data
        elif self._in == "title":
            self.title += data

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def _result(index: int = 0, **changes: object) -> Result:
    fields: dict[str, object] = {
        "index": index,
        "line": index + 1,
        "prompt": f"prompt {index}",
        "status": "completed",
        "files": (f"{index + 1:04d}-1.png",),
    }
    fields.update(changes)
    return Result(**fields)  # type: ignore[arg-type]


#: Text rich in markup's special characters and fragments, mixed with arbitrary text.
markup = st.lists(
    st.sampled_from(["<", ">", "&", '"', "'", "</p>", "<b>", "&lt;", "&amp", "<script>", "x"])
    | st.text(max_size=4)
).map("".join)


@given(prompt=markup, title=markup)
def test_any_prompt_and_title_read_back_as_text(prompt, title):
    """Whatever a prompt or title holds, the page shows exactly that text, never markup."""
    page = _parse(render_gallery([_result(prompt=prompt)], title=title))
    assert [prompt.replace("\r\n", "\n")] == [p.replace("\r\n", "\n") for p in page.prompts]
    assert title == page.title
    assert [prompt[:80]] == [img["alt"] for img in page.all("img")]
    assert 1 == len(page.all("script"))


def test_hostile_prompt_is_escaped():
    """Markup in a prompt, an error or a task id arrives escaped, in every place it is shown."""
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    text = render_gallery(
        [_result(prompt=hostile, task_id=hostile, error_code=hostile, error_message=hostile)],
        title=hostile,
    )
    assert "<script>alert" not in text
    assert "onerror=alert(2)>" not in text
    assert 1 == text.count("<script>")


@pytest.mark.parametrize(
    ("name", "src"),
    [
        pytest.param("0001 a&b.png", "0001%20a%26b.png", id="space-ampersand"),
        pytest.param('0001-"q".png', "0001-%22q%22.png", id="quote"),
        pytest.param("javascript:alert(1)", "javascript%3Aalert%281%29", id="no-scheme"),
        pytest.param("sub/0001.png", "sub/0001.png", id="relative-folder"),
    ],
)
def test_file_names_become_relative_urls(name, src):
    """A file name is percent-encoded into a relative link: it can never be a scheme."""
    page = _parse(render_gallery([_result(files=(name,))], title="t"))
    assert [src] == [img["src"] for img in page.all("img")]
    assert [src] == [a["href"] for a in page.all("a")]


def test_every_image_is_lazy():
    """Every image waits to be scrolled near before it loads."""
    results = [_result(i, files=(f"{i}-1.png", f"{i}-2.webp")) for i in range(30)]
    images = _parse(render_gallery(results, title="t")).all("img")
    assert 60 == len(images)
    assert {"lazy"} == {img["loading"] for img in images}


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        pytest.param("0001-1.mp4", "video", id="mp4"),
        pytest.param("0001-1.MP4", "video", id="upper-case"),
        pytest.param("0001-1.webm", "video", id="webm"),
        pytest.param("0001-1.mp3", "audio", id="mp3"),
        pytest.param("0001-1.wav", "audio", id="wav"),
        pytest.param("0001-1.png", "img", id="png"),
        pytest.param("0001-1", "img", id="no-extension"),
    ],
)
def test_media_element_follows_the_extension(name, tag):
    """Videos and sounds get a player that fetches nothing until played; the rest an image."""
    page = _parse(render_gallery([_result(files=(name,))], title="t"))
    ((found, media),) = [(t, attrs) for t, attrs in page.tags if t in {"img", "video", "audio"}]
    assert tag == found
    if tag != "img":
        assert "none" == media["preload"]
        assert "controls" in media


def test_summary_names_files_when_not_all_are_images():
    """The header counts `images`, or `files` once a video or sound is among them."""
    images = render_gallery([_result(files=("a.png", "b.png"))], title="t")
    mixed = render_gallery([_result(files=("a.png", "b.mp4"))], title="t")
    assert "1 prompts · 2 images · 1 completed" in images
    assert "1 prompts · 2 files · 1 completed" in mixed


def test_page_is_self_contained():
    """No stylesheet, script, font or image is fetched from anywhere but the folder."""
    text = render_gallery([_result(i) for i in range(3)], title="t")
    assert re.search(r"(https?:)?//", text) is None
    page = _parse(text)
    assert [] == page.all("link")
    assert [{}] == page.all("script")  # inline only


def test_cards_in_index_order_with_status_buttons():
    """One card per result in index order; a filter button per status present, with counts."""
    results = [
        _result(2, status="failed", files=(), error_code="boom"),
        _result(0),
        _result(1, status="download_failed", files=(), error_message="disk full"),
    ]
    page = _parse(render_gallery(results, title="t"))
    articles = page.all("article")
    assert ["completed", "download_failed", "failed"] == [a["data-status"] for a in articles]
    buttons = page.all("button")
    assert ["all", "completed", "download_failed", "failed"] == [b["data-status"] for b in buttons]
    assert ["true", "false", "false", "false"] == [b["aria-pressed"] for b in buttons]
    text = render_gallery(results, title="t")
    assert "download failed (1)</button>" in text
    assert '<div class="error">boom</div>' in text
    assert '<div class="error">disk full</div>' in text
    assert 2 == text.count('<div class="none">no image</div>')


def test_card_shows_credits_task_and_several_files():
    """A card names its index, line, credits and task; several files share a tiled frame."""
    result = _result(
        41,
        line=7,
        files=("a.png", "b.png"),
        task_id="task-unified-1",
        reserved=Decimal("2.50"),
        charged=None,
    )
    text = render_gallery([result], title="t")
    assert '<span class="idx">#0042</span>' in text
    assert "<span>line 7</span> · <span>reserved 2.5</span> · <span>charged -</span>" in text
    assert '<div class="task">task-unified-1</div>' in text
    assert '<div class="media many">' in text
    assert '<div class="error">' not in text


def test_write_gallery_writes_index_html(tmp_path):
    """`write_gallery` writes `index.html` in the folder and returns its path."""
    path = write_gallery(tmp_path, [_result()], title="run")
    assert tmp_path / GALLERY_NAME == path
    assert path.read_text(encoding="utf-8") == render_gallery([_result()], title="run")
