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
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

#: Seconds between status lines when not on a terminal.
PLAIN_STATUS_EVERY = 5.0


@attrs.frozen(kw_only=True)
class Snapshot:
    """The run at one moment, over every input (resumed and rejected ones included)."""

    total: int
    completed: int = 0
    failed: int = 0
    rejected: int = 0
    skipped: int = 0
    in_flight: int = 0
    downloading: int = 0
    waiting: int = 0
    images: int = 0
    reserved: Decimal = Decimal(0)
    charged: Decimal = Decimal(0)
    released: Decimal = Decimal(0)
    max_credits: Decimal | None = None
    elapsed: float = 0.0
    eta: float | None = None

    @property
    def finished(self) -> int:
        """Inputs that ended, one way or another."""
        return self.completed + self.failed + self.rejected + self.skipped


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
        return (
            f"progress: {s.finished}/{s.total} done ({s.completed} completed, {s.failed} failed,"
            f" {s.rejected + s.skipped} skipped) · {s.in_flight} in flight · {s.downloading}"
            f" downloading · {s.waiting} waiting · credits {credits_text(s)} · elapsed"
            f" {duration(s.elapsed)} · eta {duration(s.eta)}"
        )

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()


class _Panel:
    """The live panel: bars and counters, drawn from the view's latest snapshot."""

    def __init__(self, view: LiveView) -> None:
        self._view = view

    def __rich__(self) -> RenderableType:
        s = self._view.snapshot
        done = s.finished
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_row(
            "inputs",
            ProgressBar(total=max(s.total, 1), completed=done, width=36),
            Text.assemble(
                (f"{done}/{s.total}", "bold"),
                (f"  {100 * done / max(s.total, 1):.0f}%", "cyan"),
                ("   elapsed ", "dim"),
                duration(s.elapsed),
                ("   eta ", "dim"),
                duration(s.eta),
            ),
        )
        money = Text.assemble(
            (amount(s.charged), "bold"),
            (" charged · ", "dim"),
            (amount(s.reserved), "bold"),
            (" reserved", "dim"),
        )
        if s.max_credits is not None and s.max_credits > 0:
            committed = s.reserved - s.released  # charged, or still held
            grid.add_row(
                "credits",
                ProgressBar(
                    total=float(s.max_credits),
                    completed=float(min(committed, s.max_credits)),
                    width=36,
                    complete_style="magenta",
                ),
                Text.assemble(money, (f"  of {amount(s.max_credits)} budget", "magenta")),
            )
        else:
            grid.add_row("credits", money, "")
        counters = Text.assemble(
            ("✓ done ", "green"),
            (str(s.completed), "bold green"),
            ("   ✗ failed ", "red"),
            (str(s.failed), "bold red"),
            ("   ⟳ in flight ", "cyan"),
            (str(s.in_flight), "bold cyan"),
            ("   ↓ downloading ", "blue"),
            (str(s.downloading), "bold blue"),
            ("   … waiting ", "dim"),
            (str(s.waiting), "bold"),
            ("   ⊘ skipped ", "yellow"),
            (str(s.rejected + s.skipped), "bold yellow"),
            ("   images ", "dim"),
            (str(s.images), "bold"),
        )
        return Panel(
            Group(grid, Text(), counters),
            title=Text(self._view.title, style="bold"),
            title_align="left",
            border_style="bright_black",
            expand=False,
            padding=(0, 1),
        )


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
