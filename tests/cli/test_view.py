"""Progress views and the final summary, rendered to a string."""

from __future__ import annotations

import io
import itertools
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from rich.console import Console

from evolink.cli._manifest import Result
from evolink.cli._run import RunSummary
from evolink.cli._summary import dumps, print_summary
from evolink.cli._view import (
    PANEL_WIDTH,
    LiveView,
    PlainView,
    Snapshot,
    amount,
    duration,
    make_view,
)

SNAPSHOT = Snapshot(
    total=50,
    completed=19,
    failed=1,
    in_flight=16,
    waiting=14,
    images=23,
    reserved=Decimal("105.0"),
    charged=Decimal("57.50"),
    released=Decimal("2.5"),
    max_credits=Decimal(200),
    elapsed=65.2,
    eta=12,
)


def _terminal(width: int = 120) -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=width, color_system=None)


def test_live_view_on_a_terminal():
    """On a terminal the view is a live panel with both bars, the counters and the lines."""
    console = _terminal()
    view = make_view(console, plain=False)
    assert isinstance(view, LiveView)
    view.start("evolink demo")
    view.update(SNAPSHOT)
    view.event("[1/50] completed 0001-fox-1.png", ok=True)
    view.event("[2/50] failed    owl", ok=False)
    view.stop()
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "evolink demo" in text
    assert "20/50  40%" in text
    assert "elapsed 1m 05s   eta 12s" in text
    assert "102.5 of 200 budget" in text  # charged or still held, of the budget
    assert "57.5 charged · 105 reserved" in text
    for counter in ("✓ done 19", "✗ failed 1", "⟳ in flight 16", "◌ waiting 14", "▣ images 23"):
        assert counter in text
    assert "✓ [1/50] completed 0001-fox-1.png" in text
    assert "✗ [2/50] failed    owl" in text


def test_live_view_counts_files_once_a_video_is_saved():
    """A run saving videos or sounds counts `files`, not `images`."""
    console = _terminal()
    view = make_view(console, plain=False)
    view.start("evolink batch")
    view.update(attrs.evolve(SNAPSHOT, files_noun="files"))
    view.stop()
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "▣ files 23" in text
    assert "images" not in text


def test_live_view_without_budget():
    """Without --max-credits the credits row has no budget bar."""
    console = _terminal()
    view = LiveView(console)
    view.start("t")
    view.update(Snapshot(total=2, reserved=Decimal(5), charged=Decimal(5)))
    view.stop()
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "5 charged · 5 reserved" in text
    assert "budget" not in text


def test_plain_view_off_a_terminal():
    """Off a terminal (or with --plain): plain lines, a status line at most every few s."""
    console = Console(file=io.StringIO(), width=80)
    view = make_view(console, plain=False)
    assert isinstance(view, PlainView)
    assert isinstance(make_view(_terminal(), plain=True), PlainView)
    view.start("title")
    view.update(SNAPSHOT)
    view.update(SNAPSHOT)  # too soon for a second status line
    view.event("[1/50] completed x", ok=True)
    view.stop()
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines[0] == "title"
    assert lines[1].startswith("progress: 20/50 done (19 completed, 1 failed, 0 skipped)")
    assert "credits 105 reserved · 57.5 charged / 200 budget" in lines[1]
    assert lines[2] == "[1/50] completed x"
    assert lines[3] == lines[1]
    assert len(lines) == 4


@pytest.mark.parametrize(
    ("value", "text"),
    [("150.0", "150"), ("2.50", "2.5"), ("0", "0"), ("1E+2", "100"), ("0.125", "0.125")],
)
def test_amount(value, text):
    """Credits print without trailing zeros or exponents."""
    assert text == amount(Decimal(value))


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (0.4, "0s"), (59.6, "1m 00s"), (125, "2m 05s"), (-3, "0s")]
)
def test_duration(seconds, text):
    """Durations read as seconds, or minutes and seconds."""
    assert text == duration(seconds)


def _summary(count: int, *, interrupted: bool) -> RunSummary:
    results = tuple(
        Result(
            index=i,
            line=i + 1,
            prompt=f"p{i}",
            status="failed",
            error_code="service_error",
            error_message="multi\nline   message",
            charged=Decimal(0),
        )
        for i in range(count)
    )
    return RunSummary(
        results=results,
        out=Path("out"),
        manifest=None,
        gallery=None,
        reserved=Decimal(0),
        charged=Decimal(0),
        elapsed=1.0,
        interrupted=interrupted,
        resumed=2,
        interrupted_hint="run it again with --resume",
    )


