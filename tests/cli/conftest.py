"""CLI test fixtures: `--simulate` runs on a simulator the test holds (see `_cli_sim`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from _cli_sim import quick, use

from evolink.testing import Simulator


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """`--simulate` talks to a fresh simulator whose image tasks take 50 ms (real time)."""
    return use(monkeypatch, quick())


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
