"""Attack12: the key never leaks; bad input is refused before any HTTP request; layering.

Promises: reliability.md (Security row; defect #5), architecture.md ("the API key exists as
a plain string only inside `_BearerAuth.auth_flow`"; validation "before any request"),
issue 12 item 4 (no import cycles, enforced by import-linter).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from _hostile_api import API, KEY, HostileAPI

import evolink
from evolink import AsyncEvolink, GenerationRequest, OutcomeKind
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def make(api: HostileAPI, clock: VirtualClock, **kw: object) -> AsyncEvolink:
    return AsyncEvolink(api_key=KEY, base_url=API, transport=api.transport(), clock=clock, **kw)  # type: ignore[arg-type]


def _all_text(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for v in vars(exc).values():
        parts.append(repr(v))
    return "\n".join(parts)


@pytest.mark.parametrize("where", ["create", "read"])
async def test_key_quoted_back_in_401_never_surfaces(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Promise (reliability.md, defect #5): "a 401 quoting the key ... every answer's body has
    the client's own key replaced by `***` before anything reads it"; the Security row: the
    key in no log record (DEBUG), formatted traceback or repr."""
    caplog.set_level(logging.DEBUG)
    clock = VirtualClock()
    api = HostileAPI(clock)
    async with make(api, clock) as client, clock.running():
        if where == "create":
            api.create_rule = lambda n, k, b: "401"
            with pytest.raises(evolink.AuthenticationError) as info:
                await client.images.generate("a red fox in snow")
        else:
            task = await client.images.generate("a red fox in snow")
            api.read_rule = lambda n, tid: "401"
            with pytest.raises(evolink.AuthenticationError) as info:
                await client.tasks.get(task.id)
        assert KEY not in repr(client)
    assert KEY not in _all_text(info.value)
    assert KEY not in caplog.text
    assert all(KEY not in r.getMessage() for r in caplog.records)


async def test_key_quoted_in_5xx_and_task_errors_not_in_report_logs_or_journal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Promise (reliability.md, Security): "the key in no log record (all loggers, DEBUG) ...
    repr ... journal dump"; defect #5: "task error messages also have any `sk-…` secret
    masked". Creates and reads answer 500s quoting the key first; tasks then fail with a
    message quoting it; the run uses an SQLite journal file."""
    caplog.set_level(logging.DEBUG)
    clock = VirtualClock()
    api = HostileAPI(clock)
    api.fail_tasks = True
    api.create_rule = lambda n, k, b: "503" if n % 3 == 0 else "ok"
    api.read_rule = lambda n, tid: "500" if n % 2 == 0 else "ok"
    api.batch_mode = "500"
    path = tmp_path / "runs.sqlite3"
    async with make(api, clock) as client, clock.running():
        report = await client.images.generate_many(
            [f"p{i}" for i in range(4)], max_in_flight=2, journal=str(path), run="r"
        )
    assert all(o.kind is OutcomeKind.FAILED for o in report.outcomes), report.counts
    assert KEY not in report.to_json()
    assert KEY not in repr(report)
    assert all(KEY not in repr(o) for o in report.outcomes)
    assert all(KEY not in (o.error_message or "") for o in report.outcomes)
    assert KEY not in caplog.text
    for f in tmp_path.iterdir():  # noqa: ASYNC240 - a test's own small files
        assert KEY.encode() not in f.read_bytes(), f.name


async def test_key_not_in_uncertain_error(caplog: pytest.LogCaptureFixture) -> None:
    """Promise (reliability.md, Security): the key in no error/traceback. A create whose
    answers are 500s quoting the key ends SubmissionUncertainError: it must not carry it."""
    caplog.set_level(logging.DEBUG)
    clock = VirtualClock()
    api = HostileAPI(clock, honour_keys=False)
    api.create_rule = lambda n, k, b: "500"
    async with make(api, clock) as client, clock.running():
        with pytest.raises(evolink.SubmissionUncertainError) as info:
            await client.images.generate("a red fox in snow")
    assert KEY not in _all_text(info.value)
    assert KEY not in caplog.text


# -- bad input refused before any request ----------------------------------------------------

BAD_GENERATE = [
    pytest.param({"prompt": "   "}, id="blank-prompt"),
    pytest.param({"prompt": "x", "n": 0}, id="n-zero"),
    pytest.param({"prompt": "x", "n": -3}, id="n-negative"),
    pytest.param({"prompt": "x", "n": 11}, id="n-eleven"),
    pytest.param({"prompt": "x", "size": "banana"}, id="bad-size"),
    pytest.param({"prompt": "x", "idempotency_key": "short"}, id="short-key"),
    pytest.param(
        {"prompt": "x", "idempotency_key": "has spaces in it, lots of them"}, id="key-spaces"
    ),
    pytest.param({"prompt": "x", "image_urls": ["file:///etc/passwd"]}, id="file-url"),
    pytest.param({"prompt": "x", "callback_url": "http://example.com/cb"}, id="http-callback"),
    pytest.param({"prompt": "x", "callback_url": "https://127.0.0.1/cb"}, id="loopback-callback"),
    pytest.param(
        {"prompt": "x", "callback_url": "https://hooks.internal/cb"}, id="internal-callback"
    ),
    pytest.param({"prompt": "x", "callback_url": "https://printer.local/cb"}, id="local-callback"),
    pytest.param({"prompt": "x", "callback_url": "https://100.64.0.1/cb"}, id="cgnat-callback"),
    pytest.param(
        {"prompt": "x", "callback_url": "https://example.com/" + "a" * 2100}, id="long-callback"
    ),
    pytest.param({"prompt": "x", "model": "gpt-image-2", "quality": "ultra-mega"}, id="bad-param"),
]


@pytest.mark.parametrize("kwargs", BAD_GENERATE)
async def test_bad_input_refused_before_any_request(kwargs: dict) -> None:
    """Promise: "Raises: ValidationError: the request breaks a documented rule (nothing was
    sent)" (Images.generate docstring); architecture.md: "validation before any request";
    fastapi.md: callback URLs must be "HTTPS and public (the API refuses internal addresses,
    and so does the SDK's validation)"; simulator.md lists the same rules (issue 12, item 5
    "settles today's disagreement by the docs": hooks.internal, printer.local, 100.64.0.1)."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    async with make(api, clock) as client, clock.running():
        kwargs = dict(kwargs)
        prompt = kwargs.pop("prompt")
        with pytest.raises(evolink.ValidationError):
            await client.images.generate(prompt, **kwargs)
        assert client.requests_sent == 0
    assert api.log == []


