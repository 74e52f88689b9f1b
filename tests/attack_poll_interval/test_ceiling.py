"""Promise 1: every running task is read at least once every `max_poll_interval` seconds and
seen done within it of its end, whatever the hints, however the client waits.

Measured at our own server: per task, the time from its create to its first read, between
reads while it runs, and to the read that found it ended (`FakeTask.gaps`), and how long
after its end the client had the answer that it ended (`FakeTask.lateness`). With no
latency on the virtual clock, both must be within the interval exactly.
"""

from __future__ import annotations

import math

import anyio
import pytest

from evolink import OutcomeKind, Task

from . import _server as s
from ._harness import EPS, batch, client_for, describe, fresh, generate_many, run, waits

#: Hints that mislead, each (progress, estimate): steady lies, stuck, backwards, jumping,
#: absent, and estimates absent, absurd, zero, huge, tiny, NaN, negative or not a number.
HOSTILE = {
    "share40-no-estimate": (s.share(0.4), s.no_estimate),
    "share10-true-estimate": (s.share(0.1), s.true_estimate),
    "stuck99": (s.stuck_at(99), s.no_estimate),
    "stuck0-estimate-86400": (s.stuck_at(0), s.fixed_estimate(86400)),
    "backwards-estimate-x3": (s.backwards, s.scaled_estimate(3.0)),
    "jumping": (s.jumping, s.no_estimate),
    "absent-estimate-0": (s.absent, s.fixed_estimate(0)),
    "absent-estimate-1e9": (s.absent, s.fixed_estimate(1e9)),
    "absent-estimate-tiny": (s.absent, s.fixed_estimate(0.001)),
    "quick-then-stuck-estimate-tenth": (s.quick_then_stuck, s.scaled_estimate(0.1)),
    "far-ahead-estimate-nan": (s.far_ahead, s.fixed_estimate(math.nan)),
    "over-100-estimate-negative": (s.stuck_at(250), s.fixed_estimate(-5)),
    "negative-estimate-text": (s.stuck_at(-40), s.fixed_estimate("soon")),
    "honest-estimate-x10": (s.honest, s.scaled_estimate(10.0)),
}

MODES = ("waits-get", "waits-batch-reads", "batch", "generate_many")


def _run_mode(server: s.FakeServer, mode: str, interval: float | None, count: int) -> None:
    if mode == "waits-get":
        server.batch_endpoint = False
        results = waits(server, interval, count, stagger=0.37)
        assert all(isinstance(r, Task) and r.is_terminal for r in results), results
    elif mode == "waits-batch-reads":
        results = waits(server, interval, count, stagger=0.37)
        assert all(isinstance(r, Task) and r.is_terminal for r in results), results
    elif mode == "batch":
        report = batch(server, interval, count, max_in_flight=10)
        assert report.counts[OutcomeKind.COMPLETED] == count
    else:
        report = generate_many(server, interval, count, max_in_flight=16)
        assert report.counts[OutcomeKind.COMPLETED] == count


def _assert_ceiling(server: s.FakeServer, interval: float, slack: float = 0.0) -> None:
    assert server.tasks, "no task was made"
    assert server.worst_gap() <= interval + slack + EPS, describe(server)
    assert server.worst_lateness() <= interval + slack + EPS, describe(server)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hints", sorted(HOSTILE))
def test_hostile_hints_are_read_within_the_interval(hints: str, mode: str) -> None:
    progress, estimate = HOSTILE[hints]
    server = fresh(durations=s.spread(4, 30, 13), progress=progress, estimate=estimate)
    _run_mode(server, mode, 1.0, 8)
    _assert_ceiling(server, 1.0)


@pytest.mark.parametrize("mode", MODES)
def test_the_lying_server_is_seen_late_without_the_option(mode: str) -> None:
    """The measure bites: the same server, without the option, is seen seconds late."""
    server = fresh(durations=s.spread(20, 40, 13), progress=s.share(0.4))
    _run_mode(server, mode, None, 12)
    assert server.worst_lateness() > 3.0, describe(server)
    assert server.worst_gap() > 3.0, describe(server)


@pytest.mark.parametrize("interval", [0.1, 0.25, 0.7, 2.5, 7.0, 30.0])
@pytest.mark.parametrize("mode", ["waits-get", "batch"])
def test_other_intervals(interval: float, mode: str) -> None:
    server = fresh(durations=s.spread(3, 25, 11), progress=s.share(0.3), queued=2.0)
    _run_mode(server, mode, interval, 6)
    _assert_ceiling(server, interval)


def test_a_lone_wait_of_a_long_video_with_an_absurd_estimate() -> None:
    server = fresh(durations=s.fixed(900.0), progress=s.share(0.2), estimate=s.fixed_estimate(1e12))
    report = generate_many(server, 2.0, 3, videos=True)
    assert report.counts[OutcomeKind.COMPLETED] == 3
    assert all(r.path == "/v1/videos/generations" for r in server.requests("POST", "/v1/v"))
    _assert_ceiling(server, 2.0)


@pytest.mark.parametrize("skew", [-86_400.0, -600.0, 30.0, 86_400.0 * 365])
def test_a_server_clock_far_off(skew: float) -> None:
    """`created` stamps a day behind, minutes behind, ahead, a year ahead: a task's age is
    wrong, the ceiling is not."""
    server = fresh(durations=s.spread(5, 30, 7), progress=s.share(0.4), skew=skew)
    waits(server, 1.0, 6, stagger=0.5)
    _assert_ceiling(server, 1.0)


def test_many_tasks_past_one_batch_request() -> None:
    """120 tasks held at once: three batch requests a tick, each task within the interval."""
    server = fresh(durations=s.spread(15, 30, 17), progress=s.stuck_at(99))
    report = batch(server, 1.0, 120, max_in_flight=120)
    assert report.counts[OutcomeKind.COMPLETED] == 120
    _assert_ceiling(server, 1.0)


