"""Soak tests of this directory run only with `-m soak` (or `-m "soak or not soak"`)."""

from __future__ import annotations

import pytest

HERE = __file__.rsplit("/", 1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="soak: run with -m soak")
    for item in items:
        if str(item.fspath).startswith(HERE) and "soak" in item.keywords:
            item.add_marker(skip)
