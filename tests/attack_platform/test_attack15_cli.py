"""Issue 15's command line, attacked from the docs alone, over real HTTP.

Promises checked (issue 15 "What a user gets" and "Done when", docs/reference/cli.md,
docs/how-to/files.md "From the command line", docs/how-to/estimate.md):
- `evolink models`: "a table: model, kind, lifecycle, price from".
- `evolink batch prompts.csv --max-credits 500` "says up front how many prompts fit the
  budget, and stops, with nothing sent, when the account cannot cover it".
- "evolink batch with a CSV whose image_urls column names local files uploads each
  distinct file once (count on the simulator), and a --resume after a kill uploads nothing
  again."
- "Uploads images (JPEG, PNG, GIF or WebP, 10 MB at most)".
- "A key the API refuses stops any command at once with exit status 2 and `authentication
  failed: <the server's message> — check EVOLINK_API_KEY`"; "The API key must never appear
  in a repr, log, error, file or traceback" (and so never on the terminal).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from attack15_server import (
    SECRET,
    AsgiServer,
    Hostile,
    envelope_error,
    files_fail,
    model_row,
    png,
    sku,
)
from click.testing import CliRunner, Result

from evolink.cli import main

UPLOADS = ("/api/v1/files/upload/base64", "/api/v1/files/upload/stream", "/api/v1/files/upload/url")
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def a15_http() -> Iterator[tuple[Hostile, AsgiServer]]:
    server = Hostile(now=time.time, task_seconds=0)
    server.models = [
        model_row("gpt-image-2"),
        model_row("krea-2-turbo", lifecycle="deprecated", deprecates_at="2026-10-01"),
        model_row("brand-new-2099", shiny={"x": 1}),
    ]
    server.prices = [sku("gpt-image-2", "g", price=4)]
    server.reserve = lambda body: Decimal(4) * int(body.get("n") or 1)
    with AsgiServer(server) as http:
        server.result_base = http.url
        yield server, http


def run(http: AsgiServer, *args: str, key: str = SECRET) -> Result:
    env = {"EVOLINK_API_KEY": key, "EVOLINK_BASE_URL": http.url, "EVOLINK_FILES_BASE_URL": http.url}
    return CliRunner().invoke(main, list(args), env=env)


def cli_env(http: AsgiServer) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "EVOLINK_API_KEY": SECRET,
        "EVOLINK_BASE_URL": http.url,
        "EVOLINK_FILES_BASE_URL": http.url,
    }


def everything(result: Result) -> str:
    text = result.output
    with contextlib.suppress(ValueError):  # older click: stderr mixed into output
        text += result.stderr
    if result.exception is not None:
        text += repr(result.exception)
    return text


def test_models_table_shows_lifecycle_date_and_price(
    a15_http: tuple[Hostile, AsgiServer],
) -> None:
    """'evolink models [--kind video] # a table: model, kind, lifecycle, price from' and
    'lifecycle (with its date when deprecated or retired)' (cli.md)."""
    _, http = a15_http
    result = run(http, "models", "--json")
    assert result.exit_code == 0, everything(result)
    rows = {row["model"]: row for row in json.loads(result.output)}
    assert "brand-new-2099" in rows
    assert rows["krea-2-turbo"]["lifecycle"] == "deprecated"
    assert "2026-10-01" in json.dumps(rows["krea-2-turbo"])
    assert Decimal(str(rows["gpt-image-2"]["price_from"])) == 4


def test_batch_says_up_front_how_many_fit(
    a15_http: tuple[Hostile, AsgiServer], tmp_path: Path
) -> None:
    """'evolink batch prompts.csv --max-credits 500 says up front how many prompts fit the
    budget' (estimate.md): 4 credits a prompt, a budget of 10: 2 of 5; and no more than
    that many creates go out."""
    server, http = a15_http
    csv = tmp_path / "p.csv"
    csv.write_text("prompt\na\nb\nc\nd\ne\n")
    result = run(
        http, "batch", str(csv), "--max-credits", "10", "--out", str(tmp_path / "o"), "--plain"
    )
    out = everything(result)
    assert "2 of 5" in out, out
    assert server.peak <= 10
    assert len(server.tasks) == 2


@pytest.mark.parametrize(
    ("token", "user"),
    [pytest.param(1, 1, id="both-low"), pytest.param(99_416.44, 1, id="key-rich-account-poor")],
)
def test_batch_stops_with_nothing_sent_when_the_account_cannot_cover_it(
    a15_http: tuple[Hostile, AsgiServer], tmp_path: Path, token: float, user: float
) -> None:
    """'... and stops, with nothing sent, when the account cannot cover it' (estimate.md).
    GET /v1/credits reports the key's and the account's credits; the account has 1, the
    batch needs 20."""
    server, http = a15_http
    server.balance_body = {
        "success": True,
        "message": "",
        "data": {
            "token": {"remaining_credits": token, "unlimited_credits": False, "used_credits": 0},
            "user": {"remaining_credits": user, "used_credits": 0},
        },
    }
    csv = tmp_path / "p.csv"
    csv.write_text("prompt\na\nb\nc\nd\ne\n")
    result = run(
        http, "batch", str(csv), "--max-credits", "500", "--out", str(tmp_path / "o"), "--plain"
    )
    assert server.creates == [], everything(result)
    assert result.exit_code != 0


def test_files_upload_refuses_a_non_image_before_sending(
    a15_http: tuple[Hostile, AsgiServer], tmp_path: Path
) -> None:
    """'Uploads images (JPEG, PNG, GIF or WebP, 10 MB at most)': a text file named .png is
    refused, with nothing sent."""
    server, http = a15_http
    fake = tmp_path / "photo.png"
    fake.write_text("I am a text file")
    result = run(http, "files", "upload", str(fake))
    assert result.exit_code != 0, everything(result)
    assert not [r for r in server.log if r.url.path in UPLOADS]
    good = tmp_path / "good.png"
    good.write_bytes(png(b"good"))
    result = run(http, "files", "upload", str(good), "--json")
    assert result.exit_code == 0, everything(result)
    assert "https://files.evolink.example/" in result.output


def test_task_list_with_status(a15_http: tuple[Hostile, AsgiServer]) -> None:
    """'evolink task list --status processing' ('--json' for scripts)."""
    server, http = a15_http
    rows = [
        {"id": "task-unified-1767225600-aaaa0001", "status": "processing", "created": 1767225600},
        {"id": "task-unified-1767225600-aaaa0002", "status": "processing", "weird": [1]},
    ]
    server.list_tasks = lambda r: httpx.Response(
        200, json={"object": "list", "data": rows, "has_more": False, "total": 2}
    )
    result = run(http, "task", "list", "--status", "processing", "--json")
    assert result.exit_code == 0, everything(result)
    assert [t["id"] for t in json.loads(result.output)] == [r["id"] for r in rows]
    assert server.log[-1].url.params.get("status") == "processing"


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("task", "list"), id="task-list"),
        pytest.param(("files", "quota"), id="files-quota"),
        pytest.param(("files", "list"), id="files-list"),
        pytest.param(("credits",), id="credits"),
    ],
)
def test_a_refused_key_quoted_back_never_reaches_the_terminal(
    a15_http: tuple[Hostile, AsgiServer], command: tuple[str, ...]
) -> None:
    """'A key the API refuses stops any command at once with exit status 2 and
    authentication failed: <the server's message>' (cli.md) - a message that here quotes
    the key. The key must not reach the terminal: the server's message is shown redacted."""
    server, http = a15_http
    other = "sk-evo-SOMEONE-ELSES-k3y-0000111122223333"
    server.list_tasks = lambda r: envelope_error(401, "invalid_api_key", f"Invalid API key {other}")
    result = run(http, *command, key=other)
    text = everything(result)
    assert result.exit_code == 2, text
    assert "authentication failed" in text
    assert other not in text, text
    assert other[8:] not in text, text