def test_waits_by_id() -> None:
    """`tasks.wait("task-unified-...")`: the first read by id, then the engine's."""
    server = fresh(durations=s.spread(8, 30, 7), progress=s.share(0.4))

    async def main() -> None:
        async with client_for(server, 1.0) as client, server.clock.running():
            ids = [(await client.images.generate(f"p{i}")).id for i in range(8)]
            async with anyio.create_task_group() as tg:
                for task_id in ids:
                    tg.start_soon(client.tasks.wait, task_id)

    run(main)
    _assert_ceiling(server, 1.0)


def test_a_wait_that_starts_late() -> None:
    """Created, left alone for a while, then waited for: read at once, then held."""
    server = fresh(durations=s.fixed(40.0), progress=s.share(0.4), batch_endpoint=False)

    async def main() -> None:
        async with client_for(server, 1.0) as client, server.clock.running():
            task = await client.images.generate("late")
            await server.clock.sleep(15.0)
            started = server.clock.monotonic()
            await client.tasks.wait(task)
            [fake] = server.tasks.values()
            assert fake.read_times()[0] - started <= 1.0 + EPS

    run(main)
    [fake] = server.tasks.values()
    gaps = fake.gaps()[1:]  # the first is the time the caller left it alone
    assert max(gaps) <= 1.0 + EPS, describe(server)
    assert fake.lateness() <= 1.0 + EPS, describe(server)


@pytest.mark.parametrize("batch_endpoint", [False, True])
def test_latency_adds_at_most_the_requests_own(batch_endpoint: bool) -> None:
    """With every answer taking 0.3 s: a read goes out within the interval of the last
    answer, so reads are at most interval + latency apart (plus one refused batch request
    on a server without the endpoint), and an end is seen within interval + 2 latencies."""
    latency = 0.3
    server = fresh(
        durations=s.spread(10, 40, 11),
        progress=s.share(0.4),
        batch_endpoint=batch_endpoint,
        latency=latency,
    )
    waits(server, 0.5, 10, stagger=0.21)
    assert server.worst_lateness() <= 0.5 + 2 * latency + EPS, describe(server)
    for task in server.tasks.values():
        # (The first gap may hold a refused batch request: another latency.)
        first, *rest = task.gaps()
        assert first <= 0.5 + 2 * latency + EPS, describe(server)
        assert max(rest, default=0.0) <= 0.5 + latency + EPS, describe(server)


def test_under_trio() -> None:
    server = fresh(durations=s.spread(5, 30, 7), progress=s.share(0.4))
    waits(server, 1.0, 8, stagger=0.3, backend="trio")
    _assert_ceiling(server, 1.0)


def test_a_batch_without_batch_reads_beside_waits_with_them() -> None:
    """One client: 40 handlers waiting (batch reads) and a `client.batch(batch_reads=False)`
    of 20, interval 3 s. The batch's tasks are read by GET, each when due: the waits' batch
    reads waiting for company must not hold them past the interval."""
    interval = 3.0
    server = fresh(durations=s.spread(10, 40, 13), progress=s.share(0.4))
    own: set[str] = set()

    async def main() -> None:
        async with client_for(server, interval) as client, server.clock.running():

            async def waiter(i: int) -> None:
                await server.clock.sleep(0.13 * i)
                await client.tasks.wait(await client.images.generate(f"w{i}"))

            def created(_index: int, task: Task) -> None:
                own.add(task.id)

            async with anyio.create_task_group() as tg:
                for i in range(40):
                    tg.start_soon(waiter, i)
                options = {"batch_reads": False, "on_created": created}
                async with client.batch(max_in_flight=10, **options) as b:
                    await b.submit_all([f"b{i}" for i in range(20)])

    run(main)
    assert len(own) == 20
    mine = [task for task in server.tasks.values() if task.id in own]
    worst = max(mine, key=lambda t: t.max_gap())
    times = [round(t - worst.created, 3) for t in worst.read_times()]
    assert worst.max_gap() <= interval + EPS, (
        f"a task of the batch without batch reads went {worst.max_gap():.3f} s unread "
        f"(interval {interval}); its reads at {times}"
    )
    _assert_ceiling(server, interval)


class _OddStatus(s.FakeServer):
    """Reports running tasks with a status the SDK does not know."""

    def _view(self, task: s.FakeTask, now: float, kind: str = "image") -> dict[str, object]:
        view = super()._view(task, now, kind)
        if view["status"] == "processing":
            view["status"] = "in_progress_v2"
        return view


@pytest.mark.parametrize("batch_endpoint", [False, True])
def test_an_unknown_running_status(batch_endpoint: bool) -> None:
    server = _OddStatus(
        clock=fresh().clock,
        durations=s.spread(5, 30, 7),
        progress=s.share(0.4),
        batch_endpoint=batch_endpoint,
    )
    waits(server, 1.0, 6, stagger=0.3)
    _assert_ceiling(server, 1.0)


@pytest.mark.parametrize("interval", [3.0, 10.0])
def test_a_model_that_falls_quiet(interval: float) -> None:
    """Waits read by GET; the model's progress stays 0, its estimates honest. Once enough
    reads have seen it (`ModelTiming.shows_none`), the engine moves the first reads still
    due part-way through an estimate (`Watcher._skip_part_way`): no task may go unread
    past the interval since its create because of that."""
    server = fresh(
        durations=s.spread(20, 40, 13),
        progress=s.stuck_at(0),
        estimate=s.true_estimate,
        batch_endpoint=False,
    )
    waits(server, interval, 40, stagger=0.5)
    _assert_ceiling(server, interval)