async def test_bad_task_id_refused_before_any_request() -> None:
    """Promise (reliability.md, defect #11): "a task id must match
    `task-unified-[A-Za-z0-9._~:-]+` wherever it enters" -- `tasks.get` of a path-traversing
    id sends nothing (a typed error, no `GET /v1/credits`)."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    async with make(api, clock) as client, clock.running():
        for bad in ["task-unified-1/../../credits", "../credits", "task-unified-", "x" * 5]:
            with pytest.raises(evolink.EvolinkError):
                await client.tasks.get(bad)
    assert api.log == []


async def test_bad_inputs_in_a_batch_are_rejected_unsent() -> None:
    """Promise (Batch.submit docstring): "Invalid input becomes a `rejected` outcome, not an
    exception: nothing is sent for it"; every input ends in one outcome (README)."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    items: list[object] = [
        "a fine prompt",
        "   ",
        GenerationRequest(prompt="x", model="gpt-image-2", n=0),
        GenerationRequest(
            prompt="y", model="gpt-image-2", callback_url="https://hooks.internal/cb"
        ),
        "another fine prompt",
    ]
    async with make(api, clock) as client, clock.running():
        report = await client.images.generate_many(items, max_in_flight=2)  # type: ignore[arg-type]
        sent = client.requests_sent
    kinds = [o.kind for o in report.outcomes]
    assert [o.index for o in report.outcomes] == list(range(len(items)))
    assert kinds[1:4] == [OutcomeKind.REJECTED] * 3, kinds
    assert kinds[0] is kinds[4] is OutcomeKind.COMPLETED
    assert {h.body["prompt"] for h in api.creates} == {"a fine prompt", "another fine prompt"}
    assert report.requests == sent == len(api.log)


@pytest.mark.parametrize(
    "opts",
    [
        {"max_in_flight": 0},
        {"max_credits": -1},
        {"retry_failed": -1},
        {"task_deadline": 0},
        {"run": ""},
    ],
)
async def test_bad_batch_options_refused_before_any_request(opts: dict) -> None:
    """Promise (AsyncEvolink.batch / generate_many docstrings): "ValidationError: an option
    is out of range"; nothing is sent."""
    clock = VirtualClock()
    api = HostileAPI(clock)
    async with make(api, clock) as client, clock.running():
        with pytest.raises(evolink.ValidationError):
            await client.images.generate_many(["a", "b"], **opts)
    assert api.log == []


# -- layering --------------------------------------------------------------------------------


def test_no_module_imports_the_client_from_below() -> None:
    """Promise (issue 12, 'What is wrong today' and item 4): no module below the facade imports
    `_client` (the former five-file cycle through `_images`, `_tasks`, `_watcher`, `_batch`)
    -- except under `if TYPE_CHECKING:`. Checked by importing each module alone in a fresh
    interpreter with `evolink._client` blocked."""
    below = [
        "_images",
        "_tasks",
        "_watcher",
        "_batch",
        "_generations",
        "_transport",
        "_create",
        "_resume",
        "_journal",
    ]
    code = (
        "import sys, importlib\n"
        "class B:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'evolink._client': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, B())\n"
        "import types; pkg = types.ModuleType('evolink')\n"
        "pkg.__path__ = [sys.argv[1]]; sys.modules['evolink'] = pkg\n"
        "for m in sys.argv[2:]: importlib.import_module('evolink.' + m)\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code, str(ROOT / "src" / "evolink"), *below],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
