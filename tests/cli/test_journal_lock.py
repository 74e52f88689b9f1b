"""The journal's lock on its folder: one run at a time, free again once that run is done."""

from __future__ import annotations

import pytest

from evolink.cli._journal import Journal, JournalError


def test_two_runs_cannot_share_a_folder(tmp_path):
    """While one run holds a folder's journal, a second is refused (it would create twice)."""
    first = Journal.open(tmp_path)
    try:
        with pytest.raises(JournalError, match="another evolink run"):
            Journal.open(tmp_path)
    finally:
        first.close()
    Journal.open(tmp_path).close()  # free again once the first is done
