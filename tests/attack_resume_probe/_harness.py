"""Running batches against the fake server, and the invariants every scenario checks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import anyio

from evolink import AsyncEvolink, BatchReport, OutcomeKind
from evolink.testing import VirtualClock

from ._server import API_KEY, BASE_URL, PRICE, FakeServer


class Env:
    def __init__(self, tmp_path: Path, **server: Any) -> None:
        self.clock = VirtualClock()
        self.server = FakeServer(self.clock, **server)
        self.journal = str(tmp_path / "journal.sqlite3")
        self.reports: list[BatchReport] = []

    def client(self, **kw: Any) -> AsyncEvolink:
        return AsyncEvolink(
            api_key=API_KEY, base_url=BASE_URL, transport=self.server, clock=self.clock, **kw
        )

    async def run(
        self, prompts: list[str], *, max_retries: int | None = None, run: str = "probe", **opts: Any
    ) -> BatchReport:
        """One batch on the journal; its report (kept in `self.reports`)."""
        opts.setdefault("max_in_flight", 8)
        opts.setdefault("price_hints", {"gpt-image-2": PRICE})
        async with self.client(max_retries=max_retries) as client, self.clock.running():
            report = await client.images.generate_many(
                prompts, journal=self.journal, run=run, **opts
            )
        self.reports.append(report)
        return report

    async def run_cut(
        self, prompts: list[str], *, hang_count: int, run: str = "probe", **opts: Any
    ) -> BatchReport:
        """One batch cut short (a cancelled scope) once `hang_count` creates hang on the
        server (made their task, never answered); the report from the handle."""
        opts.setdefault("max_in_flight", 8)
        opts.setdefault("price_hints", {"gpt-image-2": PRICE})
        srv = self.server
        srv.hanging = 0
        async with self.client() as client, self.clock.running():
            batch_run = client.images.generate_many(prompts, journal=self.journal, run=run, **opts)
            with anyio.CancelScope() as scope:

                def on_hang() -> None:  # the cut comes as the last of them arrives
                    if srv.hanging >= hang_count:
                        scope.cancel()

                srv.on_hang = on_hang
                with anyio.fail_after(20):  # real seconds: a test that waits in vain
                    await batch_run
                srv.on_hang = None
                scope.cancel()
            srv.on_hang = None
        report = batch_run.report()
        self.reports.append(report)
        return report


def check(env: Env, report: BatchReport, prompts: list[str], *, cut: bool = False) -> None:
    """The promises every report must keep, whatever the scenario. A report of a batch
    cut short holds the inputs it took in (a prefix of the list), one outcome each."""
    srv = env.server
    count = len(report.outcomes) if cut else len(prompts)
    assert [o.index for o in report.outcomes] == list(range(count)), "one outcome per input"
    assert count <= len(prompts)
    ids = [o.task.id for o in report.outcomes if o.task is not None]
    assert len(ids) == len(set(ids)), f"two inputs hold one task: {Counter(ids)}"
    for o in report.outcomes:
        if o.task is not None and o.task.id in srv.tasks:
            owner = srv.tasks[o.task.id].prompt
            assert owner == prompts[o.index], (
                f"input {o.index} ({prompts[o.index]!r}) was given {o.task.id},"
                f" the task of {owner!r}"
            )
        for text in (o.error_message or "", repr(o), str(o)):
            assert API_KEY not in text
            assert API_KEY[7:] not in text


def tasks_per_prompt(env: Env, prompts: list[str]) -> dict[str, int]:
    return {p: len(env.server.tasks_of(p)) for p in prompts}


def check_duplicates(env: Env, prompts: list[str]) -> None:
    """Each prompt has at most one task, plus one per outcome (of any run) that said
    `possible_duplicate`, and never more than two."""
    flags: Counter[int] = Counter()
    for report in env.reports:
        for o in report.outcomes:
            flags[o.index] += o.possible_duplicate
    for i, p in enumerate(prompts):
        made = len(env.server.tasks_of(p))
        assert made <= 1 + flags[i], (
            f"input {i} ({p!r}) has {made} tasks on the server, flagged possible_duplicate "
            f"in {flags[i]} outcome(s)"
        )


def kinds(report: BatchReport) -> list[tuple[str, str | None, bool]]:
    return [(o.kind.value, o.error_code, o.possible_duplicate) for o in report.outcomes]


COMPLETED = OutcomeKind.COMPLETED
UNCERTAIN = OutcomeKind.UNCERTAIN
