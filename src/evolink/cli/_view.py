"""What the user watches while a batch runs: a rich live panel on a terminal, log lines elsewhere.

The runner hands the view a `Snapshot` on every change and a line per finished input; the
view decides how often to draw. Off a terminal (CI, a pipe, `--json`) it writes plain lines:
one per finished input and a status line every few seconds, no escape codes.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import IO, Protocol

import attrs
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

#: Seconds between status lines when not on a terminal.
PLAIN_STATUS_EVERY = 5.0
#: The live panel's width at most: it fits an 80-column terminal, border included.
PANEL_WIDTH = 80
#: Room beside a bar for its figures (`100000/100000  100%`, `12345.5 of 100000 budget`).
_BESIDE_BAR = 28


@attrs.frozen(kw_only=True)
class Snapshot:
    """The run at one moment, over every input (resumed and rejected ones included)."""

    total: int
    completed: int = 0
    failed: int = 0
    #: Ended because the run was stopped (Ctrl-C): created and left running, or cut off.
    interrupted: int = 0
    rejected: int = 0
    skipped: int = 0
    in_flight: int = 0
    downloading: int = 0
    waiting: int = 0
    images: int = 0
    #: What the saved files are called: `images`, or `files` once a video or a sound is saved.
    files_noun: str = "images"
    #: Reserved and charged for the whole input, earlier runs' (`earlier`) included.
    reserved: Decimal = Decimal(0)
    charged: Decimal = Decimal(0)
    released: Decimal = Decimal(0)
    #: What earlier runs charged for inputs this one resumed as done.
    earlier: Decimal = Decimal(0)
    max_credits: Decimal | None = None
    elapsed: float = 0.0
    eta: float | None = None

    @property
    def finished(self) -> int:
        """Inputs that ended, one way or another."""
        return self.completed + self.failed + self.interrupted + self.rejected + self.skipped

    @property
    def committed(self) -> Decimal:
        """Credits charged or still held, earlier runs' included (the batch's ledger counts
        them): what the budget bar shows."""
        return self.reserved - self.released


class View(Protocol):
    """Where progress goes."""

    def start(self, title: str) -> None:
        """The run begins."""

    def update(self, snapshot: Snapshot) -> None:
        """The run changed."""

    def event(self, text: str, *, ok: bool) -> None:
        """One input finished (or something worth a line happened)."""

    def stop(self) -> None:
        """The run ended: stop drawing."""


def duration(seconds: float | None) -> str:
    """`1m 05s`, `42s`, or `-` when unknown."""
    if seconds is None:
        return "-"
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def amount(value: Decimal) -> str:
    """Credits without float noise or trailing zeros: `150`, `2.5`."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def credits_text(snapshot: Snapshot) -> str:
    """`12.5 reserved · 10 charged / 500 budget`."""
    budget = "" if snapshot.max_credits is None else f" / {amount(snapshot.max_credits)} budget"
    return f"{amount(snapshot.reserved)} reserved · {amount(snapshot.charged)} charged{budget}"


