"""A run folder's journal written from a synchronous test, as a killed run leaves it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from evolink import EntryStatus, InputRecord, OutcomeRecord
from evolink._journal import DEFAULT_RUN
from evolink.cli._run_folder import FolderJournal


def _input(index: int, body: Mapping[str, Any]) -> InputRecord:
    return InputRecord(run=DEFAULT_RUN, index=index, body=body)


class SyncJournal:
    """The CLI's journal in `out` (the core store, run `default`), written blocking."""

    def __init__(self, out: Path) -> None:
        self._journal = FolderJournal.open(out)
        self._store = self._journal.store

    def bind(self, fingerprint: str) -> None:
        anyio.run(self._store.bind_run, DEFAULT_RUN, fingerprint)

    def record_create(self, index: int, body: Mapping[str, Any], key: str) -> None:
        anyio.run(self._store.record_create, _input(index, body), key)

    def record_created(self, index: int, body: Mapping[str, Any], task_id: str) -> None:
        anyio.run(self._store.record_task, _input(index, body), task_id)

    def record_outcome(
        self, index: int, body: Mapping[str, Any], *, status: str, **fields: Any
    ) -> None:
        outcome = OutcomeRecord(status=EntryStatus(status), **fields)
        anyio.run(self._store.record_outcome, _input(index, body), outcome)

    def close(self) -> None:
        self._journal.close()