def test_files_quota_error_quoting_the_key_never_reaches_the_terminal(
    a15_http: tuple[Hostile, AsgiServer], tmp_path: Path
) -> None:
    """The files API answers success: false with the key in `msg` (HTTP 200)."""
    server, http = a15_http
    server.upload_fault = lambda r, attempt: files_fail(401, f"token {SECRET} not allowed")
    good = tmp_path / "good.png"
    good.write_bytes(png(b"good"))
    result = run(http, "files", "upload", str(good))
    text = everything(result)
    assert result.exit_code != 0
    assert SECRET not in text, text
    assert SECRET[8:] not in text, text


def test_deprecated_model_warning_is_a_message_not_a_python_warning_line(
    a15_http: tuple[Hostile, AsgiServer], tmp_path: Path
) -> None:
    """'A deprecated model warns with its date' (issue 15). On the terminal that is a line
    for a person, not Python's `path/to/_module.py:123: ModelDeprecatedWarning:` dump."""
    _, http = a15_http
    csv = tmp_path / "p.csv"
    csv.write_text("prompt\na\n")
    # A real process: pytest's own warning capture would hide what a terminal shows.
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "evolink.cli", "estimate", str(csv), "--model", "krea-2-turbo"],
        env=cli_env(http),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    text = done.stdout + done.stderr
    assert done.returncode == 0, text
    assert "2026-10-01" in text
    assert ".py:" not in text, text


