"""Shared fixtures: every async test runs on asyncio and on trio; a real PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator

import pytest

try:
    import coverage
except ImportError:  # pragma: no cover - the no-extras suite runs without it
    coverage = None  # type: ignore[assignment]


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


#: Suites that time the waiting engine on a virtual clock, thousands of reads a test: their
#: figures do not depend on the event loop, so the default suite runs them on asyncio and
#: `nox -s soak` on trio too. (Every other async test, the SDK's own included, runs on both
#: in the default suite: that is where a backend's difference would show.)
ASYNCIO_ONLY_BY_DEFAULT = ("attack_waiting", "attack14d")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("anyio_backend") != "trio":
            continue
        if item.path.parent.name in ASYNCIO_ONLY_BY_DEFAULT:
            item.add_marker(pytest.mark.soak)


#: Suites that measure the waiting engine's timing over thousands of simulated tasks a test:
#: line tracing makes them about 2.6x slower (a third of the default suite's time under
#: coverage) and the lines they run are the engine's, which its own tests cover. Their
#: calls run untraced; setup and teardown stay traced.
UNTRACED = (
    "attack14c",
    "attack14d",
    "attack14e",
    "attack14f",
    "attack14g",
    "attack14h",
    "attack_corroborate",
    "attack_fitted",
    "attack_hold",
    "attack_judge",
    "attack_loop_guard",
    "attack_outlived",
    "attack_pricing",
    "attack_unplaced",
    "attack_waiting",
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    current = coverage.Coverage.current() if coverage is not None else None
    if current is None or item.path.parent.name not in UNTRACED:
        return (yield)
    current.stop()
    try:
        return (yield)
    finally:
        current.start()


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
