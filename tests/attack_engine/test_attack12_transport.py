"""Attack12: one transport, one retry owner, exact request counts (issue 12, item 1).

Every test drives the SDK against `_hostile_api.HostileAPI` (my own fake), whose log is
appended when a request reaches it, and holds the SDK's counts against it.
"""

from __future__ import annotations

import pytest
from _hostile_api import API, KEY, HostileAPI

import evolink
from evolink import AsyncEvolink, OutcomeKind
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

PROMPTS = [f"a hostile lighthouse number {i}" for i in range(6)]


def make(api: HostileAPI, clock: VirtualClock, **kw: object) -> AsyncEvolink:
    return AsyncEvolink(api_key=KEY, base_url=API, transport=api.transport(), clock=clock, **kw)  # type: ignore[arg-type]


async def run_batch(
    api: HostileAPI, clock: VirtualClock, prompts: list[str] = PROMPTS, **opts: object
):
    async with make(api, clock) as client, clock.running():
        opts.setdefault("task_deadline", 600)
        report = await client.images.generate_many(prompts, max_in_flight=3, **opts)  # type: ignore[arg-type]
        return client.requests_sent, report


def assert_one_outcome_each(report: evolink.BatchReport, n: int) -> None:
    assert sorted(o.index for o in report.outcomes) == list(range(n))


# -- every read answers 500 ---------------------------------------------------------------


async def test_single_task_every_read_500_counts_match() -> None:
    """Promise: "Every HTTP request sent is counted exactly once" (issue 12, item 1);
    `client.requests_sent` is "HTTP requests this client has sent (each retry counts; a server
    log agrees)" (AsyncEvolink.requests_sent docstring). Every read answers 500."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    api.read_rule = lambda n, tid: "500"
    async with make(api, clock) as client, clock.running():
        task = await client.images.generate("a red fox in snow")
        with pytest.raises(evolink.EvolinkError):
            await client.tasks.wait(task, timeout=120, raise_on_failure=True)
        assert client.requests_sent == len(api.log)
    assert api.count("POST", "/v1/images/generations") == 1


@pytest.mark.parametrize("batch_mode", ["500", "404"])
async def test_batch_every_read_500_counts_match(batch_mode: str) -> None:
    """Promise (issue 12, 'Done when'): "A test drives every read answering 500 and asserts the
    reported request count equals the simulator's own count"; `BatchReport.requests` "equals
    what a server log would show". Here: my server, every GET /v1/tasks/{id} answers 500 (and
    the batch read answers 500 or 404)."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    api.read_rule = lambda n, tid: "500"
    api.batch_mode = batch_mode
    sent, report = await run_batch(api, clock, task_deadline=300)
    assert_one_outcome_each(report, len(PROMPTS))
    assert report.requests == len(api.log)
    assert sent == len(api.log)


# -- 429 storms ------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["429", "429-date", "429-none"])
async def test_create_429_storm_then_ok_counts_and_outcomes(flavour: str) -> None:
    """Promise: a 429 "refused up front" is retried for a create (idempotency.md, 'Three kinds
    of failure'); in a batch "a 429 slows every request of the batch and is waited out there,
    not counted as a failure" (architecture.md, 'Sending: one owner'); BatchReport.requests
    equals the server's count. The first 20 creates answer 429 (Retry-After seconds, an
    HTTP date, or none)."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    api.create_rule = lambda n, k, b: flavour if n < 20 else "ok"
    sent, report = await run_batch(api, clock)
    assert_one_outcome_each(report, len(PROMPTS))
    assert all(o.kind is OutcomeKind.COMPLETED for o in report.outcomes), report.counts
    assert report.requests == len(api.log)
    assert sent == len(api.log)
    # 429s made no task: one task per prompt
    assert all(v == 1 for v in api.tasks_per_prompt().values())
    assert len(api.tasks) == len(PROMPTS)


@pytest.mark.parametrize("flavour", ["429", "429-date", "429-none"])
async def test_read_429_storm_counts(flavour: str) -> None:
    """Promise: BatchReport.requests and client.requests_sent equal the server's count (issue 12,
    item 1) while every task read answers 429 for a while."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    api.read_rule = lambda n, tid: flavour if n < 30 else "ok"
    api.batch_mode = "404"
    sent, report = await run_batch(api, clock)
    assert_one_outcome_each(report, len(PROMPTS))
    assert all(o.kind is OutcomeKind.COMPLETED for o in report.outcomes), report.counts
    assert report.requests == len(api.log)
    assert sent == len(api.log)


