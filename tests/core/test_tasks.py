"""`client.tasks.get`, `client.tasks.wait` and `client.credits()`."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from _core_support import TASK_ID, TASK_PATH, task_payload

from evolink import Task, TaskFailedError, TaskStatus, ValidationError, WaitTimeoutError
from evolink._converter import parse_task
from evolink._estimate import DEFAULT_DURATION, MAX_DELAY, MIN_DELAY, PROBE_FRACTION, ReadPlan

pytestmark = pytest.mark.anyio


class LinearTask:
    """A task whose progress rises linearly from its creation to `duration` seconds."""

    def __init__(self, clock, duration: float, estimated_time: float | None = 100) -> None:
        self.clock = clock
        self.duration = duration
        self.estimated_time = estimated_time
        self.t0 = clock.monotonic()
        self.read_times: list[float] = []

    def payload(self) -> dict[str, Any]:
        elapsed = self.clock.monotonic() - self.t0
        info = {"can_cancel": True}
        if self.estimated_time is not None:
            info["estimated_time"] = self.estimated_time
        base = task_payload(created=int(self.clock.time() - elapsed), task_info=info)
        if elapsed >= self.duration:
            return {**base, "status": "completed", "progress": 100, "results": ["https://r/1.png"]}
        progress = int(elapsed / self.duration * 100)
        return {**base, "status": "processing" if progress else "pending", "progress": progress}

    def created(self) -> Task:
        return parse_task(self.payload())

    def respond(self, _request: httpx.Request) -> httpx.Response:
        self.read_times.append(self.clock.monotonic() - self.t0)
        return httpx.Response(200, json=self.payload())


# -- get ---------------------------------------------------------------------------------


async def test_get_reads_the_task(router: respx.MockRouter, make_client):
    """get() reads GET /v1/tasks/{id} with the key and returns the parsed task."""
    route = router.get(TASK_PATH).respond(200, json=task_payload(status="processing", progress=40))

    async with make_client() as client:
        task = await client.tasks.get(TASK_ID)

    assert (TaskStatus.PROCESSING, 40) == (task.status, task.progress)
    request = route.calls.last.request
    assert "Bearer sk-evo-SECRET-abc123" == request.headers["Authorization"]
    assert request.headers["User-Agent"].startswith("evolink-python/")
    assert "application/json" == request.headers["Accept"]


@pytest.mark.parametrize(
    "task_id",
    [
        pytest.param("abc", id="no-prefix"),
        pytest.param("", id="empty"),
        pytest.param(42, id="not-a-string"),
        pytest.param("task-unified-1/../../credits", id="slash"),
        pytest.param("task-unified-1?x=1", id="query"),
        pytest.param("task-unified-1#frag", id="fragment"),
    ],
)
async def test_get_bad_id_sends_nothing(router: respx.MockRouter, make_client, task_id):
    """A malformed task id is a ValidationError and no request is sent."""
    async with make_client() as client:
        with pytest.raises(ValidationError) as info:
            await client.tasks.get(task_id)

    assert ("task_id", "format") == (info.value.field, info.value.rule)
    assert 0 == len(router.calls)


# -- wait --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        pytest.param("completed", id="completed"),
        pytest.param("failed", id="failed"),
        pytest.param("cancelled", id="cancelled"),
    ],
)
async def test_wait_returns_at_each_terminal_state(
    router: respx.MockRouter, make_client, clock, status
):
    """wait() stops at completed, failed and cancelled and returns the task."""
    router.get(TASK_PATH).mock(
        side_effect=[
            httpx.Response(200, json=task_payload(status="processing", progress=50)),
            httpx.Response(200, json=task_payload(status=status, progress=100)),
        ]
    )

    async with clock.running(), make_client(clock=clock) as client:
        task = await client.tasks.wait(TASK_ID)

    assert status == task.status.value
    assert task.is_terminal


@pytest.mark.parametrize(
    "status", [pytest.param("failed", id="failed"), pytest.param("cancelled", id="cancelled")]
)
async def test_wait_raise_on_failure(router: respx.MockRouter, make_client, clock, status):
    """With raise_on_failure, a failed or cancelled task raises TaskFailedError."""
    error = {"code": "service_error", "message": "upstream"} if status == "failed" else None
    router.get(TASK_PATH).respond(200, json=task_payload(status=status, error=error))

    async with clock.running(), make_client(clock=clock) as client:
        with pytest.raises(TaskFailedError) as info:
            await client.tasks.wait(TASK_ID, raise_on_failure=True)

    assert status == info.value.task.status.value


async def test_wait_raise_on_failure_completed(router: respx.MockRouter, make_client, clock):
    """raise_on_failure returns a completed task."""
    router.get(TASK_PATH).respond(200, json=task_payload(status="completed", results=["https://r"]))

    async with clock.running(), make_client(clock=clock) as client:
        task = await client.tasks.wait(TASK_ID, raise_on_failure=True)

    assert ("https://r",) == task.results


async def test_wait_on_terminal_task_reads_nothing(router: respx.MockRouter, make_client):
    """A task that is already terminal is returned without a read."""
    task = parse_task(task_payload(status="completed"))

    async with make_client() as client:
        assert task is await client.tasks.wait(task)

    assert 0 == len(router.calls)


async def test_wait_timeout_carries_last_task(router: respx.MockRouter, make_client, clock):
    """A task still running at the deadline raises WaitTimeoutError with the last read."""
    sim = LinearTask(clock, duration=1000)
    router.get(TASK_PATH).mock(side_effect=sim.respond)

    async with clock.running(), make_client(clock=clock) as client:
        with pytest.raises(WaitTimeoutError) as info:
            await client.tasks.wait(sim.created(), timeout=30)

    err = info.value
    assert 30 == err.timeout
    assert 30 == pytest.approx(clock.monotonic())
    assert 3 == err.task.progress  # read at the deadline: 30 s of 1000
    assert pytest.approx(30) == sim.read_times[-1]
    assert "after 30 s" in str(err)


async def test_wait_zero_timeout(router: respx.MockRouter, make_client, clock):
    """timeout=0 on an unfinished task raises at once, without a read."""
    task = parse_task(task_payload(created=int(clock.time())))

    async with clock.running(), make_client(clock=clock) as client:
        with pytest.raises(WaitTimeoutError) as info:
            await client.tasks.wait(task, timeout=0)

    assert task is info.value.task
    assert 0 == len(router.calls)


async def test_wait_last_look_at_deadline_finds_it_done(
    router: respx.MockRouter, make_client, clock
):
    """The read at the deadline returns a task that just finished instead of timing out."""
    sim = LinearTask(clock, duration=30, estimated_time=30)
    router.get(TASK_PATH).mock(side_effect=sim.respond)

    async with clock.running(), make_client(clock=clock) as client:
        task = await client.tasks.wait(sim.created(), timeout=30)

    assert task.is_success
    assert pytest.approx(30) == sim.read_times[-1]


@pytest.mark.parametrize(
    ("duration", "estimated_time"),
    [
        pytest.param(100, 100, id="as-estimated"),
        pytest.param(150, 100, id="slower-than-estimated"),
        pytest.param(60, 100, id="faster-than-estimated"),
        pytest.param(40, 100, id="done-before-first-read"),
        pytest.param(18, None, id="no-estimate"),
    ],
)
async def test_wait_reads_few_times(
    router: respx.MockRouter, make_client, clock, duration, estimated_time
):
    """A linearly progressing task is read at most 3 times and seen done soon after it ends."""
    sim = LinearTask(clock, duration=duration, estimated_time=estimated_time)
    router.get(TASK_PATH).mock(side_effect=sim.respond)

    async with clock.running(), make_client(clock=clock) as client:
        task = await client.tasks.wait(sim.created())

    assert task.is_success
    # Three reads; four where the task outlasts its estimate (the first read waits at most
    # MAX_DELAY, and no later one more than the task's age, whatever is predicted), or has
    # none (nothing known: the first read comes within a second, and progress read that
    # early predicts the end within a few percent).
    assert len(sim.read_times) <= (4 if duration > (estimated_time or 0) else 3)
    # Seen done within 10% of the duration (or at the first read, if it came later).
    assert sim.read_times[-1] <= max(duration * 1.1, 0.55 * (estimated_time or 20) + 0.1)


async def test_wait_stuck_task_backs_off(router: respx.MockRouter, make_client, clock):
    """A task with no progress is read with growing gaps, never faster than MIN_DELAY."""
    router.get(TASK_PATH).respond(200, json=task_payload(created=int(clock.time())))
    task = parse_task(task_payload(created=int(clock.time())))

    async with clock.running(), make_client(clock=clock) as client:
        with pytest.raises(WaitTimeoutError):
            await client.tasks.wait(task, timeout=600)

    reads = len(router.calls)
    assert 5 <= reads <= 40


async def test_wait_for_an_old_task_reads_at_once(router: respx.MockRouter, make_client, clock):
    """A task created long ago (by the server's stamp) is read right away."""
    router.get(TASK_PATH).respond(200, json=task_payload(status="completed"))
    task = parse_task(task_payload(created=int(clock.time()) - 10_000))

    async with clock.running(), make_client(clock=clock) as client:
        await client.tasks.wait(task)

    assert clock.monotonic() <= 0.1


# -- the read plan -----------------------------------------------------------------------


def _seen(progress: int, status: str = "processing", estimated_time: float | None = 100) -> Task:
    info = None if estimated_time is None else {"estimated_time": estimated_time}
    return parse_task(task_payload(status=status, progress=progress, task_info=info))


def test_plan_first_read_part_way_through_estimate():
    """The first read comes at 55% of the server's estimate."""
    plan = ReadPlan(started=0.0)
    plan.observe(_seen(0, "pending", estimated_time=40), 0.0)

    assert pytest.approx(PROBE_FRACTION * 40) == plan.next_read_at(0.0)


@pytest.mark.parametrize("estimate", [100, 86_400, 1e9, float("inf")])
def test_plan_first_read_comes_within_the_cap(estimate):
    """However long the estimate, the first read waits at most MAX_DELAY."""
    plan = ReadPlan(started=0.0)
    plan.observe(_seen(0, "pending", estimated_time=estimate), 0.0)

    assert plan.next_read_at(0.0) <= MAX_DELAY


@pytest.mark.parametrize("progress", [20, 5, 1])
def test_plan_slow_progress_delays_the_next_read_by_at_most_the_age(progress):
    """Progress that predicts a far end waits at most the task's age before the next read."""
    plan = ReadPlan(started=0.0, estimated_time=60)
    plan.observe(_seen(0, "pending"), 0.0)
    plan.observe(_seen(progress), 33.0)

    assert plan.next_read_at(33.0, TaskStatus.PROCESSING) <= 66.0


@pytest.mark.parametrize("progress", [101, 150, 10_000])
def test_plan_progress_past_100_does_not_storm(progress):
    """Progress above 100 while processing: reads stay spaced out."""
    plan = ReadPlan(started=0.0, estimated_time=60)
    now = 30.0
    reads = 0
    while now < 330.0:
        plan.observe(_seen(progress), now)
        now = plan.next_read_at(now, TaskStatus.PROCESSING)
        reads += 1
    assert reads < 100


def test_plan_without_estimate_uses_default():
    """Without an estimate (or with 0) the default duration is assumed."""
    plan = ReadPlan(started=0.0)
    plan.observe(_seen(0, "pending", estimated_time=0), 0.0)

    assert DEFAULT_DURATION == plan.predicted_duration()


def test_plan_predicts_from_progress():
    """Progress seen part-way predicts the end; the next read lands just after it."""
    plan = ReadPlan(started=0.0, estimated_time=100)
    plan.observe(_seen(60), 100.0)

    # 60% (a whole percent, rounded down) after 100 s: the task takes 164-167 s.
    assert 100 * 100 / 61 <= plan.predicted_duration() <= 100 * 100 / 60
    next_read = plan.next_read_at(100.0, TaskStatus.PROCESSING)
    assert plan.predicted_duration() < next_read <= 1.05 * plan.predicted_duration()


def test_plan_backs_off_past_predicted_end():
    """Past the predicted end without progress, reads back off, growing, up to a cap."""
    plan = ReadPlan(started=0.0, estimated_time=100)
    plan.observe(_seen(50), 50.0)
    waits = []
    now = 200.0
    for _ in range(12):
        plan.observe(_seen(50), now)
        wait = plan.next_read_at(now, TaskStatus.PROCESSING) - now
        waits.append(wait)
        now += wait

    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(waits))
    assert all(MIN_DELAY <= w <= MAX_DELAY for w in waits)
    assert pytest.approx(MAX_DELAY) == waits[-1]


