"""Security: the API key leaks nowhere, and the callback receiver trusts nothing unconfirmed.

Every path is driven with a distinctive key and a distinctive callback secret; everything
observable is captured (log records of every logger at DEBUG, formatted tracebacks, reprs,
stdout and stderr, the manifest, a dump of the journal, the gallery, every file written)
and searched for the key.
"""

# No `from __future__ import annotations`: FastAPI reads handler annotations at runtime.

import contextlib
import hmac
import json
import logging
import os
import sqlite3
import subprocess
import sys
import traceback
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI

import evolink.fastapi
from evolink import AsyncEvolink, EvolinkError, GenerationRequest, OutcomeKind
from evolink.fastapi import EvolinkIntegration
from evolink.testing import Faults, Fixed, Simulator, VirtualClock

KEY = "sk-evo-LEAKCANARY-7f3a9c1e5b2d46808e1f"
OTHER_KEY = "sk-evo-the-only-key-the-server-takes-0"
SECRET = "cb-secret-Zq8Xw3Lm9Pk2Rt7Yv4Nb6Hd1"
FAULTS = Faults(
    rate_limit=0.1,
    read_errors=0.1,
    create_errors=0.05,
    lost_create_response=0.1,
    malformed_json=0.05,
    task_failure=0.1,
)


class Capture(logging.Handler):
    """Every record of every logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Capture]:
    root = logging.getLogger()
    handler = Capture()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _formatted(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(vars(exc))


def _no_key(*texts: str) -> None:
    for text in texts:
        assert KEY not in text
        assert KEY[7:] not in text  # nor the key without its prefix


@pytest.mark.anyio
async def test_batch_and_errors_never_show_the_key(anyio_backend, captured):
    """A faulty batch, failed calls and every repr: the key is in no log, error or repr."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=11, durations=(1, 6), faults=FAULTS, api_keys={KEY})
    seen: list[str] = []
    async with (
        clock.running(),
        AsyncEvolink(
            api_key=KEY, base_url="https://sim.test", transport=sim.transport(), clock=clock
        ) as client,
    ):
        seen.append(repr(client))
        seen.append(repr(client._transport._auth))
        report = await client.images.generate_many(
            [GenerationRequest(prompt=f"secret check {i}", n=2) for i in range(40)],
            max_in_flight=8,
        )
        seen.extend(repr(o) for o in report.outcomes)
        seen.append(repr(report))
        for call in (
            lambda: client.tasks.get("task-unified-0000000000-missing"),
            lambda: client.tasks.get("not-a-task-id"),
            lambda: client.images.create(GenerationRequest(prompt=""), max_retries=0),
            lambda: client.images.create(GenerationRequest(prompt="x"), max_retries=0),
            client.credits,
        ):
            try:
                await call()
            except EvolinkError as exc:  # noqa: PERF203 - each call must fail on its own
                seen.append(_formatted(exc))
    async with AsyncEvolink(
        api_key=KEY, base_url="http://127.0.0.1:9", max_retries=0
    ) as offline:  # nothing listens on the discard port
        with pytest.raises(EvolinkError) as refused:
            await offline.tasks.get("task-unified-0000000000-missing")
        seen.append(_formatted(refused.value))
    assert report.counts[OutcomeKind.COMPLETED] > 0
    assert any("retrying" in line for line in captured.lines)  # DEBUG lines were captured
    assert len(seen) > 40
    _no_key(*seen, *captured.lines)
    # The simulator's own records hold the key redacted.
    _no_key(*(repr(r) for r in sim.requests), *(repr(e) for e in sim.ledger.entries))


