"""Bad input, fuzzed: hostile JSON, garbage servers, broken prompt files, hostile image URLs.

Whatever comes in, the SDK answers with a typed `EvolinkError` or a tolerant parse, a batch
gives every input one outcome, a prompt file gives line-numbered errors, and the CLI's
downloader refuses what it must within its limits, inside the output folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from _figures import record
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from evolink import AsyncEvolink, EvolinkError, GenerationRequest, OutcomeKind, Task
from evolink._converter import parse_task
from evolink._downloads import Downloader, DownloadError
from evolink._errors import ResponseDecodeError
from evolink.cli._input import Defaults, InputError, read_prompt_file, rows_from_fields
from evolink.cli._run import RunConfig, run_batch
from evolink.cli._view import PlainView
from evolink.fastapi import _task_id_of
from evolink.testing import TEST_API_KEY, Faults, Simulator, VirtualClock

SOAK = "EVOLINK_SOAK_PROMPTS" in os.environ
EXAMPLES = 2000 if SOAK else 150
FEW = 300 if SOAK else 30
EXAMPLES_RUN: Counter[str] = Counter()
DEEP = b"[" * 100_000

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
TASK_FIELDS = (
    "id",
    "status",
    "progress",
    "created",
    "model",
    "object",
    "type",
    "task_info",
    "usage",
    "results",
    "error",
)
VALID_TASK: dict[str, Any] = {
    "created": 1757156493,
    "id": "task-unified-1757156493-imcg5zqt",
    "model": "gpt-4o-image",
    "object": "image.generation.task",
    "progress": 100,
    "status": "completed",
    "task_info": {"can_cancel": False, "estimated_time": 100},
    "type": "image",
    "usage": {"billing_rule": "per_call", "credits_reserved": 2.5, "user_group": "default"},
    "results": ["https://cdn.example/a.png"],
}
# Task-shaped payloads with fields replaced, dropped or added: closer to what a server
# that drifted would send than wholly random JSON.
task_like = st.builds(
    lambda replace, drop, extra: {
        **{k: v for k, v in VALID_TASK.items() if k not in drop},
        **replace,
        **extra,
    },
    st.dictionaries(st.sampled_from(TASK_FIELDS), json_values, max_size=4),
    st.sets(st.sampled_from(TASK_FIELDS), max_size=3),
    st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)


def _count(name: str) -> None:
    EXAMPLES_RUN[name] += 1


@pytest.fixture(scope="module", autouse=True)
def _figures():
    EXAMPLES_RUN.clear()
    yield
    record("fuzz", dict(EXAMPLES_RUN))


def _parses_or_decode_error(data: Any) -> Task | None:
    try:
        task = parse_task(data)
    except ResponseDecodeError:
        return None
    assert isinstance(task, Task)
    assert isinstance(task.id, str)
    return task


@settings(max_examples=EXAMPLES)
@given(json_values)
def test_parser_takes_any_json(data):
    """Any JSON value parses as a task or raises ResponseDecodeError, nothing else."""
    _count("parser_random_json")
    _parses_or_decode_error(data)


@settings(max_examples=EXAMPLES)
@given(task_like)
def test_parser_takes_drifted_tasks(data):
    """A task with wrong types, missing fields or extras parses or raises ResponseDecodeError."""
    _count("parser_drifted_task")
    task = _parses_or_decode_error(data)
    if task is not None and isinstance(data.get("status"), str):
        # Unknown statuses are tolerated and kept readable.
        assert data["status"] == task.status.value


def _nested(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({**VALID_TASK, "status": "paused"}, id="unknown-status"),
        pytest.param({**VALID_TASK, "type": "hologram"}, id="unknown-type"),
        pytest.param({**VALID_TASK, "usage": {"billing_rule": "per_dream"}}, id="unknown-billing"),
        pytest.param({**VALID_TASK, "deep": json.loads("[" * 500 + "]" * 500)}, id="nested-extra"),
        pytest.param({**VALID_TASK, "task_info": _nested(5000)}, id="deep-task-info"),
        pytest.param({**VALID_TASK, "huge": "x" * 5_000_000}, id="huge-extra"),
        pytest.param({**VALID_TASK, "results": ["u"] * 100_000}, id="huge-results"),
    ],
)
def test_parser_tolerates(data):
    """Unknown enums, deep or huge unknown fields and long lists parse."""
    assert data["id"] == parse_task(data).id


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({**VALID_TASK, "status": 3}, id="status-int"),
        pytest.param({**VALID_TASK, "id": None}, id="id-null"),
        pytest.param({**VALID_TASK, "results": "https://x"}, id="results-string"),
        pytest.param({**VALID_TASK, "usage": {"credits_reserved": "NaN"}}, id="credits-nan"),
        pytest.param({**VALID_TASK, "usage": {"credits_reserved": 1e400}}, id="credits-inf"),
        pytest.param({**VALID_TASK, "created": True}, id="created-bool"),
        pytest.param([VALID_TASK], id="list"),
        pytest.param("task", id="string"),
    ],
)
def test_parser_refuses_with_a_typed_error(data):
    """Wrong types are a ResponseDecodeError (an EvolinkError), never a raw exception."""
    with pytest.raises(ResponseDecodeError):
        parse_task(data)


@pytest.mark.anyio
async def test_json_nested_absurdly_deep_is_a_typed_error(anyio_backend):
    """A response body of 100,000 '[' is a ResponseDecodeError, not a RecursionError."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=DEEP))
    async with AsyncEvolink(
        api_key="sk-evo-x", base_url="https://a.test", transport=transport
    ) as c:
        with pytest.raises(ResponseDecodeError):
            await c.tasks.get("task-unified-1-abc")


