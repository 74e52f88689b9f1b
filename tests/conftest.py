"""Shared fixtures: every async test runs on asyncio and on trio; a real PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for this test session, made and removed here.

    `nox -s tests` installs PostgreSQL on a bare CI machine; elsewhere, without it, the
    tests that need it skip (and fail under CI=true, where it must be there).
    """
    from _postgres import find_bindir, postgres_server  # noqa: PLC0415 - only when asked for

    if find_bindir() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not installed: `nox -s tests` installs it on CI")
        pytest.skip("PostgreSQL is not installed")
    with postgres_server() as url:
        yield url
