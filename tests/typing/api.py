"""The public API as users write it: never run, only type-checked by `mypy --strict`.

This file is listed in `[tool.mypy] files`; a change to a public signature that breaks
ordinary use fails the type check here (the pattern of stamina's `tests/typing/api.py`).
It is not named `test_*.py`, so pytest never collects it.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from typing_extensions import assert_type

import evolink
from evolink import (
    APIError,
    AsyncEvolink,
    Credits,
    Evolink,
    GenerationRequest,
    RateLimitError,
    RetryPolicy,
    SavedImage,
    SubmissionUncertainError,
    Task,
    TaskFailedError,
    TaskStatus,
    ValidationError,
    WaitTimeoutError,
)
from evolink.testing import VirtualClock


async def generate_and_wait() -> list[str]:
    async with AsyncEvolink() as client:
        task: Task = await client.images.generate("a red fox in snow", size="1:1", n=2)
        task = await client.tasks.get(task.id)
        done: Task = await client.tasks.wait(task, timeout=300)
        again: Task = await client.tasks.wait(done.id, raise_on_failure=True)
        reserved: Decimal | None = again.credits_reserved
        if done.usage is not None:
            reserved = done.usage.credits_reserved
        assert reserved is None or reserved >= 0
        return list(done.results)


async def every_option() -> Task:
    clock = VirtualClock()
    async with clock.running():
        client = AsyncEvolink(
            api_key="sk-evo-example",
            base_url="http://127.0.0.1:8000",
            timeout=httpx.Timeout(30.0, connect=5.0),
            max_retries=0,
            max_connections=8,
            transport=httpx.MockTransport(lambda _: httpx.Response(200)),
            clock=clock,
            allow_local_callbacks=True,
            retry_policy=RetryPolicy(max_retries=1, initial_delay=0.1, max_delay=1.0),
        )
        try:
            return await client.images.generate(
                "a cat",
                model="gpt-4o-image",
                size="1024x1536",
                n=4,
                image_urls=["https://img.example/ref.png"],
                mask_url="https://img.example/mask.png",
                callback_url="http://127.0.0.1:9000/hook",
                extra_body={"seed": 42, "quality": "high"},
                idempotency_key="my-order-000000000001",
                max_retries=3,
            )
        finally:
            await client.aclose()


async def borrowed_client(http: httpx.AsyncClient) -> Credits:
    client = AsyncEvolink(api_key="sk-evo-example", http_client=http, timeout=10.0)
    credits_ = await client.credits()
    remaining: Decimal | None = credits_.remaining_credits
    if credits_.token is not None:
        remaining = credits_.token.remaining_credits
    assert remaining is not None
    await client.aclose()
    closed: bool = client.is_closed
    assert closed
    return credits_


async def prepared_request(client: AsyncEvolink) -> Task:
    request = GenerationRequest(prompt="a fox", n=2, image_urls=("https://x/y.png",))
    body: dict[str, object] = request.to_body()
    assert body
    return await client.images.create(request, idempotency_key="my-order-000000000002")


async def handling_errors(client: AsyncEvolink) -> Task | None:
    try:
        task = await client.images.generate("a fox")
        return await client.tasks.wait(task, timeout=60, raise_on_failure=True)
    except ValidationError as exc:
        field: str = exc.field
        rule: str = exc.rule
        print(field, rule)  # noqa: T201
    except SubmissionUncertainError as exc:
        key: str = exc.idempotency_key
        request: GenerationRequest = exc.request
        return await client.images.create(request, idempotency_key=key)
    except RateLimitError as exc:
        after: float | None = exc.retry_after
        print(after)  # noqa: T201
    except APIError as exc:
        status: int = exc.status_code
        code: str | int | None = exc.code
        request_id: str | None = exc.request_id
        print(status, code, request_id, exc.message, exc.type, exc.body)  # noqa: T201
    except TaskFailedError as exc:
        failed: Task = exc.task
        retryable: bool = exc.retryable
        print(failed.error, exc.code, retryable)  # noqa: T201
    except WaitTimeoutError as exc:
        last: Task = exc.task
        print(last.progress, exc.timeout)  # noqa: T201
    except evolink.EvolinkError:
        raise
    return None


def statuses(task: Task) -> bool:
    status: TaskStatus = task.status
    known: bool = status.is_known
    return known and task.is_terminal and not task.is_success and status.is_terminal


version: str = evolink.__version__


async def batches(client: AsyncEvolink, prompts: list[str]) -> Decimal:
    report: evolink.BatchReport = await client.images.generate_many(
        prompts, max_in_flight=32, max_credits=500, retry_failed=1
    )
    for outcome in report.outcomes:
        kind: evolink.OutcomeKind = outcome.kind
        urls: tuple[str, ...] = outcome.results
        print(kind, urls, outcome.credits.charged)  # noqa: T201

    def show(progress: evolink.BatchProgress) -> None:
        print(progress.completed, progress.eta)  # noqa: T201

    async with client.batch(max_in_flight=8, on_progress=show, size="1:1") as batch:
        for prompt in prompts:
            index: int = await batch.submit(prompt)
            print(index)  # noqa: T201
        await batch.submit(GenerationRequest(prompt="an owl", n=2))
        async for done in batch.as_completed():
            print(done.index, done.kind)  # noqa: T201
    ledger: evolink.CreditLedger = batch.ledger
    return ledger.reserved - ledger.charged - ledger.released


async def one_call_to_a_result(client: AsyncEvolink) -> list[Path]:
    done = await client.images.run("a red fox in snow", size="1:1", n=2, timeout=300)
    assert_type(done, Task)
    paths = await client.tasks.save(done, "out", name="fox", on_progress=print)
    assert_type(paths, list[Path])
    return paths


def blocking(prompts: list[str]) -> Decimal | None:
    with Evolink(api_key="sk-evo-example", max_retries=1) as client:
        done = client.images.run("a red fox in snow", timeout=300)
        assert_type(done, Task)
        created = client.images.generate("an owl", n=2)
        assert_type(created, Task)
        assert_type(client.tasks.get(created.id), Task)
        assert_type(client.tasks.wait(created, timeout=60, raise_on_failure=True), Task)
        assert_type(client.tasks.save(done, Path("out")), list[Path])
        assert_type(client.credits(), Credits)

        def show(progress: evolink.BatchProgress) -> None:
            print(progress.completed)  # noqa: T201

        report = client.images.generate_many(prompts, max_in_flight=8, on_progress=show)
        assert_type(report, evolink.BatchReport)
    closed: bool = client.is_closed
    assert closed
    return done.credits_reserved


def json_ready(task: Task, report: evolink.BatchReport, saved: SavedImage) -> str:
    data: dict[str, Any] = task.to_dict()
    again = Task.from_dict(data)
    assert_type(again, Task)
    assert_type(evolink.BatchReport.from_dict(report.to_dict()), evolink.BatchReport)
    assert_type(evolink.Outcome.from_dict(report.outcomes[0].to_dict()), evolink.Outcome)
    assert_type(Credits.from_dict({}), Credits)
    assert_type(SavedImage.from_dict(saved.to_dict()), SavedImage)
    return task.to_json(indent=2) + report.to_json()


def download_errors(exc: evolink.DownloadError) -> bool:
    return exc.transient and isinstance(exc, evolink.EvolinkError)


async def platform_services(path: Path) -> None:
    async with AsyncEvolink() as client:
        models = await client.models.list(kind="video")
        assert_type(models, tuple[evolink.ModelInfo, ...])
        assert_type(await client.models.get("gpt-image-2"), evolink.ModelInfo | None)
        cost = await client.estimate([GenerationRequest(prompt="a fox"), "an owl"])
        assert_type(cost, evolink.CostEstimate)
        assert_type(await client.estimate.check_balance("a fox"), evolink.CostEstimate)
        ref = await client.files.upload(path)
        assert_type(ref, evolink.UploadedFile)
        assert_type(await client.files.quota(), evolink.FileQuota)
        assert_type(await client.files.list(page=2), evolink.FilePage)
        assert_type(await client.files.uploads.url_for(path), str)
        await client.files.delete(ref.file_id)
        async for task in client.tasks.list(status=TaskStatus.PROCESSING, limit=10):
            assert_type(task, Task)
        try:
            await client.files.upload(b"...")
        except evolink.UploadUncertainError as exc:
            assert_type(exc.idempotency_key, str)
        except evolink.ModelRetiredError as exc:
            assert_type(exc.replacement, str | None)


async def local_reference_images(client: AsyncEvolink, path: Path) -> Task:
    # A local file goes where a URL does: `image_urls`, `mask_url`, on every door.
    request = GenerationRequest(prompt="the product", image_urls=[path, "https://x/y.png"])
    masked = GenerationRequest(prompt="the product", image_urls=[path], mask_url=path)
    report = await client.images.generate_many([request, masked])
    assert report.ok
    await client.videos.generate("the product turning", model="sora-2-preview", image_urls=[path])
    return await client.images.generate("the product", image_urls=[path], mask_url=path)


def blocking_local_reference_images(path: Path) -> Task:
    with Evolink() as client:
        return client.images.run("the product", model="gpt-image-2", image_urls=[path])


def blocking_platform_services(path: Path) -> None:
    with Evolink() as client:
        assert_type(client.estimate(["a fox"]), evolink.CostEstimate)
        assert_type(client.files.upload(path), evolink.UploadedFile)
        assert_type(client.models.list(kind="audio"), tuple[evolink.ModelInfo, ...])
        for task in client.tasks.list(status="processing"):
            assert_type(task, Task)


async def resumable(client: AsyncEvolink, prompts: list[str], store: evolink.JournalStore) -> int:
    report = await client.images.generate_many(prompts, journal="runs.sqlite3", run="nightly")
    resumed: bool = report.outcomes[0].resumed
    async with evolink.SQLiteJournal.open(Path("runs.sqlite3")) as journal:
        async with client.batch(journal=journal, run="owls", resume_failed=True) as batch:
            await batch.submit("an owl", journal_index=3)
        entries = await journal.entries("owls")
        status: evolink.EntryStatus = entries[3].status
        print(status, resumed)  # noqa: T201
    async with client.batch(journal=store) as batch:
        await batch.submit_all(prompts)
    return len(batch.report())


async def on_many_machines(client: AsyncEvolink, prompts: list[str]) -> Decimal:
    report = await client.images.generate_many(prompts, journal="postgresql://db/evolink")
    async with await evolink.PostgresJournal.open("postgresql://db/evolink") as journal:
        credits_: evolink.SharedCredits = await evolink.PostgresCredits.open(
            journal.pool, "nightly", Decimal(500)
        )
        brake: evolink.SharedBrake = evolink.PostgresBrake(journal.pool, "nightly")
        async with client.batch(
            journal=journal, run="nightly", shared_credits=credits_, shared_brake=brake
        ) as batch:
            for index, prompt in enumerate(prompts):
                await batch.submit(prompt, journal_index=index)
        held, budget = await evolink.PostgresCredits(journal.pool, "nightly").committed()
    return held + (budget or 0) + len(report)
