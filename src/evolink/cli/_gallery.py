"""`index.html`: a contact sheet of the run that opens from disk, with no server.

One self-contained page: a responsive grid of cards (inline CSS, and a few lines of script
to filter by status and search the prompts). Files are linked by relative path, so the
folder can be moved or zipped as it is; images load lazily, so a run of 1,000 prompts opens
as fast as one of ten. Prompts are hostile input: every piece of text is escaped.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from evolink.cli._gallery_assets import CSS, SCRIPT
from evolink.cli._manifest import STATUSES, Result, write_atomically
from evolink.cli._media import AUDIO_SUFFIXES, VIDEO_SUFFIXES, files_noun
from evolink.cli._view import amount

GALLERY_NAME = "index.html"


def _credits(value: Decimal | None) -> str:
    return "-" if value is None else f"{amount(value)}"


def _media(name: str, alt: str) -> str:
    # quote() turns a `:` into %3A, so no file name can become a `javascript:` URL.
    src = html.escape(quote(name))
    suffix = PurePosixPath(name).suffix.lower()
    # preload="none" is a player's `loading="lazy"`: 1,000 cards must not fetch 1,000 files.
    if suffix in VIDEO_SUFFIXES:
        return f'<video src="{src}" controls preload="none" playsinline></video>'
    if suffix in AUDIO_SUFFIXES:
        return f'<div class="audio"><audio src="{src}" controls preload="none"></audio></div>'
    return (
        f'<a href="{src}" target="_blank">'
        f'<img src="{src}" loading="lazy" decoding="async" alt="{alt}"></a>'
    )


def _card(result: Result) -> str:
    esc = html.escape
    alt = esc(result.prompt[:80])
    media = "".join(_media(name, alt) for name in result.files)
    if not media:
        media = '<div class="none">no image</div>'
    many = " many" if len(result.files) > 1 else ""
    error = ""
    if result.error_code or result.error_message:
        detail = ": ".join(p for p in (result.error_code, result.error_message) if p)
        error = f'<div class="error">{esc(detail)}</div>'
    task = f'<div class="task">{esc(result.task_id)}</div>' if result.task_id else ""
    status = esc(result.status)
    return (
        f'<article class="card" data-status="{status}">'
        f'<div class="media{many}">{media}</div><div class="body">'
        f'<div class="head"><span class="idx">#{result.index + 1:04d}</span>'
        f'<span class="badge {status}">{status.replace("_", " ")}</span></div>'
        f'<p class="prompt">{esc(result.prompt)}</p>'
        # Nowrap pieces: a narrow card breaks the line at the dots, never inside a figure.
        f'<div class="credits"><span>line {result.line}</span> · '
        f"<span>reserved {_credits(result.reserved)}</span> · "
        f"<span>charged {_credits(result.charged)}</span></div>{task}{error}</div></article>"
    )


def render_gallery(results: Sequence[Result], *, title: str) -> str:
    """The page's HTML for `results` (in index order)."""
    ordered = sorted(results, key=lambda r: r.index)
    counts = Counter(r.status for r in ordered)
    files = [name for r in ordered for name in r.files]
    noun = files_noun(files)
    charged = sum((r.charged or Decimal(0) for r in ordered), Decimal(0))
    summary = " · ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in STATUSES if counts[s])
    buttons = '<button type="button" data-status="all" aria-pressed="true">all</button>' + "".join(
        f'<button type="button" data-status="{s}" aria-pressed="false">'
        f"{s.replace('_', ' ')} ({counts[s]})</button>"
        for s in STATUSES
        if counts[s]
    )
    cards = "\n".join(_card(r) for r in ordered)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1>"
        f'<div class="meta">{len(ordered)} prompts · {len(files)} {noun} · {summary}'
        f" · {amount(charged)} credits charged</div>"
        '<div class="tools"><input id="search" type="search" placeholder="Search prompts"'
        ' aria-label="Search prompts" autocomplete="off">'
        f'<div class="filters" role="group" aria-label="Status">{buttons}</div>'
        f'<span id="shown" class="meta" aria-live="polite">{len(ordered)} shown</span>'
        "</div></header>"
        f"<main>\n{cards}\n</main>"
        '<p id="nomatch" class="nomatch" hidden>No prompt matches.</p>'
        # Without script the controls would do nothing: hide them, show every card.
        "<noscript><style>.tools{display:none}</style></noscript>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def write_gallery(folder: Path, results: Sequence[Result], *, title: str) -> Path:
    """Write `index.html` in `folder`; return its path."""
    path = folder / GALLERY_NAME
    write_atomically(path, render_gallery(results, title=title))
    return path