hostile_bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    task_like.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"\xff\xfe\x00",
            b"<html>502 Bad Gateway</html>",
            b'{"error": {"code": {"nested": 1}, "message": ["x"]}}',
            b'{"error": "string"}',
            b'{"data": [1, 2, 3]}',
            b"[" * 200 + b"]" * 200,
            b'{"id": "' + b"a" * 2_000_000 + b'"}',
        ]
    ),
)


def _is_no_task(body: bytes) -> bool:
    try:
        parse_task(json.loads(body))
    except (ValueError, ResponseDecodeError):
        return True
    return False


# For whole batches: hostile, but never a well-formed task under another id (a read
# answered with another task's body is reported separately).
garbage_bodies = hostile_bodies.filter(_is_no_task)
statuses = st.sampled_from([200, 201, 204, 301, 400, 401, 402, 403, 404, 409, 413, 429, 500, 502])


async def _client_calls(status: int, body: bytes, headers: dict[str, str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    async with AsyncEvolink(
        api_key=TEST_API_KEY,
        base_url="https://api.test",
        transport=httpx.MockTransport(handler),
        max_retries=0,
    ) as client:
        for call in (
            lambda: client.tasks.get("task-unified-1757156493-imcg5zqt"),
            lambda: client.images.create(
                GenerationRequest(prompt="a fox"), idempotency_key="k" * 20
            ),
            client.credits,
        ):
            with contextlib.suppress(EvolinkError):  # typed errors are the point
                await call()


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    statuses,
    hostile_bodies,
    st.dictionaries(
        st.sampled_from(["Retry-After", "Content-Type", "X-Request-Id", "Content-Encoding"]),
        st.sampled_from(["1", "-5", "nan", "Wed, 21 Oct 2015 07:28:00 GMT", "gzip", "x" * 300]),
        max_size=3,
    ),
)
def test_client_answers_garbage_with_typed_errors(status, body, headers):
    """Reads, creates and credits over a garbage server raise EvolinkErrors only."""
    _count("client_hostile_answers")
    anyio.run(_client_calls, status, body, headers)


async def _batch_over(answers: list[tuple[int, bytes]], share: float, seed: int, prompts: int):
    clock = VirtualClock()
    sim = Simulator(clock=clock, seed=seed, durations=(1, 5), faults=Faults(task_failure=0.1))
    inner = sim.transport()
    served = Counter[str]()
    draw = iter(range(10**9))

    class Garbled(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            turn = next(draw)
            # Deterministic share of garbage, so reads do get through in the end.
            if (turn * 0.618) % 1.0 < share:
                status, body = answers[turn % len(answers)]
                served["garbage"] += 1
                return httpx.Response(status, content=body)
            served["real"] += 1
            return await inner.handle_async_request(request)

    with anyio.fail_after(30):  # real seconds: a hang fails instead of stalling CI
        return await _run_garbled(clock, sim, Garbled(), prompts, served)


async def _run_garbled(clock, sim, transport, prompts, served):
    async with (
        clock.running(),
        AsyncEvolink(
            api_key=TEST_API_KEY,
            base_url="https://sim.test",
            transport=transport,
            clock=clock,
            max_retries=1,
        ) as client,
    ):
        report = await client.images.generate_many(
            [f"garbage prompt {i}" for i in range(prompts)], max_in_flight=4
        )
    return sim, report, served


@settings(max_examples=FEW, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([200, 400, 404, 500, 429]), garbage_bodies), min_size=1),
    st.sampled_from([0.2, 0.5, 1.0]),
    st.integers(0, 1000),
)
def test_batch_over_a_garbage_server_gives_every_input_an_outcome(answers, share, seed):
    """A batch against a server answering garbage ends with one outcome per input, no raise."""
    # A server answering nothing but 429 is retried without end (reported separately).
    assume(share < 1.0 or any(status != 429 for status, _ in answers))
    _count("batch_garbage_server")
    sim, report, _ = anyio.run(_batch_over, answers, share, seed, 6)
    assert list(range(6)) == [o.index for o in report.outcomes]
    if share == 1.0:
        # Nothing real ever answered: no task was made, nothing can be completed.
        assert 0 == len(sim.tasks)
        assert 0 == report.counts[OutcomeKind.COMPLETED]
    # Whatever was counted complete, the server made.
    for outcome in report.completed:
        assert sim.task(outcome.task_id).images == len(outcome.results)


