"""An async app: video and image batches under a credit budget (docs/how-to/budget.md)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from evolink import (
    AsyncEvolink,
    BatchProgress,
    BatchReport,
    GenerationRequest,
    OutcomeKind,
    SkipReason,
)
from evolink.testing import Faults, Fixed, Simulator, VirtualClock

KEY = "sk-evo-newcomer-batch-0002"


def _client(sim: Simulator, clock: VirtualClock) -> AsyncEvolink:
    return AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock)


def _assert_accounted(report: BatchReport, n_inputs: int) -> None:
    """Every input ends in exactly one outcome; every credit reserved is charged or released."""
    assert len(report) == n_inputs
    assert sorted(o.index for o in report.outcomes) == list(range(n_inputs))
    assert sum(report.counts.values()) == n_inputs
    assert report.reserved == report.charged + report.released
    per_task = sum((o.credits.reserved for o in report.outcomes if o.credits), Decimal(0))
    assert per_task == report.reserved


@pytest.mark.anyio
async def test_video_batch_within_budget_with_progress() -> None:
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=5)
    prompts = [f"a lighthouse at dusk, take {i}" for i in range(10)]
    seen: list[BatchProgress] = []
    async with _client(sim, clock) as client, clock.running():
        report = await client.videos.generate_many(
            prompts,
            model="kling-v3-text-to-video",
            params={"duration": 5},
            max_in_flight=4,
            max_credits=40,
            on_progress=seen.append,
        )
    _assert_accounted(report, 10)
    assert report.charged <= 40
    # 6 credits per 5-second video here (see sim's price): a budget of 40 cannot fit all 10.
    completed = report.counts[OutcomeKind.COMPLETED]
    skipped = [o for o in report.outcomes if o.kind is OutcomeKind.SKIPPED]
    assert completed + len(skipped) == 10
    assert skipped
    assert all(o.reason is SkipReason.BUDGET for o in skipped)
    assert report.skipped_for_budget == len(skipped)
    assert all(o.results and o.results[0].endswith(".mp4") for o in report.completed)
    # The batch agrees with the server's ledger to the cent.
    assert report.charged == sim.ledger.charged
    # Progress: counts never go backwards and end at the total.
    assert seen, "on_progress was never called"
    finished = [p.finished for p in seen]
    assert finished == sorted(finished)
    assert seen[-1].finished == seen[-1].total == 10
    assert seen[-1].completed == completed
    assert seen[-1].charged == report.charged
    # The budget held at every moment on the server too.
    assert max(c for _, c in sim.ledger.committed_over_time()) <= 40


@pytest.mark.anyio
async def test_image_batch_with_faults_every_input_one_outcome() -> None:
    clock = VirtualClock()
    faults = Faults(task_failure=0.2, cancellation=0.1, partial_completion=0.3, rate_limit=0.1)
    sim = Simulator(clock=clock, seed=42, faults=faults)
    requests: list[str | GenerationRequest] = [f"a koi pond, {i}" for i in range(30)]
    requests[7] = "   "  # blank prompt: rejected, never sent
    requests[8] = GenerationRequest(prompt="a fox", n=11)  # out of range: rejected
    requests[9] = GenerationRequest(prompt="four foxes", n=4)
    async with _client(sim, clock) as client, clock.running():
        report = await client.images.generate_many(requests, max_in_flight=8, max_credits=200)
    _assert_accounted(report, 30)
    by_index = {o.index: o for o in report.outcomes}
    assert by_index[7].kind is OutcomeKind.REJECTED
    assert by_index[8].kind is OutcomeKind.REJECTED
    assert by_index[7].task_id is None
    assert by_index[8].task_id is None
    sent_prompts = [r.body.get("prompt") for r in sim.requests if r.method == "POST" and r.body]
    assert "   " not in sent_prompts
    # Each task the server made belongs to exactly one outcome, and vice versa.
    task_ids = [o.task_id for o in report.outcomes if o.task_id]
    assert len(task_ids) == len(set(task_ids)) == len(sim.tasks)
    assert report.counts[OutcomeKind.FAILED] + report.counts[OutcomeKind.CANCELLED] > 0
    for outcome in report.outcomes:
        if outcome.kind is OutcomeKind.FAILED:
            assert outcome.error_code
        if outcome.kind in (OutcomeKind.FAILED, OutcomeKind.CANCELLED):
            assert outcome.credits is not None
            assert outcome.credits.charged == 0
    assert report.charged == sim.ledger.charged
    assert report.reserved - report.released == sim.ledger.charged


@pytest.mark.anyio
async def test_insufficient_balance_stops_submissions() -> None:
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=1, balance=10, durations=Fixed(20))
    async with _client(sim, clock) as client, clock.running():
        report = await client.images.generate_many(
            [f"a paper boat, {i}" for i in range(8)], max_in_flight=8
        )
    _assert_accounted(report, 8)
    assert report.charged <= 10
    skipped = [o for o in report.outcomes if o.kind is OutcomeKind.SKIPPED]
    assert skipped
    assert {o.reason for o in skipped} == {SkipReason.INSUFFICIENT_CREDITS}
    assert report.stopped_reason


@pytest.mark.anyio
async def test_streaming_batch_and_report_roundtrip() -> None:
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=9)
    seen: list[int] = []
    async with _client(sim, clock) as client, clock.running():
        async with client.batch(max_in_flight=3, max_credits=100, total=6) as batch:
            for i in range(6):
                await batch.submit(GenerationRequest(prompt=f"a kite, {i}", size="3:2"))
            async for outcome in batch.as_completed():
                seen.append(outcome.index)
    report = batch.report()
    _assert_accounted(report, 6)
    assert sorted(seen) == list(range(6))
    assert batch.ledger.outstanding == 0
    again = BatchReport.from_dict(json.loads(report.to_json()))
    assert again == report


@pytest.mark.anyio
async def test_images_run_and_audio_run() -> None:
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=2)
    async with _client(sim, clock) as client, clock.running():
        image = await client.images.run(
            "a red fox", model="gemini-3.1-flash-image-preview", size="16:9", quality="2K"
        )
        speech = await client.audios.run(
            "Welcome.", model="doubao-seed-audio-1-0", format="mp3", timeout=600
        )
    assert image.is_success
    assert image.results[0].endswith(".png")
    assert speech.is_success
    assert speech.results[0].endswith(".mp3")
