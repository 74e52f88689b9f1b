from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Running every docs block bare is tests/docs/test_examples.py's job (with the pages'
    hidden asserts): here it runs in `nox -s soak`; the tests that check what a page's
    output says stay in the default suite."""
    for item in items:
        if item.path.parent.name == "attack_newcomer" and item.name.startswith(
            "test_doc_samples_run["
        ):
            item.add_marker(pytest.mark.soak)
