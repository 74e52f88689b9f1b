"""The end of a run: a summary table for people, a JSON document for scripts."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from evolink.cli._manifest import STATUSES, Result
from evolink.cli._media import files_noun
from evolink.cli._run import RunSummary
from evolink.cli._view import amount, duration

_STYLES = {
    "completed": "green",
    "download_failed": "red",
    "failed": "red",
    "cancelled": "yellow",
    "rejected": "yellow",
    "skipped": "yellow",
    "uncertain": "yellow",
    "abandoned": "yellow",
}


def _charged(summary: RunSummary) -> Decimal:
    return sum((r.charged or Decimal(0) for r in summary.results), Decimal(0))


def _detail(result: Result) -> str:
    """Why an input did not complete, on one line; never empty."""
    detail = " ".join(": ".join(p for p in (result.error_code, result.error_message) if p).split())
    if not detail:
        detail = "no reason given"
    if result.task_id is not None and result.status in {"abandoned", "uncertain"}:
        detail += f" (task {result.task_id})"
    return detail


def print_summary(console: Console, summary: RunSummary) -> None:
    """The final table, the failures (a few), where things are, and what to do next."""
    table = Table(title="Summary", title_justify="left", show_header=True, header_style="bold")
    table.add_column("status")
    table.add_column("inputs", justify="right")
    for status in STATUSES:
        count = summary.count(status)
        if count:
            table.add_row(Text(status.replace("_", " "), style=_STYLES[status]), str(count))
    table.add_section()
    table.add_row("total", str(len(summary.results)))
    names = [name for r in summary.results for name in r.files]
    details = Table.grid(padding=(0, 2))
    details.add_column(style="dim")
    details.add_column()
    details.add_row(files_noun(names), str(len(names)))
    details.add_row("credits charged", f"{amount(_charged(summary))}")
    details.add_row("credits reserved (this run)", f"{amount(summary.reserved)}")
    details.add_row("elapsed", duration(summary.elapsed))
    if summary.resumed:
        details.add_row("resumed as done", str(summary.resumed))
    if summary.retried:
        details.add_row("failed before, sent again", str(summary.retried))
    if summary.possible_duplicates:
        details.add_row(
            Text("possible duplicates", style="yellow"),
            Text(
                f"{summary.possible_duplicates} (possible_duplicate in the manifest)",
                style="yellow",
            ),
        )
    details.add_row("output", str(summary.out))
    if summary.manifest is not None:
        details.add_row("manifest", str(summary.manifest))
    console.print()
    console.print(table)
    console.print(details)
    problems = [r for r in summary.results if not r.ok]
    for result in problems[:10]:
        detail = _detail(result)
        console.print(
            Text(f"  #{result.index + 1} (line {result.line}) {result.status}: {detail}"[:300]),
            style=_STYLES.get(result.status, ""),
            highlight=False,
        )
    if len(problems) > 10:
        console.print(f"  … and {len(problems) - 10} more in the manifest", style="dim")
    if summary.gallery is not None:
        console.print()
        console.print(
            Text.assemble(("Gallery: ", "bold"), (summary.gallery.resolve().as_uri(), "cyan")),
            highlight=False,
            soft_wrap=True,
        )
    _print_next_steps(console, summary)


def _print_next_steps(console: Console, summary: RunSummary) -> None:
    if summary.failed_before:
        console.print(
            Text(
                f"{summary.failed_before} input(s) failed in an earlier run: add --retry-failed"
                " to --resume to send them again.",
                style="yellow",
            )
        )
    if summary.interrupted:
        console.print(Text(f"Interrupted: {summary.interrupted_hint}.", style="yellow"))


def summary_json(summary: RunSummary) -> dict[str, Any]:
    """The run as one JSON document: counts, credits, paths, and every result."""
    return {
        "ok": summary.ok,
        "interrupted": summary.interrupted,
        "out": str(summary.out),
        "manifest": None if summary.manifest is None else str(summary.manifest),
        "gallery": None if summary.gallery is None else str(summary.gallery),
        "counts": {status: summary.count(status) for status in STATUSES},
        "possible_duplicates": summary.possible_duplicates,
        "credits": {
            "charged": float(_charged(summary)),
            "reserved_this_run": float(summary.reserved),
        },
        "elapsed": round(summary.elapsed, 3),
        "results": [r.to_json() for r in summary.results],
    }


def dumps(document: Any) -> str:
    """JSON for stdout (decimals as numbers)."""
    return json.dumps(document, default=_default, ensure_ascii=False, indent=2)


def _default(value: object) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)