def test_plan_progress_moved_but_end_already_passed():
    """Progress moved yet its predicted end is behind us: read again within MAX_DELAY."""
    plan = ReadPlan(started=0.0, estimated_time=100)
    plan.observe(_seen(0, "pending"), 0.0)
    plan.observe(_seen(90), 180.0)

    now = 250.0
    assert now + MIN_DELAY <= plan.next_read_at(now, TaskStatus.PROCESSING) <= now + MAX_DELAY


def test_plan_stalled_pending_task_backs_off():
    """A pending task that has not moved since the last read is not read at the predicted end."""
    plan = ReadPlan(started=0.0, estimated_time=100)
    plan.observe(_seen(0, "pending"), 0.0)
    plan.observe(_seen(0, "pending"), 55.0)

    assert plan.next_read_at(55.0, TaskStatus.PENDING) < 100.0


def test_plan_running_task_that_shows_no_progress_is_read_at_its_estimate():
    """Processing at 0% on a server that reports no progress: the next read is the
    estimate's end, not a backoff of small steps around it; past it, the backoff."""
    plan = ReadPlan(started=0.0, estimated_time=100)
    plan.observe(_seen(0, "pending"), 0.0)
    plan.observe(_seen(0), 55.0)

    at = plan.next_read_at(55.0, TaskStatus.PROCESSING)
    assert 100.0 < at < 103.0
    plan.observe(_seen(0), at)
    later = plan.next_read_at(at, TaskStatus.PROCESSING)
    assert at + MIN_DELAY <= later < at + 10.0


