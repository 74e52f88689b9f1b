"""The `evolink` command line: batches from a file, live progress, downloads, resume.

Installed with the `cli` extra (`python3 -m pip install '.[cli]'` in a clone); `evolink
--help` lists the commands, and `evolink demo` shows them off against the built-in
simulator.
"""

from __future__ import annotations

# `_platform_commands` registers the platform's commands (models, estimate, files, task
# list) on `main` when imported.
from evolink.cli import _platform_commands  # noqa: F401
from evolink.cli._app import main

__all__ = ["main"]
