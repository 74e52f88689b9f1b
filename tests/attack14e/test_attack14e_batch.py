"""Batches and waits against our own fake server (httpx.MockTransport, virtual time),
whose progress curves the engine was not tuned for."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from typing import Any

import pytest
from _server14e import FakeServer, ProgressFn, loop_wall

from evolink import OutcomeKind
from evolink.testing import VirtualClock


@pytest.fixture
def anyio_backend() -> str:
    # Virtual time: the figures are the same on either backend; one keeps the folder fast.
    return "asyncio"


def _durations(n: int, seed: int, low: float = 2.0, high: float = 6.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(low, high) for _ in range(n)]


def _power(exponent: float) -> ProgressFn:
    return lambda _i, f, _a: min(99, math.floor(100 * f**exponent))


def _s_curve(_i: int, f: float, _a: float) -> int:
    lo, hi = 1 / (1 + math.exp(5)), 1 / (1 + math.exp(-5))
    s = 1 / (1 + math.exp(-10 * (f - 0.5)))
    return min(99, math.floor(100 * (s - lo) / (hi - lo)))


CURVES: dict[str, ProgressFn] = {
    "linear": _power(1.0),
    "cubic": _power(3.0),
    "cube_root": _power(1 / 3),
    "s_curve": _s_curve,
    "stuck_at_99": lambda _i, f, _a: min(99, math.floor(100 * f / 0.3)),
    "mixture_linear_cubic": lambda i, f, _a: min(99, math.floor(100 * f ** (3 if i % 2 else 1))),
    "backwards": lambda _i, f, a: (
        min(99, math.floor(100 * f)) if int(a * 7) % 3 else max(0, math.floor(100 * f) - 30)
    ),
}

TASKS, IN_FLIGHT = 300, 30
_RUNS: dict[tuple[str, bool], dict[str, Any]] = {}


async def _batch(
    server: FakeServer, client: Any, clock: VirtualClock, n: int, *, batch_reads: bool
) -> dict[str, Any]:
    first = server.creates
    gets, requests = server.gets, server.batch_requests
    start = clock.monotonic()
    report = await client.images.generate_many(
        [f"prompt {i}" for i in range(n)], max_in_flight=IN_FLIGHT, batch_reads=batch_reads
    )
    wall = clock.monotonic() - start
    tasks = server.order[first:]
    return {
        "wall": wall,
        "report": report,
        "tasks": tasks,
        "loop": loop_wall([t.duration for t in tasks], IN_FLIGHT),
        "reads": sum(t.reads for t in tasks) / len(tasks),
        "gets": (server.gets - gets) / len(tasks),
        "requests": (server.batch_requests - requests) / len(tasks),
        "late": [(t.seen_done_at - t.created_mono) / t.duration for t in tasks if t.seen_done_at],
    }


async def _run_curve(curve: str, *, batch_reads: bool) -> dict[str, Any]:
    key = (curve, batch_reads)
    if key not in _RUNS:
        clock = VirtualClock()
        server = FakeServer(clock, _durations(TASKS, 31), CURVES[curve], batch_endpoint=batch_reads)
        async with server.client() as client, clock.running():
            _RUNS[key] = await _batch(server, client, clock, TASKS, batch_reads=batch_reads)
    return _RUNS[key]


def _one_outcome_each(run: dict[str, Any]) -> None:
    report = run["report"]
    assert len(report.outcomes) == TASKS
    assert report.counts[OutcomeKind.COMPLETED] == TASKS
    assert all(t.seen_done_at is not None for t in run["tasks"])


#: With batch reads, two curves in the default suite and every curve in `nox -s soak` (each
#: run is 5-10 s); with GETs, where the risk is, every curve always.
_BATCH_READS_DEFAULT = {"linear", "s_curve"}


@pytest.mark.parametrize(
    ("curve", "batch_reads"),
    [
        *(pytest.param(curve, False, id=f"{curve}-gets") for curve in sorted(CURVES)),
        *(
            pytest.param(
                curve,
                True,
                id=f"{curve}-batch-reads",
                marks=() if curve in _BATCH_READS_DEFAULT else pytest.mark.soak,
            )
            for curve in sorted(CURVES)
        ),
    ],
)
@pytest.mark.anyio
async def test_batch_is_never_much_slower_than_a_one_second_loop(
    curve: str, batch_reads: bool
) -> None:
    run = await _run_curve(curve, batch_reads=batch_reads)
    _one_outcome_each(run)
    assert run["wall"] <= 1.05 * run["loop"], run["wall"] / run["loop"]
    # Seen done by twice the duration at the latest (every later read within the age).
    assert max(run["late"]) <= 2.0 + 1e-6


@pytest.mark.anyio
@pytest.mark.parametrize("curve", sorted(CURVES))
async def test_batch_with_gets_costs_fewer_reads_than_the_loop(curve: str) -> None:
    """Each record's schedule is held to 2.3 reads a task, from where a task starts on it;
    a task that moves from record to record as its progress crosses bands may spend more
    (3.4-3.5 on the S-curve, progress stuck at 99, or a half-linear, half-cubic mix: see
    waiting.md), but never as many as a 1 s loop reading the same tasks (4.5 a task)."""
    run = await _run_curve(curve, batch_reads=False)
    _one_outcome_each(run)
    assert run["gets"] == pytest.approx(run["reads"])  # one GET per read
    loop_reads = sum(math.ceil(d) for d in _durations(TASKS, 31)) / TASKS
    assert run["reads"] <= 3.6 < loop_reads, f"{run['reads']:.2f} GETs a task ({curve})"


@pytest.mark.anyio
async def test_batch_reads_stay_within_the_request_budget_on_odd_curves() -> None:
    for curve in ("cube_root", "s_curve", "mixture_linear_cubic", "backwards"):
        run = await _run_curve(curve, batch_reads=True)
        _one_outcome_each(run)
        assert run["gets"] == 0
        assert run["requests"] <= 0.5, (curve, run["requests"])


@pytest.mark.anyio
async def test_no_storm_on_any_curve() -> None:
    """Every read after the first at least 2 % of the age and 20 ms after the one before
    (on the server's side: reads of one task)."""
    for curve in CURVES:
        run = await _run_curve(curve, batch_reads=False)
        for task in run["tasks"]:
            times = task.read_times
            for before, after in itertools.pairwise(times):
                age = before - task.created_mono
                # (or half a second near a hinted end: waiting.md, "never a storm")
                floor = max(0.02, min(0.02 * age, 0.5))
                assert after - before >= floor - 1e-6, (curve, task.id)


@pytest.mark.anyio
@pytest.mark.soak  # 10-18 s
async def test_a_model_turning_cubic_between_batches_is_read_as_well_as_a_cubic_one() -> None:
    # (A strict known limit until 2026-12-05, 1.21x their durations against 1.09x: a mature
    # progress record was relearned only as its last 160 ends turned over. It passes since
    # the progress bands judge their first read of each task.)
    """One client, one model: a batch on linear progress, then the server's model changes
    (a new version) and its progress becomes `100 (t/D)^3`. The next batch should be read
    about as well as a client that saw cubic progress from the start reads its first
    batch (mean seen-done / duration, same durations), and within 1.05x a plain 1 s loop."""
    durations = _durations(400, 5)
    clock = VirtualClock()
    shape = {"exponent": 1.0}

    def progress(_i: int, f: float, _a: float) -> int:
        return min(99, math.floor(100 * f ** shape["exponent"]))

    server = FakeServer(clock, durations, progress)
    async with server.client() as client, clock.running():
        await _batch(server, client, clock, 400, batch_reads=False)
        shape["exponent"] = 3.0
        after = await _batch(server, client, clock, 400, batch_reads=False)
    fresh_clock = VirtualClock()
    fresh_server = FakeServer(fresh_clock, durations, _power(3.0))
    async with fresh_server.client() as client, fresh_clock.running():
        fresh = await _batch(fresh_server, client, fresh_clock, 400, batch_reads=False)
    assert after["report"].counts[OutcomeKind.COMPLETED] == 400
    late_after = sum(after["late"]) / 400
    late_fresh = sum(fresh["late"]) / 400
    assert late_after <= late_fresh + 0.05, (round(late_after, 3), round(late_fresh, 3))
    assert after["wall"] <= 1.05 * after["loop"], round(after["wall"] / after["loop"], 3)


@pytest.mark.anyio
async def test_a_create_answer_already_showing_progress_does_not_break_the_batch() -> None:
    """After the model's progress bands are learned, a task whose create answer already
    says `processing, 50 %` (an idempotent replay of a running task, a server that starts
    at once) must be waited for like any other: one outcome each, no exception."""
    clock = VirtualClock()
    durations = _durations(200, 51)
    replay: Callable[[int], int] = lambda i: 50 if i >= 150 else 0  # noqa: E731
    server = FakeServer(
        clock,
        durations,
        _power(1.0),
        create_progress=replay,
        create_status=lambda i: "processing" if i >= 150 else "pending",
    )
    async with server.client() as client, clock.running():
        learned = await _batch(server, client, clock, 150, batch_reads=False)
        assert learned["report"].counts[OutcomeKind.COMPLETED] == 150
        report = await client.images.generate_many(
            [f"again {i}" for i in range(50)], max_in_flight=10, batch_reads=False
        )
    assert len(report.outcomes) == 50
    assert report.counts[OutcomeKind.COMPLETED] == 50


@pytest.mark.anyio
async def test_tasks_wait_on_a_task_already_showing_progress() -> None:
    """The same through `client.tasks.wait`: a learned model, then a task whose first
    look already carries progress at age 0."""
    clock = VirtualClock()
    server = FakeServer(
        clock,
        _durations(101, 61),
        _power(1.0),
        create_progress=lambda i: 60 if i == 100 else 0,
        create_status=lambda i: "processing" if i == 100 else "pending",
    )
    async with server.client() as client, clock.running():
        await _batch(server, client, clock, 100, batch_reads=False)
        task = await client.images.generate("one more")
        done = await client.tasks.wait(task, timeout=120)
    assert done.is_terminal