@pytest.mark.parametrize("flavour", ["429", "429-date", "429-none"])
async def test_generate_429_forever_is_bounded_and_counted(flavour: str) -> None:
    """Promise: outside a batch "without one [a shared brake] a 429 counts as a failure"
    (_retry.RetryRules docstring), so `max_retries` (default 2) bounds a lone create: at
    most 3 sends, then RateLimitError; requests_sent equals the server's count."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    api.create_rule = lambda n, k, b: flavour
    async with make(api, clock) as client, clock.running():
        with pytest.raises(evolink.RateLimitError):
            await client.images.generate("a red fox in snow")
        assert client.requests_sent == len(api.log)
    assert len(api.creates) == 3
    assert len(set(api.sends_per_key())) == 1  # every resend under the one key


# -- batch-read endpoint missing or odd --------------------------------------------------------


@pytest.mark.parametrize(
    "mode", ["404", "bare-list", "by-id", "data-dict", "garbled", "empty", "401", "500"]
)
async def test_batch_read_odd_shapes_fall_back_and_count(mode: str) -> None:
    """Promise: "any answer that is not a list of tasks sends those tasks to one GET each at
    once; a server error is given three chances" (reliability.md, defect #1) and every input
    ends in one outcome; BatchReport.requests equals the server's count (issue 12, item 1)."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    api.batch_mode = mode
    sent, report = await run_batch(api, clock)
    assert_one_outcome_each(report, len(PROMPTS))
    assert all(o.kind is OutcomeKind.COMPLETED for o in report.outcomes), report.counts
    assert report.requests == len(api.log)
    assert sent == len(api.log)
    assert len(api.tasks) == len(PROMPTS)


async def test_batch_read_answering_about_other_tasks_is_not_believed() -> None:
    """Promise: a read that "answered with another task" is checked (issue 12, 'What is wrong
    today': the check exists in the watcher). A batch read answering with an intruder task
    for every id must not complete any input with the intruder's results; counts still match."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    api.batch_mode = "other"
    sent, report = await run_batch(api, clock)
    assert_one_outcome_each(report, len(PROMPTS))
    intruders = {tid for tid, p in api.task_prompt.items() if p == "intruder"}
    for o in report.outcomes:
        assert o.task is None or o.task.id not in intruders
        if o.kind is OutcomeKind.COMPLETED:
            assert o.task is not None
            assert api.task_prompt[o.task.id] == PROMPTS[o.index]
    assert report.requests == len(api.log)
    assert sent == len(api.log)


async def test_tasks_get_refuses_an_answer_about_another_task() -> None:
    """Promise (issue 12, 'What is wrong today'): "the check that a read answered with another
    task exists in the watcher but not in `Tasks.get`" -- one transport applies it on every
    path. `client.tasks.get(a)` answered with task b must not return b."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    async with make(api, clock) as client, clock.running():
        a = await client.images.generate("first")
        b = await client.images.generate("second")
        api.read_rule = lambda n, tid: "other" if tid == a.id else "ok"
        try:
            got = await client.tasks.get(a.id)
        except evolink.EvolinkError:
            pass
        else:
            assert got.id == a.id, f"asked for {a.id}, was handed {got.id}"
        assert b.id != a.id
        assert client.requests_sent == len(api.log)


async def test_tasks_wait_refuses_an_answer_about_another_task() -> None:
    """Promise as above (issue 12): `tasks.wait(a)` must never return another task as a."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    async with make(api, clock) as client, clock.running():
        a = await client.images.generate("first")
        await client.images.generate("second")
        api.read_rule = lambda n, tid: "other" if tid == a.id else "ok"
        try:
            got = await client.tasks.wait(a, timeout=60)
        except evolink.EvolinkError:
            pass
        else:
            assert got.id == a.id
        assert client.requests_sent == len(api.log)


# -- garbled JSON on 2xx ----------------------------------------------------------------------


async def test_garbled_read_counts_and_ends() -> None:
    """Promise: garbage 2xx answers give "typed `EvolinkError`s or tolerant parses only; every
    batch input got one outcome" (reliability.md, Fuzzed input) and the count equals the
    server's (issue 12)."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    api.read_rule = lambda n, tid: "garbled" if n % 2 == 0 else "ok"
    api.batch_mode = "garbled"
    sent, report = await run_batch(api, clock)
    assert_one_outcome_each(report, len(PROMPTS))
    assert report.requests == len(api.log)
    assert sent == len(api.log)