def test_csv_local_images_uploaded_once_and_resume_after_kill_uploads_nothing(
    a15_http: tuple[Hostile, AsgiServer], tmp_path: Path
) -> None:
    """Issue 15, Done when: 'evolink batch with a CSV whose image_urls column names local
    files uploads each distinct file once (count on the simulator), and a --resume after a
    kill uploads nothing again.' Two distinct contents under three names, six rows; the
    first run is killed (SIGKILL) while its tasks run; the resume finishes the run."""
    server, http = a15_http
    server.task_seconds = 3600  # the first run's tasks never end before the kill
    (tmp_path / "a.png").write_bytes(png(b"A"))
    (tmp_path / "a-again.png").write_bytes(png(b"A"))
    (tmp_path / "b.png").write_bytes(png(b"B"))
    names = ["a.png", "b.png", "a-again.png", "a.png", "b.png", "a.png"]
    csv = tmp_path / "p.csv"
    csv.write_text("prompt,image_urls\n" + "".join(f"scene {i},{n}\n" for i, n in enumerate(names)))
    out = tmp_path / "out"
    env = cli_env(http)
    args = [sys.executable, "-m", "evolink.cli", "batch", str(csv), "--out", str(out), "--plain"]
    first = subprocess.Popen(  # noqa: S603 - our own CLI
        [*args, "--max-in-flight", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while len(server.tasks) < 2 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert len(server.tasks) >= 1, "the first run created nothing before the kill"
    uploads_before = len([r for r in server.log if r.url.path in UPLOADS])
    assert uploads_before <= 2, f"{uploads_before} uploads for 2 distinct files"

    for task in server.tasks.values():
        task["ends"] = 0.0
    server.task_seconds = 0
    resumed = subprocess.run(  # noqa: S603 - our own CLI
        [*args, "--resume"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    uploads = [r for r in server.log if r.url.path in UPLOADS]
    sent_urls = {u for body in server.creates for u in body.get("image_urls", [])}
    facts = (
        f"uploads {uploads_before} then {len(uploads)}; tasks {len(server.tasks)}; "
        f"exit {resumed.returncode}\n{resumed.stdout[-1500:]}{resumed.stderr[-1500:]}"
    )
    assert len(uploads) == uploads_before, "the resume uploaded again: " + facts
    assert len(server.tasks) == 6, facts
    assert len(sent_urls) == 2, facts
    assert resumed.returncode == 0, facts
