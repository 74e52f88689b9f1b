"""Every offline-runnable Python sample of README.md and docs/, run as a reader would.

Samples that read `EVOLINK_API_KEY` / `EVOLINK_BASE_URL` run against the simulator served
on loopback, as README's "Try it without a key" says; each document's blocks share one
namespace and one event loop, top-level `await` allowed (as `python -m asyncio`).
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from _newcomer_docs import ROOT, blocks, run_blocks

from evolink.testing import Simulator

# Every doc with Python samples, but the two that need PostgreSQL.
DOCS = sorted(
    str(p.relative_to(ROOT))
    for p in [ROOT / "README.md", *ROOT.glob("docs/**/*.md")]
    if "```python" in p.read_text() and p.name not in {"app-replicas.md", "many-machines.md"}
)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Simulator]:
    sim = Simulator(durations=(0.02, 0.08), seed=1)
    with sim.serve_in_thread() as url:
        monkeypatch.setenv("EVOLINK_BASE_URL", url)
        monkeypatch.setenv("EVOLINK_API_KEY", "sk-evo-docs-reader-0000")
        monkeypatch.chdir(tmp_path)
        yield sim


def _run(doc: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        # Samples run as a user's script would: warnings shown, not errors.
        warnings.simplefilter("default")
        run_blocks(blocks(doc), {"__name__": "__main__"})
    return out.getvalue()


def test_the_docs_have_samples() -> None:
    assert "README.md" in DOCS
    assert "docs/how-to/sync.md" in DOCS
    assert len(DOCS) >= 20


@pytest.mark.parametrize("doc", DOCS)
def test_doc_samples_run(doc: str, served: Simulator) -> None:
    _run(doc)


def test_readme_does_what_it_says(served: Simulator, tmp_path: Path) -> None:
    out = _run("README.md")
    assert "BatchReport(outcomes=20, completed=20" in out
    assert len(list((tmp_path / "out").glob("task-unified-*-1.png"))) >= 1
    assert len(list((tmp_path / "out").glob("task-unified-*-2.png"))) >= 1


def test_tutorial_batch_holds_its_budget(served: Simulator) -> None:
    out = _run("docs/tutorial.md")
    assert "50 of 50 completed" in out
    charged = float(re.search(r"charged ([\d.]+) credits", out).group(1))  # type: ignore[union-attr]
    assert charged <= 200


def test_budget_doc_skips_for_budget(served: Simulator) -> None:
    out = _run("docs/how-to/budget.md")
    completed, skipped = map(int, re.search(r"(\d+) completed; (\d+) skipped", out).groups())  # type: ignore[union-attr]
    assert completed + skipped == 24
    assert completed == 10
    assert "10/10 done" in out


def test_simulator_doc_prints_what_its_comments_say(served: Simulator) -> None:
    out = _run("docs/simulator.md")
    assert "completed 2 5.0" in out
    assert "video.generation.task 12.0 /0.mp4" in out
    assert "400 model" in out
    assert "7.5 [Decimal('5.0'), Decimal('7.5'), Decimal('7.5'), Decimal('7.5')]" in out
    assert "50 180 93" in out  # the durations/estimates sample: its stated output


def test_errors_doc_hierarchy(served: Simulator) -> None:
    out = _run("docs/how-to/testing.md")
    assert "429 rate_limit_exceeded 7.0" in out
    assert "1 create," in out
