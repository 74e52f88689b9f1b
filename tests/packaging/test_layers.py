"""The layers in pyproject's [tool.importlinter] hold, and breaking them fails the lint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on a copy of the package under `tree` (with the project's config)."""
    script = Path(sys.executable).with_name("lint-imports")
    if not script.exists():  # pragma: no cover - the tests group installs it
        pytest.skip("import-linter is not installed")
    return subprocess.run(  # noqa: S603 - our own interpreter's script and arguments
        [str(script), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src" / "evolink", tmp_path / "src" / "evolink")
    return tmp_path


def test_the_package_keeps_its_layers(package_copy: Path) -> None:
    result = _lint_imports(package_copy)
    assert 0 == result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # A value reaching up to the client: a layer violation (and a cycle).
        ("_models.py", "import evolink._client\n", "Layers"),
        # The transport reaching up to the batch, lazily: still a layer violation.
        ("_transport.py", "def _late():\n    import evolink._batch\n", "Layers"),
        # A new module nobody listed, in a cycle with one that is.
        ("_new.py", "import evolink._errors\n", "No import cycles"),
    ],
    ids=["upward-import", "lazy-upward-import", "unlisted-cycle"],
)
def test_breaking_the_layers_fails_the_lint(
    package_copy: Path, module: str, line: str, broken: str
) -> None:
    package = package_copy / "src" / "evolink"
    if module == "_new.py":
        (package / "_errors.py").write_text(
            (package / "_errors.py").read_text() + "\nimport evolink._new\n"
        )
    target = package / module
    target.write_text((target.read_text() if target.exists() else "") + "\n" + line)
    result = _lint_imports(package_copy)
    assert 0 != result.returncode
    _, _, broken_section = result.stdout.partition("Broken contracts")
    assert broken in broken_section