def _cli(source: Path, out: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EVOLINK_API_KEY"}
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "evolink.cli",
            "batch",
            str(source),
            "--out",
            str(out),
            "--base-url",
            url,
            "--api-key",
            KEY,
            "--plain",
            *extra,
        ],
        env={**env, "PYTHONWARNINGS": "default"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _everything_written(out: Path) -> list[str]:
    texts = []
    for path in sorted(out.rglob("*")):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    journal = out / "journal.sqlite3"
    if journal.exists():
        with contextlib.closing(sqlite3.connect(journal)) as db:
            texts.append("\n".join(db.iterdump()))
    return texts


@pytest.mark.parametrize(
    "extra", [pytest.param((), id="plain"), pytest.param(("--json",), id="json")]
)
def test_cli_never_writes_the_key(tmp_path, captured, extra):
    """The CLI's output, manifest, journal, gallery and files hold no trace of the key."""
    sim = Simulator(
        seed=5,
        durations=Fixed(0.2),
        api_keys={KEY},
        faults=Faults(lost_create_response=0.2, task_failure=0.2, read_errors=0.1),
    )
    source = tmp_path / "prompts.txt"
    source.write_text("".join(f"a leak check {i}\n" for i in range(8)))
    out = tmp_path / "out"
    with sim.serve_in_thread() as url:
        result = _cli(source, out, url, *extra)
    assert result.returncode in {0, 1}, result.stderr
    if extra:
        assert isinstance(json.loads(result.stdout), dict)  # stdout is pure JSON
    manifest = (out / "manifest.jsonl").read_text().splitlines()
    assert 8 == len(manifest)
    assert (out / "index.html").exists()
    _no_key(result.stdout, result.stderr, *_everything_written(out), *captured.lines)


def test_cli_refused_key_is_not_echoed(tmp_path, captured):
    """A key the server refuses (401) is reported without showing it."""
    sim = Simulator(seed=5, durations=Fixed(0.2), api_keys={OTHER_KEY})
    source = tmp_path / "prompts.txt"
    source.write_text("one prompt\n")
    out = tmp_path / "out"
    with sim.serve_in_thread() as url:
        result = _cli(source, out, url, "--json")
    assert 0 != result.returncode
    assert 401 in {r.status for r in sim.requests}
    _no_key(result.stdout, result.stderr, *_everything_written(out), *captured.lines)


# -- the callback receiver -------------------------------------------------------------------


def _app(integration: EvolinkIntegration) -> FastAPI:
    app = FastAPI(lifespan=integration.lifespan)
    app.include_router(integration.callback_router)
    return app


def _integration(sim: Simulator, clock: VirtualClock) -> EvolinkIntegration:
    return EvolinkIntegration(
        public_url="https://my.app",
        secret=SECRET,
        client_factory=lambda: AsyncEvolink(
            api_key=KEY,
            base_url="https://sim.test",
            transport=sim.transport(),
            clock=clock,
            allow_local_callbacks=True,
        ),
    )


@pytest.mark.anyio
async def test_receiver_compares_tokens_in_constant_time(anyio_backend, monkeypatch):
    """Every token check goes through hmac.compare_digest; a wrong token is a 404."""
    clock = VirtualClock()
    sim = Simulator(clock=clock, durations=Fixed(5))
    integration = _integration(sim, clock)
    app = _app(integration)
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(evolink.fastapi.hmac, "compare_digest", spy)
    body = {"id": "task-unified-1757156493-imcg5zqt", "status": "completed"}
    async with (
        clock.running(),
        integration.lifespan(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://my.app") as web,
    ):
        wrong = [SECRET[:-1] + "x", SECRET[:-1], SECRET + "x", "", "x" * 300]
        answers = [
            (await web.post(f"{integration.path}/{token}", json=body)).status_code
            for token in wrong
            if token
        ]
        right = await web.post(integration.callback_url().removeprefix("https://my.app"), json=body)
    assert [404] * 4 == answers
    assert 202 == right.status_code
    assert 4 == integration.rejected
    assert 5 == len(calls)
    assert all(SECRET.encode() in pair for pair in calls)


@pytest.mark.anyio
async def test_receiver_never_settles_on_an_unconfirmed_body(anyio_backend, captured):
    """Forged, duplicated and late callbacks: `wait` returns only what a read confirmed."""
    clock = VirtualClock()
    holder: dict[str, FastAPI] = {}

    class LateApp:
        """The callbacks' ASGI target, known once the app exists."""

        async def __call__(self, scope, receive, send):
            await holder["app"](scope, receive, send)

    sim = Simulator(
        clock=clock,
        seed=4,
        durations=(10, 30),
        api_keys={KEY},
        allow_local_callbacks=True,
        callback_transport=httpx.ASGITransport(app=LateApp()),
        faults=Faults(callback_duplicate=0.5, callback_late=0.3, callback_late_by=20),
    )
    integration = _integration(sim, clock)
    app = holder["app"] = _app(integration)
    results: dict[str, tuple[str, float]] = {}
    async with (
        clock.running(),
        sim,
        integration.lifespan(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://my.app") as web,
    ):
        client = integration.client()
        tasks = [
            await client.images.create(
                GenerationRequest(prompt=f"hook {i}", callback_url=integration.callback_url())
            )
            for i in range(12)
        ]
        path = integration.callback_url().removeprefix("https://my.app")
        for task in tasks:
            # A forged ending, at once, long before the task can be done.
            forged = {"id": task.id, "status": "completed", "results": ["https://evil.example/x"]}
            assert 202 == (await web.post(path, json=forged)).status_code

        async def wait(task_id: str) -> None:
            done = await integration.wait(task_id, timeout=300)
            assert all("evil.example" not in url for url in done.results)
            results[task_id] = (done.status.value, clock.time())

        async with anyio.create_task_group() as tg:
            for task in tasks:
                tg.start_soon(wait, task.id)
    assert len(tasks) == len(results)
    for task_id, (status, when) in results.items():
        truth = sim.task(task_id)
        assert truth.final_status.value == status
        assert when >= truth.ends_at
    assert integration.deliveries >= len(tasks) * 2  # the forged ones and the real ones
    assert any(attempt.duplicate for attempt in sim.callbacks)
    assert Decimal(0) == sim.ledger.outstanding
    _no_key(*captured.lines)
    assert all(SECRET not in line for line in captured.lines if line.startswith("evolink"))
