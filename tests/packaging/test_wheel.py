"""What users install works: the sdist and the wheel hold every file, and the wheel runs.

The sdist is built first and the wheel from it (as `python -m build` does), so a file left
out of either fails here. The wheel is then installed with the `cli` extra into a fresh
virtual environment, outside the source tree, and imported and run there.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "evolink"
SOURCES = sorted(p.relative_to(PACKAGE.parent).as_posix() for p in PACKAGE.rglob("*.py"))


def _run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: no PYTHONPATH may make the source tree importable by accident.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    return subprocess.run(  # noqa: S603 - our own interpreters and arguments
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert 0 == result.returncode, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel built from it (`build`, without isolation: hatchling is here)."""
    missing = [m for m in ("build", "hatchling") if importlib.util.find_spec(m) is None]
    if missing:
        # The tests nox session installs both; in CI their absence is a failure.
        if os.environ.get("CI"):
            pytest.fail(f"{missing} not installed (the tests nox session installs them)")
        pytest.skip(f"{missing} not installed")
    out = tmp_path_factory.mktemp("dist")
    built = _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT, cwd=out)
    _ok(built)
    return out


def _one(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_sdist_holds_sources_and_py_typed(dist):
    """The sdist carries every module, the `py.typed` marker and the project metadata."""
    sdist = _one(dist, "evolink-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "src/evolink/py.typed" in names
    assert {"pyproject.toml", "README.md"} <= names
    assert [] == [s for s in SOURCES if f"src/{s}" not in names]


def test_wheel_holds_exactly_the_modules(dist):
    """The wheel's modules are exactly those under src/evolink, with the `py.typed` marker."""
    wheel = _one(dist, "evolink-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert SOURCES == sorted(n for n in names if n.endswith(".py"))
    assert "evolink/py.typed" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "evolink = evolink._command:main" in archive.read(entry_points).decode()


def test_wheel_installs_and_runs_in_a_fresh_venv(dist, tmp_path):
    """Installed from the wheel alone, `evolink` imports and `evolink --help` runs."""
    wheel = _one(dist, "evolink-*-py3-none-any.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    # The pip cache is shared with the machine's: the dependencies download once.
    install = ("-m", "pip", "install", "--quiet", "--disable-pip-version-check")
    _ok(_run(python, *install, f"{wheel}[cli]", cwd=tmp_path))

    code = "import evolink, evolink.cli, evolink.testing; print(evolink.__file__)"
    where = Path(_ok(_run(python, "-c", code, cwd=tmp_path)).strip())
    assert env_dir in where.parents, "imported from outside the fresh environment"
    assert "Usage: evolink" in _ok(_run(bin_dir / "evolink", "--help", cwd=tmp_path))
