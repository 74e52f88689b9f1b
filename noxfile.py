"""Every command the project runs lives here: `nox -l` lists them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|venv"
nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
# The Pythons the classifiers promise: one list, in pyproject.toml.
ALL_PYTHONS = nox.project.python_versions(PYPROJECT)
# CI machines have one Python: use the interpreter nox runs on.
CURRENT = None


def _install(session: nox.Session, *groups: str, extras: str = "") -> None:
    session.install("--quiet", "--upgrade", "pip")
    deps = [d for g in groups for d in nox.project.dependency_groups(PYPROJECT, g)]
    session.install("--quiet", f".{extras}", *deps)


# Test tools not yet in pyproject's `tests` group (until it lists them): the gallery's browser test
# drives Debian's Chromium with playwright (never playwright's own browser download, which
# this network refuses); the packaging test builds the sdist and wheel without isolation.
def _apt_install(session: nox.Session, package: str, *, why: str) -> None:
    """Install a distribution package where apt can: CI starts on a bare machine as root.

    A developer's machine without root or apt is left alone (the tests that need it skip
    there, and fail under CI=true).
    """
    is_root = getattr(os, "geteuid", lambda: -1)() == 0
    if not (is_root and shutil.which("apt-get")):
        session.log(f"{package} is missing and apt-get is not usable: {why} skip locally")
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    # A fresh machine's package lists may be empty or stale.
    session.run("apt-get", "-qq", "update", external=True, env=env, silent=True)
    session.run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        package,
        external=True,
        env=env,
        silent=True,
    )


def _ensure_chromium(session: nox.Session) -> None:
    """Debian's Chromium for the gallery's browser test."""
    if shutil.which("chromium") is None:
        _apt_install(session, "chromium", why="browser tests")


def _ensure_postgresql(session: nox.Session) -> None:
    """The distribution's PostgreSQL: the journal, worker and replica tests start their own
    throwaway server with it (tests/_postgres.py)."""
    if not (shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))):
        _apt_install(session, "postgresql", why="its tests")


def _run_tests(session: nox.Session) -> None:
    # The docs group too: tests/packaging builds the site strictly and follows its links.
    _install(session, "tests", "docs")
    _ensure_chromium(session)
    _ensure_postgresql(session)
    session.run("coverage", "erase")
    session.run(
        "coverage",
        "run",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        # One pytest worker per core (coverage follows them: `patch = ["subprocess"]`);
        # work stealing, since a few tests run real processes for a minute.
        "--numprocesses",
        os.environ.get("EVOLINK_TEST_WORKERS", "auto"),
        "--dist",
        "worksteal",
        # Long: the many-workers attack runs real workers for minutes, and tests marked
        # `soak` run at full size (`nox -s soak`).
        "--ignore=tests/attack_distributed",
        "-m",
        "not soak",
        *session.posargs,
    )
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report")


@nox.session(python=CURRENT)
def tests(session: nox.Session) -> None:
    """The test suite with every extra and branch coverage (enforced), then again with none."""
    _run_tests(session)
    session.notify("tests_no_extras")


@nox.session(python=CURRENT)
def tests_no_extras(session: nox.Session) -> None:
    """The SDK's core tests (tests/core, tests/batch) with the package installed without any extra.

    Proves the core imports and works with its five dependencies alone; tests of the CLI,
    the FastAPI integration and the aiohttp transport skip here (their extras are absent).
    """
    session.install("--quiet", "--upgrade", "pip")
    session.install("--quiet", ".", *nox.project.dependency_groups(PYPROJECT, "tests-core"))
    for extra in (
        "click",
        "rich",
        "fastapi",
        "uvicorn",
        "httpx_aiohttp",
        "psycopg",
        "procrastinate",
    ):
        # Nothing may bring an extra in by the back door.
        session.run(
            "python", "-c", f"import importlib.util as u; assert not u.find_spec({extra!r})"
        )
    session.run(
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/core",
        "tests/batch",
        *session.posargs,
    )


@nox.session(python=ALL_PYTHONS)
def tests_all(session: nox.Session) -> None:
    """The test suite on every Python 3.10-3.13 this machine has."""
    if shutil.which(f"python{session.python}") is None:
        session.skip(f"python{session.python} not found")
    _run_tests(session)


@nox.session(python=CURRENT)
def lint(session: nox.Session) -> None:
    """Ruff (lint and format), and the layers with no import cycle (import-linter)."""
    _install(session, "lint")
    paths = ["src", "tests", "benchmarks", "examples", "tools", "noxfile.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("lint-imports")


@nox.session(python=CURRENT)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/ and on the typing tests (which are never run)."""
    _install(session, "typing")
    session.run("mypy")


@nox.session(python=CURRENT)
def soak(session: nox.Session) -> None:
    """The long suites: reliability at full size (2,000 prompts under every fault, crash
    trials), the attack on many workers and app replicas, four workers over 2,000 inputs
    (real processes, PostgreSQL), and every test marked `soak`."""
    _install(session, "tests")
    _ensure_postgresql(session)
    session.run(
        "pytest",
        "tests/reliability",
        "tests/attack_distributed",
        "tests/distributed/test_many_workers.py",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"EVOLINK_SOAK_PROMPTS": "2000", "EVOLINK_CRASH_TRIALS": "20"},
    )
    # The tests the default suite leaves out for their length, wherever they are.
    session.run("pytest", "tests", "-m", "soak", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=CURRENT)
def docs(session: nox.Session) -> None:
    """Build the docs site strictly (warnings are errors) into site/."""
    _install(session, "docs")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session(python=CURRENT)
def docs_serve(session: nox.Session) -> None:
    """Serve the docs at http://127.0.0.1:8000, rebuilt as files change (not run by default)."""
    _install(session, "docs")
    session.run("mkdocs", "serve", "--strict", *session.posargs)


@nox.session(python=CURRENT)
def bench(session: nox.Session) -> None:
    """Benchmarks against the simulator served in its own process (not run by default).

    `-- distributed` runs workers over a throwaway PostgreSQL: the CLI and the `postgres`
    extra in the session, the distribution's server on the machine.
    """
    if session.posargs[:1] == ["distributed"]:
        _install(session, "bench", extras="[cli,postgres]")
        _ensure_postgresql(session)
    else:
        _install(session, "bench")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=CURRENT)
def catalog(session: nox.Session) -> None:
    """Regenerate the model catalog and the simulator's schemas from specs/ (`-- --check`)."""
    session.run("python", "tools/generate_catalog.py", *session.posargs)
    session.run(
        "python", "tools/extract_simulator_schemas.py", *session.posargs, env={"PYTHONPATH": "src"}
    )


@nox.session(python=CURRENT)
def demo(session: nox.Session) -> None:
    """The README's first command: a batch of 50 prompts against the in-process simulator."""
    session.install("--quiet", ".[cli]")
    session.run("evolink", "demo", *session.posargs, env={"TERM": os.environ.get("TERM", "xterm")})
