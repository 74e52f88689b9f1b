"""The `evolink` console script: the command line, or how to install it.

The script is installed with the package, but the command line needs the `cli` extra
(click, rich): without it, say so instead of a `ModuleNotFoundError` traceback.
"""

from __future__ import annotations

import sys

from evolink._extras import install_hint

#: The `cli` extra's own modules: a missing one means the extra is not installed (any
#: other missing module is a real error, and raised as it is).
CLI_MODULES = frozenset({"click", "rich"})


def main() -> None:
    """Run the `evolink` command line, or exit 2 naming the extra it needs."""
    try:
        from evolink.cli import main as command  # noqa: PLC0415 - needs the `cli` extra
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in CLI_MODULES:
            raise
        sys.stderr.write(
            f"error: the evolink command needs {install_hint('cli')} ({missing} is missing)\n"
        )
        sys.exit(2)
    command()
