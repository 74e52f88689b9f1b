"""This directory's `soak` tests run only when asked for (`-m soak`, as `nox -s soak`
does): a bare `pytest tests/attack_unplaced` stays within about a minute."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="soak: run with -m soak")
    for item in items:
        if item.get_closest_marker("soak") is not None and "attack_unplaced" in str(item.path):
            item.add_marker(skip)
