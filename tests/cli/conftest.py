"""CLI test fixtures: the fake API stands in for the simulator where exact control helps."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from _fake_api import FakeAPI


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAPI:
    """`--simulate` talks to a fresh fake API whose tasks take 50 ms."""
    api = FakeAPI()
    monkeypatch.setattr("evolink.cli._backend.make_simulator", lambda **_: api)
    return api


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
