"""The docs site builds strictly and works opened from disk: every link lands on a file.

Opened as file://, a link to a folder shows a directory listing; `use_directory_urls: false`
makes every page a `page.html`, and this test holds every page's links to that.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        target = found.get("href") if tag in {"a", "link"} else found.get("src")
        if target:
            self.targets.append(target)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("mkdocs") is None:
        # The tests nox session installs the docs group; in CI its absence is a failure.
        if os.environ.get("CI"):
            pytest.fail("mkdocs is not installed (the tests nox session installs it)")
        pytest.skip("mkdocs is not installed")
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert 0 == built.returncode, built.stderr
    return out


def test_pages_are_files_not_folders(site):
    """Each page is `name.html`: the only `index.html` is the home page."""
    assert [site / "index.html"] == sorted(site.rglob("index.html"))
    assert (site / "how-to" / "docs-site.html").is_file()


def test_every_local_link_lands_on_a_file(site):
    """From disk, every page's local links and assets open a file, never a folder."""
    broken = []
    # 404.html is a server's page for any missing URL, so its links are absolute on purpose.
    pages = [page for page in sorted(site.rglob("*.html")) if page.name != "404.html"]
    assert len(pages) > 20
    for page in pages:
        links = _Links()
        links.feed(page.read_text(encoding="utf-8"))
        for target in links.targets:
            parts = urlsplit(target)
            if parts.scheme or parts.netloc or not parts.path:
                continue  # another site, or an anchor on this page
            resolved = (page.parent / unquote(parts.path)).resolve()
            if not resolved.is_file():
                broken.append(f"{page.relative_to(site)}: {target}")
    assert [] == broken