# -- creates whose outcome is uncertain, on a server that ignores keys ---------------------------


@pytest.mark.parametrize("action", ["500", "502", "504", "lost", "lost-before", "garbled"])
async def test_generate_uncertain_create_sent_at_most_twice(action: str) -> None:
    """Promise: "Until an answer carrying `Idempotency-Replayed: true` has shown that this
    server honours keys, a create that may have made a task is resent **once** at most ...
    then reported uncertain" (idempotency.md, 'Idempotency keys'). Server ignores keys and
    every create is uncertain: at most 2 sends, SubmissionUncertainError with that key."""
    clock = VirtualClock()
    api = HostileAPI(clock, honour_keys=False)
    api.create_rule = lambda n, k, b: action
    async with make(api, clock, max_retries=5) as client, clock.running():
        with pytest.raises(evolink.SubmissionUncertainError) as info:
            await client.images.generate("a red fox in snow")
        assert client.requests_sent == len(api.log)
        assert not client.idempotency_confirmed
    per_key = api.sends_per_key()
    assert list(per_key) == [info.value.idempotency_key]
    assert per_key[info.value.idempotency_key] <= 2


async def test_generate_uncertain_then_429s_then_uncertain_never_a_third_paid_send() -> None:
    """Promise: "Against a server that ignored keys, the worst case is one extra task per lost
    answer, never a loop of them" (idempotency.md). The server makes the task and loses the
    answer, answers 429 to the resend, and loses the answer again: at most two tasks may be
    made for one call; sends that could make a task (non-429) at most 2."""
    clock = VirtualClock()
    api = HostileAPI(clock, honour_keys=False)
    script = ["lost", "429", "lost", "429", "lost", "lost", "lost"]
    api.create_rule = lambda n, k, b: script[n] if n < len(script) else "lost"
    async with make(api, clock, max_retries=6) as client, clock.running():
        with pytest.raises(evolink.EvolinkError):
            await client.images.generate("a red fox in snow")
        assert client.requests_sent == len(api.log)
    paid = [h for h in api.creates if h.action != "429"]
    assert len(paid) <= 2, [h.action for h in api.creates]
    assert len(api.tasks) <= 2


@pytest.mark.parametrize("action", ["500", "lost", "garbled"])
async def test_batch_uncertain_creates_sent_at_most_twice_per_key(action: str) -> None:
    """Promise: "A batch ... retries an uncertain create with the same key (once until the
    server has shown it honours keys, up to six times after), and only then gives the input
    an `uncertain` outcome with its `idempotency_key`" (idempotency.md). A server ignoring
    keys, every create uncertain: per key at most 2 sends, one outcome per input, each
    uncertain with its key, counts equal."""
    clock = VirtualClock()
    api = HostileAPI(clock, honour_keys=False)
    api.create_rule = lambda n, k, b: action
    sent, report = await run_batch(api, clock)
    assert_one_outcome_each(report, len(PROMPTS))
    per_key = api.sends_per_key()
    assert max(per_key.values()) <= 2, per_key
    assert None not in per_key
    for o in report.outcomes:
        assert o.kind is OutcomeKind.UNCERTAIN, o
        assert o.idempotency_key in per_key
    assert report.requests == len(api.log)
    assert sent == len(api.log)


