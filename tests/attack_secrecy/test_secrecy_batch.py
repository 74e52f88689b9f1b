"""A batch's outcomes, report, progress and journal when the server quotes the key."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _secrecy_hostile import SK_KEY, Quoting, assert_clean, partly_escaped, verbatim

from evolink import AsyncEvolink
from evolink.testing import Faults, Simulator, VirtualClock


async def _batch(
    key: str, quote: Callable[[str], str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> str:
    caplog.set_level(logging.DEBUG)
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=5, api_keys={key}, faults=Faults(task_failure=0.5))
    progress: list[str] = []

    def on_progress(snapshot: Any) -> None:
        progress.append(repr(snapshot))

    journal = tmp_path / "journal.sqlite3"
    async with AsyncEvolink(
        api_key=key, transport=Quoting(sim.transport(), key, quote), clock=clock
    ) as client:
        async with clock.running():
            report = await client.images.generate_many(
                [f"a lighthouse {i}" for i in range(6)],
                journal=journal,
                run="r1",
                on_progress=on_progress,
            )
    assert len(report.outcomes) == 6
    assert {o.kind.value for o in report.outcomes} >= {"completed", "failed"}
    texts = [repr(report), report.to_json(), *progress]
    texts += [repr(o) + str(o.error_message) for o in report.outcomes]
    texts += [r.getMessage() for r in caplog.records]
    for path in tmp_path.rglob("*"):  # noqa: ASYNC240 - the run has ended
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(texts)


@pytest.mark.anyio
async def test_batch_with_key_quoted_verbatim(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert_clean(await _batch(SK_KEY, verbatim, tmp_path, caplog), SK_KEY)


@pytest.mark.anyio
async def test_batch_with_key_quoted_json_escaped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert_clean(await _batch(SK_KEY, partly_escaped, tmp_path, caplog), SK_KEY)