# -- prompt files ----------------------------------------------------------------------------

line_pieces = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            '{"prompt": "fox"}',
            '{"prompt": ',
            "[1, 2]",
            '"just text"',
            '{"prompt": "x", "n": 3}',
            '{"prompt": 5}',
            '"a","b',
            "prompt,size",
            "a fox,1:1",
            'a "quoted, fox",2:3',
            "#comment",
            "",
            "\ufeff",
            "\x00",
        ]
    ),
)


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(line_pieces, max_size=12),
    st.sampled_from(["p.txt", "p.jsonl", "p.csv"]),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.one_of(st.none(), st.binary(min_size=1, max_size=4)),
)
def test_prompt_files_give_rows_or_line_numbered_errors(tmp_path, lines, name, newline, junk):
    """Any prompt file reads into rows (invalid ones with a line) or a located InputError."""
    _count("prompt_files")
    raw = newline.join(lines).encode("utf-8", "surrogatepass")
    if junk is not None:
        raw += junk  # maybe broken UTF-8
    path = tmp_path / name
    path.write_bytes(raw)
    try:
        prompts = read_prompt_file(path, Defaults())
    except InputError as exc:
        error = str(exc)
    else:
        error = None
    if error is not None:
        assert error.startswith(f"{path}:")
        line = int(error.split(":")[1])
        assert 1 <= line <= raw.count(b"\n") + raw.count(b"\r") + 1
        return
    total_lines = max(1, len(raw.decode("utf-8-sig").splitlines()))
    for index, row in enumerate(prompts.rows):
        assert index == row.index
        assert 1 <= row.line <= total_lines
        assert row.valid == (row.error is None)


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        pytest.param("p.txt", b"ok\nok\n\xc3\x28bad\n", 3, id="txt-bad-utf8-line-3"),
        pytest.param("p.jsonl", b'{"prompt":"a"}\n\xff\n', 2, id="jsonl-bad-byte"),
        pytest.param("p.csv", b"prompt\nfox\ncat\n\x80\n", 4, id="csv-bad-byte"),
        pytest.param("p.txt", b"a\n" + b"x" * 1_000_001 + b"\n", 2, id="huge-line"),
    ],
)
def test_broken_encodings_and_huge_lines_name_their_line(tmp_path, name, content, line):
    """Undecodable bytes and over-long lines are an InputError naming file and line."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=rf"^{path}:{line}: "):
        read_prompt_file(path, Defaults())


@pytest.mark.parametrize(
    ("name", "content", "bad_lines"),
    [
        pytest.param("p.jsonl", '{"prompt":"a"}\n{"prompt":\n[3]\n"b"\n', [2, 3], id="jsonl"),
        pytest.param("p.csv", 'prompt,n\na,1\nb\nc,2,3\nd,11\n"e,1\n', [3, 4, 5, 6], id="csv"),
        pytest.param("p.jsonl", '{"n": 2}\n{"prompt": ""}\n', [1, 2], id="jsonl-invalid"),
    ],
)
def test_malformed_rows_are_rejected_with_their_line(tmp_path, name, content, bad_lines):
    """Malformed JSONL/CSV rows become invalid rows carrying their own line numbers."""
    path = tmp_path / name
    path.write_text(content)
    assert bad_lines == [row.line for row in read_prompt_file(path, Defaults()).invalid]


def test_deep_json_in_a_prompt_file_or_callback_is_refused(tmp_path):
    """A JSONL line or a callback body nested too deeply is an input error, not a crash."""
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(b'{"prompt": "ok"}\n' + DEEP + b"\n")
    rows = read_prompt_file(path, Defaults()).rows
    assert [True, False] == [row.valid for row in rows]
    assert (2, "not valid JSON (nested too deeply)") == (rows[1].line, rows[1].error)
    assert _task_id_of(DEEP) is None


# -- result URLs -----------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("ftp://cdn.example/a.png", id="ftp"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("data:image/png;base64,iVBORw0KGgo=", id="data"),
    ],
)
async def test_downloader_refuses_non_http_urls(anyio_backend, tmp_path, url):
    """A result URL that is not http(s) is refused; nothing is written."""
    async with httpx.AsyncClient(follow_redirects=True) as client:
        downloader = Downloader(client=client, folder=tmp_path, backoff=0.001, attempts=2)
        with pytest.raises(DownloadError):
            await downloader.fetch(url, "0001-x-1")
    assert [] == list(tmp_path.iterdir())


@pytest.mark.anyio
# asyncio only: under trio, httpx's own stream generators warn when a body is cut short.
@pytest.mark.parametrize("anyio_backend", [pytest.param("asyncio", id="asyncio")])
@pytest.mark.parametrize(
    "declared", [pytest.param(True, id="declared"), pytest.param(False, id="streamed")]
)
async def test_downloader_stops_an_endless_body(anyio_backend, tmp_path, declared):
    """A body that never ends (or says it is huge) is cut at max_bytes, leaving no file."""
    sent = Counter[str]()

    async def endless():
        while True:
            sent["chunks"] += 1
            yield b"\x89PNG" + b"\0" * 65_532

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": "image/png"}
        if declared:
            headers["Content-Length"] = str(10**12)
        return httpx.Response(200, headers=headers, content=endless())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        downloader = Downloader(client=client, folder=tmp_path, max_bytes=1_000_000)
        with pytest.raises(DownloadError, match="limit"):
            await downloader.fetch("https://cdn.example/a.png", "0001-x-1")
    assert sent["chunks"] <= 1_000_000 // 65_536 + 2
    assert [] == list(tmp_path.iterdir())


HOSTILE_PROMPTS = [
    "../../../../etc/passwd",
    "/absolute/path/image",
    "..\\..\\windows\\system32",
    "\x00nul\x00byte",
    "~/.ssh/authorized_keys",
    "CON",
    ".",
    "..",
    "a/" * 500,
    "%2e%2e%2fescaped",
    "🍮" * 50,
]


def test_prompts_cannot_steer_file_names_out_of_the_folder(tmp_path):
    """A real run with hostile prompts writes every image directly in the output folder."""
    out = tmp_path / "out"

    async def main():
        sim = Simulator(seed=3, durations=(0.01, 0.05))
        async with (
            AsyncEvolink(
                api_key=TEST_API_KEY, base_url="https://sim.test", transport=sim.transport()
            ) as client,
            httpx.AsyncClient(transport=sim.transport()) as images,
        ):
            prompts = rows_from_fields([{"prompt": p} for p in HOSTILE_PROMPTS], Defaults())
            return await run_batch(
                client, images, prompts, RunConfig(out=out, title="t"), PlainView(io.StringIO())
            )

    summary = anyio.run(main)
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert all(out == p.parent for p in written)
    pngs = [p for p in written if p.suffix == ".png"]
    ok = [r for r in summary.results if r.status == "completed"]
    assert len(ok) == len(pngs)
    assert len({p.name for p in pngs}) == len(pngs)
    assert all(Path(f).name == f for r in summary.results for f in r.files)
