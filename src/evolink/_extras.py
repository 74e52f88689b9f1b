"""How to install an optional extra, for the errors that name one.

The package is not on a package index yet, so `pip install 'evolink[x]'` would fetch
whatever else carries the name there: the hint installs from a clone of the repository.
"""

from __future__ import annotations


def install_hint(extra: str) -> str:
    """The command that installs `extra`, for an error message."""
    return f"the `{extra}` extra: python3 -m pip install '.[{extra}]' in a clone of the SDK"