# -- credits -----------------------------------------------------------------------------


async def test_credits(router: respx.MockRouter, make_client):
    """credits() reads GET /v1/credits and returns the balances."""
    router.get("/v1/credits").respond(
        200,
        json={
            "success": True,
            "message": "",
            "data": {
                "token": {"remaining_credits": 50, "unlimited_credits": False, "used_credits": 5},
                "user": {"remaining_credits": 1234.5, "used_credits": 10},
            },
        },
    )

    async with make_client() as client:
        credits_ = await client.credits()

    assert Decimal(50) == credits_.remaining_credits
    assert Decimal("1234.5") == credits_.user.remaining_credits
    assert credits_.token.unlimited_credits is False


@pytest.mark.parametrize(
    "skew", [pytest.param(0.9, id="stamp-truncated"), pytest.param(6.0, id="server-clock-behind")]
)
async def test_wait_on_a_fresh_task_ignores_the_stamps_error(
    router: respx.MockRouter, make_client, clock, skew
):
    """A just-created task's whole-second, skewed stamp does not make wait() read late."""
    sim = LinearTask(clock, duration=8, estimated_time=8)
    router.get(TASK_PATH).mock(side_effect=sim.respond)
    created = parse_task({**sim.payload(), "created": int(clock.time() - skew)})  # pending, 0%

    async with clock.running(), make_client(clock=clock) as client:
        task = await client.tasks.wait(created)

    assert task.is_success
    assert sim.read_times[-1] <= 8 * 1.1
