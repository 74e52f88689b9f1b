"""The output folder of a run: its journal file, and the lock that keeps one run in it.

The journal itself is the core's (`evolink._journal_sqlite.SQLiteJournal`, the run named
`DEFAULT_RUN`); this module only says where it lives and holds the folder while a run
writes it: two runs on one journal would each create the same inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from evolink._errors import JournalError
from evolink._journal_sqlite import SQLiteJournal

JOURNAL_NAME = "journal.sqlite3"
LOCK_NAME = ".evolink.lock"


def journal_exists(folder: Path) -> bool:
    """Whether `folder` holds a journal."""
    return (folder / JOURNAL_NAME).exists()


class FolderJournal:
    """The journal of `folder`, held alone; open with `FolderJournal.open(folder)`."""

    def __init__(self, store: SQLiteJournal, lock: IO[bytes] | None) -> None:
        self.store = store
        self._lock = lock

    @classmethod
    def open(cls, folder: Path) -> FolderJournal:
        """Lock `folder`, then open (or create) its journal.

        Raises:
            JournalError: another run holds the folder, or the file is not a journal.
        """
        lock = lock_folder(folder)
        try:
            store = SQLiteJournal.open(folder / JOURNAL_NAME)
        except BaseException:
            unlock_folder(lock)
            raise
        return cls(store, lock)

    def close(self) -> None:
        """Close the journal (every write is already committed) and free the folder."""
        self.store.close()
        unlock_folder(self._lock)
        self._lock = None


def lock_folder(folder: Path) -> IO[bytes] | None:
    """Hold `folder` for one run (an advisory lock, freed by `unlock_folder` or at exit).

    Raises:
        JournalError: another run holds it.
    """
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        return None
    handle = (folder / LOCK_NAME).open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise JournalError(
            f"another evolink run is using {folder}: wait for it, or stop it first"
        ) from None
    return handle


def unlock_folder(handle: IO[bytes] | None) -> None:
    """Free a folder `lock_folder` held."""
    if handle is not None:
        handle.close()  # closing the file releases its lock
