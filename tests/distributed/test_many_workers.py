"""One run on four `evolink worker` processes, one of them SIGKILLed twice and restarted:
every input ends once, nothing is paid twice, every image is on disk once, the shared
budget holds at every moment, and `evolink status` agrees with the simulator.

Real components only: a PostgreSQL server (`postgres_url`), the simulator served over
HTTP in its own process (recording what happened, `--record`), and the workers as real
processes of the command line.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from _postgres import fresh_database

pytest.importorskip("procrastinate")
pytest.importorskip("uvicorn")

#: 400 in the default suite (200 created: a job of 100 for each worker; about 15 s);
#: `nox -s soak` runs 2,000.
INPUTS = 2000 if "EVOLINK_SOAK_PROMPTS" in os.environ else 400
WORKERS = 4
KILLS = 2
PRICE = Decimal("2.5")  # the simulator's gpt-image-2, credits per image
#: The budget leaves 200 inputs out: the run ends with the budget exactly spent.
MAX_CREDITS = (INPUTS - 200) * PRICE
#: Seconds the run may take before the test gives up (about 60 for 2,000 inputs on two
#: idle cores, more beside other tests).
DEADLINE = 300.0
CREATE = "/v1/images/generations"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, "the simulator exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise TimeoutError(f"nothing listens on {port}")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "evolink.cli", *args]


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """The simulator served in its own process; yields its URL, where its record goes
    (written when it is stopped: SIGINT), and the process."""
    port = _free_port()
    record = tmp_path / "record.json"
    process = subprocess.Popen(  # noqa: S603 - our own arguments
        [
            sys.executable,
            "-m",
            "evolink.testing",
            "--port",
            str(port),
            "--durations",
            "0.5",
            "2",
            "--log-level",
            "warning",
            "--seed",
            "11",
            "--record",
            str(record),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}", record, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _finished(url: str) -> bool:
    """Whether every job of the run has ended (read straight from the database: the run
    was enqueued before the workers started, and a job's row goes when it succeeds)."""
    import psycopg  # noqa: PLC0415 - the `postgres` extra, as the workers need

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status IN ('todo', 'doing')) FROM procrastinate_jobs"
        ).fetchone()
    assert row is not None
    return bool(row[0] == 0)


def _job_rows(url: str) -> int:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()
    assert row is not None
    return int(row[0])


def _status(url: str) -> dict:
    done = subprocess.run(  # noqa: S603
        _cli("status", "--journal", url, "--run", "nightly", "--json"),
        capture_output=True,
        check=True,
        timeout=30,
    )
    return json.loads(done.stdout)


def test_four_workers_one_killed_twice(
    postgres_url: str, simulator: tuple[str, Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """400 inputs (2,000 in the soak) over four workers, one SIGKILLed twice at random moments and
    restarted: each input ends once, no prompt is created twice, each image is saved
    once, the simulator never held more than the budget, and the status is the truth."""
    base_url, record_path, served = simulator
    url = fresh_database(postgres_url)
    out = tmp_path / "out"
    prompts = [f"a paper boat on a pond, number {i}" for i in range(INPUTS)]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n", encoding="utf-8")
    env = {
        **os.environ,
        "EVOLINK_API_KEY": "sk-evo-many-workers-0000",
        "EVOLINK_BASE_URL": base_url,
    }
    started = time.monotonic()
    _enqueue(url, tmp_path / "prompts.txt", out, env)
    kills = _run_workers(url, env)
    elapsed = time.monotonic() - started
    assert KILLS == kills
    status = _status(url)
    assert status["done"], f"the run did not end in {DEADLINE} s: {status}"

    # The journal: every input ended once, completed or left out by the budget.
    completed = int(MAX_CREDITS / PRICE)
    assert {"completed": completed, "skipped": INPUTS - completed} == status["counts"]
    # Every job succeeded, and its row went with it: the queue keeps nothing of the run.
    assert {"succeeded": INPUTS // 100} == status["jobs"]
    assert 0 == _job_rows(url)

    # The simulator, stopped: its record of every request and every credit.
    served.send_signal(signal.SIGINT)
    served.wait(timeout=30)
    record = json.loads(record_path.read_text(encoding="utf-8"))
    creates = Counter(
        r["prompt"]
        for r in record["requests"]
        if r["method"] == "POST" and r["path"] == CREATE and r["status"] == 200
        if not r["replayed"]
    )
    assert [] == [prompt for prompt, times in creates.items() if times > 1]
    assert completed == sum(creates.values())
    assert Decimal(record["peak_committed"]) <= MAX_CREDITS
    assert Decimal(record["charged"]) == Decimal(status["charged"])
    made = sum(1 for t in record["tasks"] if t["final_status"] == "completed")
    assert made == status["counts"]["completed"]

    # The folder: one image per completed input, each once.
    images = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert completed == len(images) == status["files"]
    assert len(images) == len({name.split("-", 1)[0] for name in images})
    replayed = sum(1 for r in record["requests"] if r["path"] == CREATE and r["replayed"])
    fetched = sum(1 for r in record["requests"] if r["path"].startswith("/results/"))
    # A file is fetched again only if its worker died between saving and recording it.
    assert fetched <= completed + KILLS * 2 * 50
    print(  # noqa: T201 - the figures, for the record (pytest -s)
        f"\n{INPUTS} inputs, {sum(creates.values())} creates ({replayed} replayed), {kills}"
        f" kills, {fetched} downloads, {elapsed:.1f} s, peak committed"
        f" {record['peak_committed']} of {MAX_CREDITS}"
    )


def _enqueue(url: str, prompts: Path, out: Path, env: dict[str, str]) -> None:
    subprocess.run(  # noqa: S603
        _cli(
            "batch",
            str(prompts),
            "--journal",
            url,
            "--run",
            "nightly",
            "--out",
            str(out),
            "--enqueue",
            "--model",
            "gpt-image-2",
            "--max-credits",
            str(MAX_CREDITS),
            "--chunk-size",
            "100",
        ),
        check=True,
        capture_output=True,
        env=env,
        timeout=60,
    )


def _run_workers(url: str, env: dict[str, str]) -> int:
    """Run the workers until the run ends (or `DEADLINE`), killing the first one `KILLS`
    times at random moments and starting it again; return how many kills."""
    worker_args = _cli(
        "worker",
        "--journal",
        url,
        "--max-in-flight",
        "50",
        "--jobs",
        "2",
        # A SIGKILLed worker's jobs are taken over 5 s on; sooner, live workers starved
        # of CPU beside other tests are taken for dead again and again (each takeover is
        # one of a job's attempts).
        "--heartbeat",
        "1",
        "--stalled-after",
        "5",
    )

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603
            worker_args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    started = time.monotonic()
    workers = [start() for _ in range(WORKERS)]
    rng = random.Random()
    kills = 0
    next_kill = time.monotonic() + rng.uniform(2.0, 5.0)
    try:
        while time.monotonic() - started < DEADLINE:
            time.sleep(0.5)
            if kills < KILLS and time.monotonic() >= next_kill:
                workers[0].send_signal(signal.SIGKILL)
                workers[0].wait()
                kills += 1
                workers[0] = start()
                next_kill = time.monotonic() + rng.uniform(2.0, 5.0)
            if kills == KILLS and _finished(url):
                break
    finally:
        for worker in workers:
            _stop(worker)
    return kills
