"""Helpers for the attacks on issue 17 (PostgreSQL journal, workers, replicas)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


@pytest.fixture
def anyio_backend() -> str:
    # PostgreSQL stores run on asyncio only (documented).
    return "asyncio"


@pytest.fixture
def db(postgres_url: str) -> str:
    from _postgres import fresh_database  # noqa: PLC0415

    return fresh_database(postgres_url)


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src")
    env.pop("EVOLINK_JOURNAL", None)
    env.update(extra)
    return env