@attrs.define
class PlainView:
    """Log lines for pipes and CI: no colour, no cursor movement."""

    _stream: IO[str]
    _last_status: float = 0.0
    _snapshot: Snapshot | None = None

    def start(self, title: str) -> None:
        self._write(title)

    def update(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        now = time.monotonic()
        if now - self._last_status >= PLAIN_STATUS_EVERY:
            self._last_status = now
            self._write(self._status(snapshot))

    def event(self, text: str, *, ok: bool) -> None:  # noqa: ARG002 - the line says it
        self._write(text)

    def stop(self) -> None:
        if self._snapshot is not None:
            self._write(self._status(self._snapshot))

    @staticmethod
    def _status(s: Snapshot) -> str:
        interrupted = f", {s.interrupted} interrupted" if s.interrupted else ""
        return (
            f"progress: {s.finished}/{s.total} done ({s.completed} completed, {s.failed} failed,"
            f" {s.rejected + s.skipped} skipped{interrupted}) · {s.in_flight} in flight ·"
            f" {s.downloading}"
            f" downloading · {s.waiting} waiting · credits {credits_text(s)} · elapsed"
            f" {duration(s.elapsed)} · eta {duration(s.eta)}"
        )

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()


class _Panel:
    """The live panel: bars and counters, drawn from the view's latest snapshot.

    It is at most `PANEL_WIDTH` columns wide, and every label is one unbreakable cell, so
    an 80-column terminal shows it whole: no wrapped counter, no icon left on its own.
    """

    def __init__(self, view: LiveView) -> None:
        self._view = view

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        s = self._view.snapshot
        width = min(options.max_width, PANEL_WIDTH)
        inner = width - 4  # border and padding
        bar_width = max(8, inner - 9 - 2 - _BESIDE_BAR)
        done = s.finished
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True, min_width=7)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        # Lines without a bar: their text may use the bar's room and the figures' too.
        lines = Table.grid(padding=(0, 2))
        lines.add_column(style="dim", no_wrap=True, min_width=7)
        lines.add_column(no_wrap=True)
        grid.add_row(
            "inputs",
            ProgressBar(total=max(s.total, 1), completed=done, width=bar_width),
            Text.assemble(
                (f"{done}/{s.total}", "bold"), (f"  {100 * done / max(s.total, 1):.0f}%", "cyan")
            ),
        )
        money = Text.assemble(
            (amount(s.charged), "bold"),
            (" charged · ", "dim"),
            (amount(s.reserved), "bold"),
            (" reserved", "dim"),
        )
        if s.max_credits is not None and s.max_credits > 0:
            grid.add_row(
                "credits",
                ProgressBar(
                    total=float(s.max_credits),
                    completed=float(min(s.committed, s.max_credits)),
                    width=bar_width,
                    complete_style="magenta",
                ),
                Text.assemble(
                    (amount(s.committed), "bold"),
                    (f" of {amount(s.max_credits)} budget", "magenta"),
                ),
            )
            lines.add_row("", money)
        else:
            lines.add_row("credits", money)
        lines.add_row(
            "time",
            Text.assemble(
                ("elapsed ", "dim"), duration(s.elapsed), ("   eta ", "dim"), duration(s.eta)
            ),
        )
        columns = 3 if inner >= 62 else 2  # the widest three counters take 61 columns
        counters = Table.grid(padding=(0, 3))
        for _ in range(columns):
            counters.add_column(no_wrap=True)
        cells = [
            _counter("✓", "done", s.completed, "green"),
            _counter("✗", "failed", s.failed, "red"),
            _counter("⊘", "skipped", s.rejected + s.skipped, "yellow"),
            _counter("⟳", "in flight", s.in_flight, "cyan"),
            _counter("↓", "downloading", s.downloading, "blue"),
            _counter("◌", "waiting", s.waiting, "default"),
            _counter("■", "interrupted", s.interrupted, "magenta"),
            _counter("▣", s.files_noun, s.images, "default"),
        ]
        for row in range(0, len(cells), columns):
            counters.add_row(*cells[row : row + columns])
        # rich widens a panel to fit its title: a long one is cut here instead.
        title = Text(self._view.title, style="bold")
        title.truncate(width - 6, overflow="ellipsis")
        yield Panel(
            Group(grid, lines, Text(), counters),
            title=title,
            title_align="left",
            border_style="bright_black",
            width=width,
            padding=(0, 1),
        )


def _counter(icon: str, label: str, value: int, style: str) -> Text:
    """One counter, as one cell: its icon never ends up on a line of its own."""
    return Text.assemble((f"{icon} {label} ", style), (str(value), f"bold {style}"))


@attrs.define
class LiveView:
    """A rich live panel, redrawn a few times a second, with a line per finished input."""

    console: Console
    snapshot: Snapshot = attrs.field(factory=lambda: Snapshot(total=0))
    title: str = ""
    _live: Live | None = None

    def start(self, title: str) -> None:
        self.title = title
        self._live = Live(_Panel(self), console=self.console, refresh_per_second=8, transient=False)
        self._live.start()

    def update(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def event(self, text: str, *, ok: bool) -> None:
        self.console.print(Text(("✓ " if ok else "✗ ") + text, style="" if ok else "red"))

    def stop(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None


def make_view(console: Console, *, plain: bool) -> View:
    """A live view on a terminal, log lines otherwise (or when `plain`)."""
    if console.is_terminal and not plain:
        return LiveView(console)
    return PlainView(console.file)
