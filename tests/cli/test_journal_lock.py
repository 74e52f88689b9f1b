"""The journal's lock on its folder: one run at a time, free again once that run is done."""

from __future__ import annotations

import pytest

from evolink import JournalError
from evolink.cli._run_folder import FolderJournal


def test_two_runs_cannot_share_a_folder(tmp_path):
    """While one run holds a folder's journal, a second is refused (it would create twice)."""
    first = FolderJournal.open(tmp_path)
    try:
        with pytest.raises(JournalError, match="another evolink run"):
            FolderJournal.open(tmp_path)
    finally:
        first.close()
    FolderJournal.open(tmp_path).close()  # free again once the first is done
