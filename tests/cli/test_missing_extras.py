"""Without its extras, the command line says which to install, not a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evolink._command import main as script
from evolink.cli import main

#: Runs the console script's function in a fresh interpreter where `module` cannot be
#: imported (a `None` entry in `sys.modules` makes its import fail, as if not installed).
WITHOUT = "import sys; sys.modules[{module!r}] = None; from evolink._command import main; main()"


@pytest.mark.parametrize("module", ["click", "rich"])
def test_the_script_names_the_cli_extra_when_it_is_missing(module):
    done = subprocess.run(  # noqa: S603 - our own script, in a fresh interpreter
        [sys.executable, "-c", WITHOUT.format(module=module)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "the evolink command needs the `cli` extra" in done.stderr
    assert "pip install '.[cli]'" in done.stderr
    assert f"({module} is missing)" in done.stderr


def test_the_script_runs_the_command_line_when_the_extra_is_there(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["evolink", "--help"])
    with pytest.raises(SystemExit) as exited:
        script()
    assert exited.value.code == 0
    assert "simulator" in capsys.readouterr().out


def test_another_missing_module_is_not_taken_for_the_extra():
    done = subprocess.run(  # noqa: S603 - our own script, in a fresh interpreter
        [sys.executable, "-c", WITHOUT.format(module="evolink.cli._app")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "ModuleNotFoundError" in done.stderr


def test_the_simulator_command_without_uvicorn_announces_no_address(runner, monkeypatch):
    """Without the `server` extra, `evolink simulator` fails before printing where it
    serves: no address announced that would not answer."""

    def missing() -> None:
        raise RuntimeError("serving the simulator needs uvicorn, in the `server` extra")

    monkeypatch.setattr("evolink.testing._uvicorn.uvicorn_module", missing)
    result = runner.invoke(main, ["simulator", "--port", "8123"])
    assert result.exit_code == 2
    assert "needs uvicorn" in result.output
    assert "http://" not in result.output
