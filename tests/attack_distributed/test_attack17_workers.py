"""Real `evolink worker` processes on a served simulator: SIGKILL, takeover, budget, status."""

from __future__ import annotations

import collections
import json
import re
import signal
import socket
import subprocess
import time
from decimal import Decimal
from pathlib import Path

from conftest import PYTHON, ROOT, child_env

KEY = "sk-evo-" + "Aa1" * 11


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_simulator(tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _free_port()
    record = tmp / "record.json"
    with open(tmp / "sim.log", "wb") as log:  # noqa: PTH123
        proc = subprocess.Popen(  # noqa: S603
            [PYTHON, "-m", "evolink.testing", "--port", str(port), "--record", str(record), *args],
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline, (tmp / "sim.log").read_text()
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}", record


def _stop_simulator(proc: subprocess.Popen[bytes], record: Path) -> dict:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    return json.loads(record.read_text())


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510, S603
        [PYTHON, "-m", "evolink.cli", *args],
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _worker(db: str, base_url: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:  # noqa: PTH123
        return subprocess.Popen(  # noqa: S603
            [
                PYTHON,
                "-m",
                "evolink.cli",
                "worker",
                "--journal",
                db,
                "--max-in-flight",
                "6",
                "--heartbeat",
                "0.2",
                "--stalled-after",
                "1.5",
                *extra,
            ],
            env=child_env(EVOLINK_API_KEY=KEY, EVOLINK_BASE_URL=base_url),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _status(db: str, run: str) -> dict:
    result = _cli("status", "--journal", db, "--run", run, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _created_prompts(record: dict) -> collections.Counter[str]:
    return collections.Counter(
        r["prompt"]
        for r in record["requests"]
        if r["method"] == "POST"
        and r["path"].endswith("/generations")
        and r["status"] == 200
        and not r["replayed"]
    )


def test_sigkilled_worker_twice_every_input_once_budget_held(db: str, tmp_path: Path) -> None:
    """Promises (issue 17 'Done when' and part 2; docs/how-to/many-machines.md 'When a worker
    dies'; docs/explanation/guarantees.md): 'every input ends once, no prompt is created
    twice (count on the simulator), every image is on disk once, the shared budget is never
    exceeded at any moment ..., and `evolink status` matches the simulator'. Three workers,
    one SIGKILLed twice mid-run and restarted; creates' answers sometimes lost; a budget
    that binds (some inputs must end skipped)."""
    sim, base_url, record_path = _serve_simulator(
        tmp_path, "--durations", "1", "2", "--lost-create-response", "0.05", "--seed", "11"
    )
    prompts = [f"a paper boat on a pond, number {i}" for i in range(90)]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n")
    out = tmp_path / "out"
    budget = Decimal(150)  # 60 images of 2.5 credits: 30 inputs cannot fit
    enq = _cli(
        "batch",
        str(tmp_path / "prompts.txt"),
        "--out",
        str(out),
        "--journal",
        db,
        "--run",
        "boats",
        "--enqueue",
        "--chunk-size",
        "8",
        "--max-credits",
        str(budget),
    )
    assert enq.returncode == 0, enq.stderr + enq.stdout
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers = [_worker(db, base_url, logs[i]) for i in range(3)]
    try:
        for pause in (1.5, 2.0):
            time.sleep(pause)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(timeout=10)
            time.sleep(0.5)
            workers[0] = _worker(db, base_url, logs[0])
        deadline = time.monotonic() + 50
        status = _status(db, "boats")
        while not status.get("done") and time.monotonic() < deadline:
            time.sleep(0.5)
            status = _status(db, "boats")
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:  # noqa: PERF203
                w.kill()
        record = _stop_simulator(sim, record_path)
    worker_logs = "\n".join(p.read_text(errors="replace") for p in logs)
    assert status.get("done"), (status, worker_logs[-3000:])
    counts = status["counts"]
    assert sum(counts.values()) == len(prompts), counts
    made = _created_prompts(record)
    twice = {p: n for p, n in made.items() if n > 1}
    assert not twice, f"prompts created (paid) more than once: {twice}"
    assert Decimal(str(record["peak_committed"])) <= budget, record["peak_committed"]
    # status matches the simulator
    assert counts.get("completed", 0) == len(made), (counts, len(made))
    assert Decimal(status["charged"]) == Decimal(str(record["charged"]))
    # every image on disk once, for exactly the completed inputs
    pngs = sorted(p.name for p in out.glob("*.png"))
    by_index = collections.Counter(int(name.split("-", 1)[0]) for name in pngs)
    assert all(n == 1 for n in by_index.values()), by_index
    assert len(by_index) == counts.get("completed", 0)
    assert status["files"] == len(pngs)
    leftovers = [p.name for p in out.iterdir() if re.search(r"\.(tmp|part)$|^\.", p.name)]
    assert not leftovers, leftovers


def test_concurrent_first_start_creates_schema_once(postgres_url: str, tmp_path: Path) -> None:
    """Promise (docs/how-to/many-machines.md): 'The database needs nothing prepared: the SDK
    creates its tables (evolink_*) and the job queue's (procrastinate_*) the first time ...;
    any number of processes may start at once.' Six `evolink batch --enqueue` of different
    runs start together on an empty database."""
    from _postgres import fresh_database  # noqa: PLC0415

    db = fresh_database(postgres_url)
    (tmp_path / "p.txt").write_text("a kite\na crane\na swan\n")
    start_at = time.time() + 2.0
    script = (
        "import os,sys,time;t=float(sys.argv[1]);time.sleep(max(0,t-time.time()));"
        "from evolink.cli import main;main(args=sys.argv[2:],prog_name='evolink')"
    )
    procs = [
        subprocess.Popen(  # noqa: S603
            [
                PYTHON,
                "-c",
                script,
                str(start_at),
                "batch",
                str(tmp_path / "p.txt"),
                "--out",
                str(tmp_path / f"o{i}"),
                "--journal",
                db,
                "--run",
                f"r{i}",
                "--enqueue",
                "--chunk-size",
                "1",
            ],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(6)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0] * 6, "\n---\n".join(outputs)
    for i in range(6):
        status = _status(db, f"r{i}")
        assert status["total"] == 3
        assert status["jobs"] == {"todo": 3}, status


def test_takeover_does_not_repeat_finished_downloads(db: str, tmp_path: Path) -> None:
    """Promises (issue 17 part 2: 'its finished downloads are not repeated'; docs/how-to/
    many-machines.md 'completed, with its files recorded and on disk | nothing';
    docs/explanation/guarantees.md: 'A file is fetched again if its worker died after saving
    it and before recording it'). A worker holding one 40-input job is SIGKILLed once 15 of
    them completed; the worker that takes the job over fetches at most the few files that
    were in flight (<= max_in_flight), creates nothing twice, and every input ends once."""
    sim, base_url, record_path = _serve_simulator(
        tmp_path, "--durations", "0.5", "1", "--seed", "31"
    )
    prompts = [f"a moth near a lamp, number {i}" for i in range(40)]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n")
    out = tmp_path / "out"
    enq = _cli(
        "batch",
        str(tmp_path / "prompts.txt"),
        "--out",
        str(out),
        "--journal",
        db,
        "--run",
        "moths",
        "--enqueue",
        "--chunk-size",
        "40",
    )
    assert enq.returncode == 0, enq.stderr
    log = tmp_path / "w.log"
    first = _worker(db, base_url, log)
    second = None
    try:
        deadline = time.monotonic() + 30
        while _status(db, "moths")["counts"].get("completed", 0) < 15:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = _worker(db, base_url, log)
        deadline = time.monotonic() + 40
        status = _status(db, "moths")
        while not status.get("done") and time.monotonic() < deadline:
            time.sleep(0.3)
            status = _status(db, "moths")
    finally:
        for w in (first, second):
            if w is not None and w.poll() is None:
                w.send_signal(signal.SIGTERM)
                try:
                    w.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    w.kill()
                    w.wait()
        record = _stop_simulator(sim, record_path)
    assert status.get("done"), (status, log.read_text()[-2000:])
    assert status["counts"] == {"completed": 40}, status
    made = _created_prompts(record)
    assert all(n == 1 for n in made.values()) and len(made) == 40  # noqa: PT018
    downloads = collections.Counter(
        r["path"]
        for r in record["requests"]
        if r["method"] == "GET" and r["path"].startswith("/results/")
    )
    repeated = sum(n - 1 for n in downloads.values())
    assert repeated <= 6, f"{repeated} downloads repeated after the takeover"
    assert len(list(out.glob("*.png"))) == 40


def test_four_workers_racing_for_a_tiny_budget(db: str, tmp_path: Path) -> None:
    """Promises (issue 17 part 3: '`max_credits` holds across all workers of a run at every
    moment'; docs/explanation/guarantees.md: the only exception is 'the first create of a
    price not yet known ... one create of it goes out alone and may take the run over the
    budget by its own reservation, in one process as on many. Workers learn prices from the
    run's earlier reservations.'). Four workers start at once on a run whose budget fits
    four images (2.5 credits each): the peak committed on the server may pass the budget by
    at most that one create's reservation, and no more than four images are paid."""
    sim, base_url, record_path = _serve_simulator(
        tmp_path, "--durations", "1", "1.5", "--seed", "21", "--no-published-prices"
    )
    prompts = [f"a snail on a leaf, number {i}" for i in range(24)]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n")
    budget = Decimal(10)
    # The schema first (a run of its own), then four workers waiting, then the run: the
    # four take their jobs at about the same moment.
    (tmp_path / "warm.txt").write_text("warm\n")
    assert (
        _cli(
            "batch",
            str(tmp_path / "warm.txt"),
            "--out",
            str(tmp_path / "warm"),
            "--journal",
            db,
            "--run",
            "warm",
            "--enqueue",
            "--max-credits",
            "0",
        ).returncode
        == 0
    )
    logs = [tmp_path / f"w{i}.log" for i in range(4)]
    workers = [_worker(db, base_url, logs[i]) for i in range(4)]
    try:
        deadline = time.monotonic() + 20
        while sum("waiting for jobs" in p.read_text() for p in logs if p.exists()) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        enq = _cli(
            "batch",
            str(tmp_path / "prompts.txt"),
            "--out",
            str(tmp_path / "out"),
            "--journal",
            db,
            "--run",
            "snails",
            "--enqueue",
            "--chunk-size",
            "6",
            "--max-credits",
            str(budget),
        )
        assert enq.returncode == 0, enq.stderr
        deadline = time.monotonic() + 40
        status = _status(db, "snails")
        while not status.get("done") and time.monotonic() < deadline:
            time.sleep(0.3)
            status = _status(db, "snails")
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:  # noqa: PERF203
                w.kill()
                w.wait()
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        record = _stop_simulator(sim, record_path)
    status = _status(db, "snails")
    assert sum(status["counts"].values()) == len(prompts), status
    peak = Decimal(str(record["peak_committed"]))
    assert peak <= budget + Decimal("2.5"), f"peak committed {peak} with a budget of {budget}"
    assert Decimal(str(record["charged"])) <= budget + Decimal("2.5")
