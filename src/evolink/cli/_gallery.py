"""`index.html`: a contact sheet of the run that opens from disk, with no server.

One self-contained page (inline CSS and a few lines of script to filter by status); images
are linked by relative path, so the folder can be moved or zipped as it is.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

from evolink.cli._manifest import STATUSES, Result, write_atomically
from evolink.cli._view import amount

GALLERY_NAME = "index.html"

_CSS = """
:root{--bg:#0f1115;--card:#181b22;--line:#262a33;--text:#e7e9ee;--muted:#9aa1ad;
--ok:#3ecf8e;--bad:#ff6b6b;--warn:#f5b94a;--off:#7c8593}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,
Roboto,sans-serif;background:var(--bg);color:var(--text)}
header{position:sticky;top:0;z-index:1;background:rgba(15,17,21,.94);backdrop-filter:blur(6px);
border-bottom:1px solid var(--line);padding:14px 24px}
h1{font-size:18px;margin:0 0 4px}.meta{color:var(--muted);font-size:13px}
.filters{margin-top:10px;display:flex;gap:6px;flex-wrap:wrap}
.filters button{background:var(--card);color:var(--text);border:1px solid var(--line);
border-radius:999px;padding:3px 12px;cursor:pointer;font:inherit;font-size:12px}
.filters button.on{border-color:var(--text)}
main{padding:18px 24px;display:grid;gap:12px}
.row{display:grid;grid-template-columns:minmax(220px,340px) 1fr;gap:16px;background:var(--card);
border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.idx{color:var(--muted);font-variant-numeric:tabular-nums;font-size:12px}
.prompt{margin:4px 0 8px;word-break:break-word}
.badge{display:inline-block;border-radius:6px;padding:1px 8px;font-size:12px;font-weight:600}
.completed{background:rgba(62,207,142,.15);color:var(--ok)}
.failed,.download_failed{background:rgba(255,107,107,.15);color:var(--bad)}
.rejected,.uncertain{background:rgba(245,185,74,.15);color:var(--warn)}
.skipped,.abandoned,.cancelled{background:rgba(124,133,147,.18);color:var(--off)}
.credits,.task{color:var(--muted);font-size:12px;margin-top:6px;word-break:break-all}
.error{margin-top:8px;color:var(--bad);font-size:13px;word-break:break-word}
.thumbs{display:flex;gap:10px;flex-wrap:wrap;align-items:flex-start}
.thumbs img{height:160px;width:auto;max-width:240px;object-fit:cover;border-radius:8px;
border:1px solid var(--line);background:#222}
.empty{color:var(--muted);font-style:italic;align-self:center}
@media (max-width:700px){.row{grid-template-columns:1fr}}
"""

_SCRIPT = """
document.querySelectorAll('.filters button').forEach(function(b){b.onclick=function(){
document.querySelectorAll('.filters button').forEach(function(x){x.classList.remove('on')});
b.classList.add('on');var s=b.dataset.status;document.querySelectorAll('.row').forEach(
function(r){r.style.display=(s==='all'||r.dataset.status===s)?'':'none'})}});
"""


def _credits(value: Decimal | None) -> str:
    return "-" if value is None else f"{amount(value)}"


def _row(result: Result) -> str:
    esc = html.escape
    thumbs = "".join(
        f'<a href="{esc(quote(name))}" target="_blank">'
        f'<img src="{esc(quote(name))}" loading="lazy" alt="{esc(result.prompt[:80])}"></a>'
        for name in result.files
    )
    if not thumbs:
        thumbs = '<span class="empty">no images</span>'
    error = ""
    if result.error_code or result.error_message:
        detail = ": ".join(p for p in (result.error_code, result.error_message) if p)
        error = f'<div class="error">{esc(detail)}</div>'
    task = f'<div class="task">{esc(result.task_id)}</div>' if result.task_id else ""
    status = esc(result.status)
    return (
        f'<section class="row" data-status="{status}"><div>'
        f'<div class="idx">#{result.index + 1:04d} · line {result.line}</div>'
        f'<div class="prompt">{esc(result.prompt)}</div>'
        f'<span class="badge {status}">{status.replace("_", " ")}</span>'
        f'<div class="credits">credits reserved {_credits(result.reserved)}'
        f" · charged {_credits(result.charged)}</div>{task}{error}</div>"
        f'<div class="thumbs">{thumbs}</div></section>'
    )


def render_gallery(results: Sequence[Result], *, title: str) -> str:
    """The page's HTML for `results` (in index order)."""
    ordered = sorted(results, key=lambda r: r.index)
    counts = Counter(r.status for r in ordered)
    images = sum(len(r.files) for r in ordered)
    charged = sum((r.charged or Decimal(0) for r in ordered), Decimal(0))
    summary = " · ".join(f"{counts[s]} {s.replace('_', ' ')}" for s in STATUSES if counts[s])
    buttons = '<button class="on" data-status="all">all</button>' + "".join(
        f'<button data-status="{s}">{s.replace("_", " ")} ({counts[s]})</button>'
        for s in STATUSES
        if counts[s]
    )
    body = "\n".join(_row(r) for r in ordered)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1>"
        f'<div class="meta">{len(ordered)} prompts · {images} images · {summary}'
        f" · {amount(charged)} credits charged</div>"
        f'<div class="filters">{buttons}</div></header>'
        f"<main>\n{body}\n</main><script>{_SCRIPT}</script></body></html>\n"
    )


def write_gallery(folder: Path, results: Sequence[Result], *, title: str) -> Path:
    """Write `index.html` in `folder`; return its path."""
    path = folder / GALLERY_NAME
    write_atomically(path, render_gallery(results, title=title))
    return path