def test_summary_lists_a_few_problems_and_the_resume_hint():
    """The summary shows ten problems on one line each, counts the rest, and hints --resume."""
    console = Console(file=io.StringIO(), width=200)
    print_summary(console, _summary(12, interrupted=True))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "#1 (line 1) failed: service_error: multi line message" in text
    assert "#11 (line 11)" not in text
    assert "… and 2 more in the manifest" in text
    assert "resumed as done" in text
    assert "Interrupted: run it again with --resume." in text


def test_dumps_refuses_unknown_types():
    """The JSON writer turns decimals into numbers and refuses what it does not know."""
    assert dumps({"a": Decimal("2.5")}) == '{\n  "a": 2.5\n}'
    with pytest.raises(TypeError):
        dumps({"a": object()})


BIG = Snapshot(
    total=100_000,
    completed=99_999,
    failed=12_345,
    interrupted=12_345,
    skipped=12_345,
    in_flight=1_000,
    downloading=12_345,
    waiting=12_345,
    images=99_999,
    reserved=Decimal("12345.5"),
    charged=Decimal("12345.5"),
    released=Decimal("2.5"),
    max_credits=Decimal(100_000),
    elapsed=3725,
    eta=12_345,
)
LABELS = [
    "inputs",
    "credits",
    "time",
    "elapsed 62m 05s",
    "eta 205m 45s",
    "12345.5 charged · 12345.5 reserved",
    "of 100000 budget",
    "✓ done 99999",
    "✗ failed 12345",
    "⊘ skipped 12345",
    "⟳ in flight 1000",
    "↓ downloading 12345",
    "◌ waiting 12345",
    "■ interrupted 12345",
    "▣ images 99999",
]


@pytest.mark.parametrize("width", [80, 120], ids=lambda w: f"{w}-columns")
@pytest.mark.parametrize("snapshot", [SNAPSHOT, BIG], ids=["typical", "five-digit-counts"])
def test_live_panel_fits_80_columns(width, snapshot):
    """At 80 columns (and wider) the panel keeps to 80, cuts no label and leaves no icon
    alone at a line's end; a long title is cut, not the panel widened."""
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    view = LiveView(console)
    view.start("evolink batch: 100000 prompts from " + "a-long-file-name-" * 5 + ".csv")
    view.update(snapshot)
    view.stop()
    text = console.export_text()
    lines = [line for line in text.splitlines() if line.startswith(("╭", "│", "╰"))]
    assert lines
    assert {PANEL_WIDTH} == {len(line) for line in lines}
    labels = LABELS if snapshot is BIG else ["✓ done 19", "✗ failed 1", "■ interrupted 0"]
    for label in labels:
        assert label in text, label
    body = [line.strip("│ ") for line in lines[1:-1]]
    assert not any(line.endswith(("✓", "✗", "⊘", "⟳", "↓", "◌", "■", "▣")) for line in body)
    assert "…" not in "".join(body)  # nothing in the panel's body was cut


def test_plain_status_counts_interrupted_inputs():
    """Inputs stopped by Ctrl-C are counted as interrupted, not failed."""
    stream = io.StringIO()
    view = PlainView(stream)
    view.update(Snapshot(total=3, completed=1, interrupted=2))
    assert "(1 completed, 0 failed, 0 skipped, 2 interrupted)" in stream.getvalue()


def test_the_clock_ticks_without_events(tmp_path, runner, monkeypatch):
    """While a task runs and nothing happens, the view still gets a fresh snapshot every
    tick, so the elapsed time moves (it used to stand at 0 s until the first event)."""
    from _cli_sim import quick, use  # noqa: PLC0415

    from evolink.cli import main  # noqa: PLC0415
    from evolink.testing import Fixed  # noqa: PLC0415

    seen = []

    class Recorder:
        def start(self, title):
            pass

        def update(self, snapshot):
            seen.append(snapshot)

        def event(self, text, *, ok):
            pass

        def stop(self):
            pass

    monkeypatch.setattr("evolink.cli._app.make_view", lambda console, plain: Recorder())
    monkeypatch.setattr("evolink.cli._run.TICK_EVERY", 0.05)
    use(monkeypatch, quick(durations=Fixed(1.0)))
    result = runner.invoke(main, ["generate", "a fox", "--out", str(tmp_path), "--simulate"])
    assert 0 == result.exit_code, result.output
    quiet = [s.elapsed for s in seen if s.in_flight and s.elapsed < 0.9]
    assert quiet == sorted(quiet)
    gaps = [later - earlier for earlier, later in itertools.pairwise(quiet)]
    assert max(gaps) < 0.25, quiet  # without ticks, nothing between the create and a read
