"""This directory's soak tests run only with `-m soak` (the marker is the project's)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="soak: run with -m soak")
    here = str(config.rootpath / "tests" / "attack_pricing")
    for item in items:
        if "soak" in item.keywords and str(item.path).startswith(here):
            item.add_marker(skip)