async def test_batch_replay_proves_keys_then_resends_allowed() -> None:
    """Promise: after a replay (`Idempotency-Replayed: true`) the server is proven to honour
    keys (`client.idempotency_confirmed`), so creates still end well; each key made one task
    (idempotency.md). Every first attempt loses its answer after making the task."""
    clock = VirtualClock()
    api = HostileAPI(clock, honour_keys=True)
    seen: set[str | None] = set()

    def rule(n: int, k: str | None, b: dict) -> str:
        if k in seen:
            return "ok"
        seen.add(k)
        return "lost"

    api.create_rule = rule
    async with make(api, clock) as client, clock.running():
        report = await client.images.generate_many(PROMPTS, max_in_flight=3)
        assert client.idempotency_confirmed
        assert client.requests_sent == len(api.log)
    assert_one_outcome_each(report, len(PROMPTS))
    assert all(o.kind is OutcomeKind.COMPLETED for o in report.outcomes), report.counts
    assert all(v == 1 for v in api.tasks_per_prompt().values())
    assert report.requests == len(api.log)


async def test_create_503_is_retried_as_safe() -> None:
    """Promise: "429, or an explicit 503: the server refused up front ... A create is retried"
    (idempotency.md table) -- not reported uncertain. First two creates answer 503."""
    clock = VirtualClock()
    api = HostileAPI(clock, honour_keys=False)
    api.create_rule = lambda n, k, b: "503" if n < 2 else "ok"
    async with make(api, clock) as client, clock.running():
        task = await client.images.generate("a red fox in snow")
        assert client.requests_sent == len(api.log) == 3
    assert task.id in api.tasks
    assert len(api.sends_per_key()) == 1


async def test_create_cancelled_while_waiting_for_answer_is_counted() -> None:
    """Promise: "every attempt that leaves is counted once, on the transport
    (`client.requests_sent`) and on the caller's `RequestCount`s, so `BatchReport.requests` is
    the count a server log shows" (architecture.md, 'Sending: one owner'). A create reaches
    the server, whose answer never comes; the batch is cancelled: the server saw 1 request."""
    import anyio  # noqa: PLC0415 - this test alone

    clock = VirtualClock()
    api = HostileAPI(clock)
    api.create_rule = lambda n, k, b: "hang" if n == 0 else "ok"
    async with make(api, clock) as client, clock.running():
        run = client.images.generate_many(PROMPTS[:2], max_in_flight=2)
        with anyio.move_on_after(30):  # real-time fallback; virtual clock wins first
            with anyio.CancelScope() as scope:

                async def stop() -> None:
                    await clock.sleep(200)
                    scope.cancel()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(stop)
                    await run
                    tg.cancel_scope.cancel()
        report = run.report()
        sent = client.requests_sent
    assert_one_outcome_each(report, 2)
    assert (report.requests, sent) == (len(api.log), len(api.log))


async def test_adopted_task_reads_are_counted_in_the_report() -> None:
    """Promise (issue 12, item 1): `BatchReport.requests` "equals what a server log would
    show"; resume.md: "`batch.adopt(task_id, request)` watches a task created earlier". The
    reads of an adopted task are requests of the batch."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    async with make(api, clock) as client, clock.running():
        task = await client.images.generate("made earlier")
        before = len(api.log)
        async with client.batch(max_in_flight=2) as batch:
            await batch.adopt(
                task.id, evolink.GenerationRequest(prompt="made earlier", model="gpt-image-2")
            )
            await batch.submit("a new one")
        report = batch.report()
        assert client.requests_sent == len(api.log)
    assert all(o.kind is OutcomeKind.COMPLETED for o in report.outcomes), report.counts
    assert report.requests == len(api.log) - before


@pytest.mark.parametrize(("flavour", "wait"), [("429", 3.0), ("429-date", 3.0), ("503", 2.0)])
async def test_retry_after_is_honoured_on_the_virtual_clock(flavour: str, wait: float) -> None:
    """Promise (RetryPolicy docstring): "A server's `Retry-After` is honoured up to
    `max_retry_after`" (seconds or an HTTP date, `_retry.parse_retry_after`). The create's
    resend must come no sooner than the server asked (on the client's VirtualClock)."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    times: list[float] = []
    api.create_rule = lambda n, k, b: flavour if n == 0 else "ok"
    api.on_create = lambda hit: times.append(clock.monotonic())
    async with make(api, clock) as client, clock.running():
        await client.images.generate("a red fox in snow")
    assert len(times) == 2
    assert times[1] - times[0] >= wait - 1.0  # an HTTP date has one-second resolution
