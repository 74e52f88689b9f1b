"""`nox -s bench -- distributed`: one run on 1 worker and on 4, and the database's work.

Issue 17's figures: the wall time of a run on 1 and on 4 `evolink worker` processes when
each worker's `--max-in-flight` is the limit, and the database round trips per input.

Each configuration gets a fresh database on one throwaway PostgreSQL server (started as
the tests start theirs, tests/_postgres.py, but durable: fsync and synchronous commits on)
and a fresh simulator served in its own process (benchmarks/sim_server.py, the same seed:
the same tasks). The run is enqueued with `evolink batch --enqueue`, then the workers are
started at once with `--burst` and the wall time runs until the last one exits (process
start-up included). The oracle is run.py's, computed from the simulator's own per-task
durations for all the workers' slots (workers x in-flight): the same tasks, in creation
order, each started the instant a slot frees.

Round trips are counted by the server: pg_stat_statements (preloaded, utility statements
tracked, so BEGIN and COMMIT count) gives how many statements each database ran, reset
after the enqueue and read once the workers have exited. Every statement a worker runs is
one round trip (psycopg in autocommit, no pipelining in the workers), so statements per
input *are* its round trips; the enqueue's `executemany` is pipelined, so its count is an
upper bound (and shown apart). `pg_stat_database.xact_commit` gives the transactions.

    python benchmarks/run.py distributed [--quick] [--inputs N] [--in-flight K]

Writes docs/benchmarks/distributed.md and distributed.json.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from matrix import commit
from run import DOCS, HERE, machine, oracle, served

ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' throwaway server

from _postgres import fresh_database, postgres_server  # noqa: E402

KEY = "sk-evo-benchmark-distributed-0000"
SEED = 7
CHUNK = 100
SPEEDUP_TARGET = 3.5
#: Credits per image of gpt-image-2 on the simulator: the budget is twice what the run
#: needs, as a nightly run sets one (it holds at every moment and never binds).
PRICE = 2.5
#: Durable, as a production server is (the tests' server turns these off for speed).
SERVER_SETTINGS = (
    "shared_preload_libraries=pg_stat_statements",
    "pg_stat_statements.track_utility=on",
    "pg_stat_statements.max=10000",
    "fsync=on",
    "synchronous_commit=on",
    "full_page_writes=on",
)
#: Statements by what they are for, first match wins (on the statement's text).
KINDS = (
    ("job queue (procrastinate)", re.compile(r"procrastinate", re.IGNORECASE)),
    ("shared credits", re.compile(r"evolink_credit_")),
    ("429 brake", re.compile(r"evolink_brakes")),
    ("run plan and inputs", re.compile(r"evolink_run_plans|evolink_run_inputs")),
    ("journal", re.compile(r"evolink_inputs|evolink_files|evolink_runs")),
    ("BEGIN / COMMIT", re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK)", re.IGNORECASE)),
)


def kind_of(query: str) -> str:
    return next((name for name, pattern in KINDS if pattern.search(query)), "other")


def child_env(base_url: str) -> dict[str, str]:
    env = {**os.environ, "EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": base_url}
    env.pop("EVOLINK_JOURNAL", None)
    if (ROOT / "src" / "evolink").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p
        )
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "evolink.cli", *args]


def statements(server: str, database: str) -> Counter[str]:
    """Statements the server ran in `database` since the last reset, by their text."""
    import psycopg  # noqa: PLC0415 - the `postgres` extra

    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT s.query, s.calls FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s",
            (database,),
        ).fetchall()
    found: Counter[str] = Counter()
    for query, calls in rows:
        found[query] += calls
    return found


def reset(server: str) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def commits(server: str, database: str) -> int:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(server, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return int(row[0]) if row else 0


def server_cpu(server: str) -> float | None:
    """CPU seconds the PostgreSQL server used so far: its postmaster's and every backend
    it reaped (Linux's /proc; None elsewhere). Backends still running are not counted."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(server, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    try:
        parent = Path(f"/proc/{row[0]}/stat").read_text().rsplit(")", 1)[1].split()[1]
    except OSError:
        return None
    return process_cpu(int(parent), reaped=True)


def process_cpu(pid: int | None, *, reaped: bool = False) -> float | None:
    """CPU seconds of process `pid` (with `reaped`, and of its children it waited for)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime, stime, cutime, cstime: fields 14-17 of stat(5), 12-15 after the name.
    return sum(int(v) for v in fields[11 : 15 if reaped else 13]) / os.sysconf("SC_CLK_TCK")


def simulator_pid(base: str) -> int | None:
    """The served simulator's process (found by its port on its command line)."""
    port = ("\0" + base.rsplit(":", 1)[1] + "\0").encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"sim_server.py" in command and port in command + b"\0":
            return int(entry.name)
    return None


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def jobs_oracle(tasks: list[dict[str, Any]], jobs: list[list[str]], workers: int, slots: int):
    """The design's own bound: each job's tasks on one worker's `slots` (its makespan, as
    `oracle`), jobs taken in order by the first worker free, none overlapping on a worker."""
    by_id = {t["id"]: t for t in tasks}
    free = [0.0] * workers
    end = 0.0
    for job in jobs:
        start = heapq.heappop(free)
        finish = start + oracle([by_id[i] for i in job if i in by_id], slots)
        heapq.heappush(free, finish)
        end = max(end, finish)
    return end


def job_tasks(url: str, inputs: int) -> list[list[str]]:
    """The tasks of each job of the run, in job order (from the journal: index -> task)."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT idx, task_id FROM evolink_inputs WHERE run = 'bench' ORDER BY idx"
        ).fetchall()
    jobs: list[list[str]] = [[] for _ in range((inputs + CHUNK - 1) // CHUNK)]
    for idx, task_id in rows:
        jobs[idx // CHUNK].append(task_id)
    return jobs


def commit_latency(server: str, *, durable: bool, times: int = 200) -> float:
    """Milliseconds one transaction updating one row takes, alone, in a fresh database."""
    import psycopg  # noqa: PLC0415

    url = fresh_database(server)
    if not durable:
        asynchronous(server, url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
        conn.execute("INSERT INTO counter VALUES (0)")
        started = time.perf_counter()
        for _ in range(times):
            conn.execute("UPDATE counter SET n = n + 1")
        return (time.perf_counter() - started) * 1000 / times


def asynchronous(server: str, url: str) -> None:
    """Commits in `url`'s database no longer wait for the disk (new connections)."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET synchronous_commit TO off").format(sql.Identifier(name))
        )


def run_one(
    server: str,
    workers: int,
    *,
    durable: bool,
    inputs: int,
    in_flight: int,
    durations: list[float],
) -> dict[str, Any]:
    """Enqueue `inputs` prompts, run them on `workers` workers; the figures."""
    url = fresh_database(server)
    name = url.rsplit("/", 1)[1]
    if not durable:
        asynchronous(server, url)
    knobs = {"durations": durations, "seed": SEED, "balance": "100000000"}
    with tempfile.TemporaryDirectory(prefix="evolink-bench-") as tmp, served(knobs) as base:
        folder = Path(tmp)
        prompts = folder / "prompts.txt"
        prompts.write_text("".join(f"a lighthouse at dusk, study {i}\n" for i in range(inputs)))
        env = child_env(base)
        reset(server)
        started = time.monotonic()
        subprocess.run(
            cli(
                "batch",
                str(prompts),
                "--out",
                str(folder / "out"),
                "--journal",
                url,
                "--run",
                "bench",
                "--enqueue",
                "--chunk-size",
                str(CHUNK),
                "--max-credits",
                str(2 * PRICE * inputs),
            ),
            env=env,
            check=True,
            capture_output=True,
        )
        enqueue_wall = time.monotonic() - started
        enqueued = statements(server, name)
        before = commits(server, name)
        reset(server)
        logs = [folder / f"worker-{i}.log" for i in range(workers)]
        load = os.getloadavg()[0]
        sim = simulator_pid(base)
        cpu_before, db_before, sim_before = children_cpu(), server_cpu(server), process_cpu(sim)
        started, started_at = time.monotonic(), time.time()
        procs = []
        for log in logs:
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        cli(
                            "worker", "--journal", url, "--max-in-flight", str(in_flight), "--burst"
                        ),
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        codes = [proc.wait() for proc in procs]
        wall = time.monotonic() - started
        cpu = children_cpu() - cpu_before
        sim_after = process_cpu(sim)
        sim_cpu = None if sim_before is None or sim_after is None else sim_after - sim_before
        if any(codes):
            tail = "\n".join(log.read_text(errors="replace")[-2000:] for log in logs)
            raise RuntimeError(f"a worker exited with {codes}:\n{tail}")
        time.sleep(1.0)  # the exited backends' statistics reach the server
        db_after = server_cpu(server)
        db_cpu = None if db_before is None or db_after is None else db_after - db_before
        worked = statements(server, name)
        transactions = commits(server, name) - before
        status = json.loads(
            subprocess.run(
                cli("status", "--journal", url, "--run", "bench", "--json"),
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        files = sum(1 for p in (folder / "out").iterdir() if p.suffix == ".png")
        truth = httpx.get(base + "/_bench/truth", timeout=30).json()
        jobs = job_tasks(url, inputs)
    completed = sum(1 for t in truth["tasks"] if t["status"] == "completed")
    by_kind: Counter[str] = Counter()
    for query, calls in worked.items():
        by_kind[kind_of(query)] += calls
    first_create = min(t["created"] for t in truth["tasks"]) - started_at
    ideal = oracle(truth["tasks"], workers * in_flight)
    by_jobs = jobs_oracle(truth["tasks"], jobs, workers, in_flight)
    return {
        "workers": workers,
        "durable": durable,
        "wall": wall,
        "oracle": ideal,
        "ratio": wall / ideal,
        "jobs_oracle": by_jobs,
        "jobs_ratio": wall / by_jobs,
        "first_create": first_create,
        "load_before": load,
        "workers_cpu": cpu,
        "server_cpu": db_cpu,
        "simulator_cpu": sim_cpu,
        "cpu_per_input_ms": cpu * 1000 / inputs,
        "cores_busy": (cpu + (db_cpu or 0) + (sim_cpu or 0)) / wall,
        "enqueue_wall": enqueue_wall,
        "enqueue_statements": sum(enqueued.values()),
        "statements": sum(worked.values()),
        "statements_by_kind": dict(by_kind),
        "top_statements": [
            {"query": " ".join(q.split())[:160], "calls": c} for q, c in worked.most_common(12)
        ],
        "transactions": transactions,
        "creates": truth["counts"].get("creates", 0),
        "completed": completed,
        "files": files,
        "status": status,
    }


#: The configurations: (workers, commits wait for the disk). The third one tells what the
#: second's commits cost: the same run, its database's commits not waiting for the disk.
CONFIGURATIONS = ((1, True), (4, True), (4, False))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="run.py distributed", description=__doc__)
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=25)
    parser.add_argument("--durations", type=float, nargs=2, default=[1.0, 2.0])
    parser.add_argument("--quick", action="store_true", help="400 inputs")
    args = parser.parse_args(argv)
    if args.quick:
        args.inputs = 400
    results: dict[str, Any] = {
        "machine": machine(),
        "commit": commit(),
        "inputs": args.inputs,
        "in_flight": args.in_flight,
        "durations": args.durations,
        "chunk": CHUNK,
        "runs": [],
    }
    with postgres_server(SERVER_SETTINGS) as server:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        results["commit_ms"] = commit_latency(server, durable=True)
        results["async_commit_ms"] = commit_latency(server, durable=False)
        print(
            f"one transaction: {results['commit_ms']:.2f} ms, without waiting for the disk"
            f" {results['async_commit_ms']:.2f} ms",
            flush=True,
        )
        for workers, durable in CONFIGURATIONS:
            print(f"running {args.inputs} inputs on {label(workers, durable)} ...", flush=True)
            result = run_one(
                server,
                workers,
                durable=durable,
                inputs=args.inputs,
                in_flight=args.in_flight,
                durations=args.durations,
            )
            print(f"  {summary(result, args.inputs)}", flush=True)
            results["runs"].append(result)
    write(results)


def label(workers: int, durable: bool) -> str:
    name = f"{workers} worker{'s' if workers > 1 else ''}"
    return name if durable else f"{name}, commits not waiting for the disk"


def summary(r: dict[str, Any], inputs: int) -> str:
    return (
        f"wall {r['wall']:.1f} s, oracle {r['oracle']:.1f} s (jobs' {r['jobs_oracle']:.1f} s),"
        f" {r['statements'] / inputs:.2f} statements and {r['transactions'] / inputs:.2f}"
        f" transactions per input, {r['completed']}/{inputs} completed"
    )


def write(results: dict[str, Any]) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "distributed.json").write_text(json.dumps(results, indent=2) + "\n")
    (DOCS / "distributed.md").write_text(markdown(results))
    print(markdown(results))


def row(label: str, runs: list[dict[str, Any]], key: str, spec: str, per: int = 1) -> str:
    """A table row: `key` of each run, divided by `per`, formatted by `spec`."""
    cells = []
    for r in runs:
        value = r[key]
        cells.append("n/a" if value is None else format(value / per if per != 1 else value, spec))
    return f"| {label} | {' | '.join(cells)} |"


def where_the_time_goes(results: dict[str, Any]) -> list[str]:
    """The reading of the table, with its own numbers."""
    m, n, k, chunk = results["machine"], results["inputs"], results["in_flight"], results["chunk"]
    one, four, _ = results["runs"]
    ceiling = 1000 / (3 * results["commit_ms"])
    need = n / four["oracle"]
    cores = int(m["cpus"])
    short = four["load_before"] + four["cores_busy"] > cores
    side = "above" if ceiling > need else "**below**"
    return [
        "## Where the time goes",
        "",
        (
            f"- **Jobs.** A job is one batch of {chunk} inputs: its last tasks run while its"
            f" worker's other slots wait for the next job. With {k} slots that alone makes the"
            f" jobs' oracle {one['jobs_oracle'] / one['oracle']:.2f}x the oracle for one worker"
            f" and {four['jobs_oracle'] / four['oracle']:.2f}x for four (`--jobs 2` overlaps"
            " two jobs' tails; larger jobs have fewer tails but share out worse at the end)."
        ),
        (
            f"- **CPU.** The workers spent {one['cpu_per_input_ms']:.1f} ms of CPU per input"
            f" (four: {four['cpu_per_input_ms']:.1f} ms, each process its own start-up and"
            " polling), beside the database server's and the simulator's. Four workers, the"
            f" server and the simulator shared this machine's {cores} cores with other work"
            f" (a load average of {four['load_before']:.1f} when the four started) and kept"
            f" {four['cores_busy']:.2f} cores busy: "
            + (
                "the cores were oversubscribed, so the workers waited for CPU as well as for"
                " their slots. On machines of their own, four workers add four machines' CPU."
                if short
                else "the cores were not all busy, so CPU was not the limit."
            )
        ),
        (
            "- **The budget's row.** Each input takes the run's one credit-pool row in three"
            " transactions (its hold, then the settlements of its reservation and of its"
            " charge, which change nothing here: both equal the hold), each holding the row"
            " until its commit. At the"
            f" {results['commit_ms']:.2f} ms a commit took here, that caps a run at about"
            f" {ceiling:.0f} inputs a second whatever the workers, {side}"
            f" the {need:.0f} a second four workers need at their oracle. The third column,"
            " whose commits do not wait for the disk, shows what the commits cost here."
        ),
        "",
    ]


def markdown(results: dict[str, Any]) -> str:
    m, n, k, chunk = results["machine"], results["inputs"], results["in_flight"], results["chunk"]
    runs = results["runs"]
    one, four, fast = runs
    low, high = results["durations"]
    speedup = one["wall"] / four["wall"]
    ok = all(
        r["completed"] == r["creates"] == r["files"] == n and r["status"]["done"] for r in runs
    )
    heads = [label(r["workers"], r["durable"]).replace(", commits", ",<br>commits") for r in runs]
    lines = [
        "# Benchmark: one run on 1 worker and on 4",
        "",
        (
            f"Measured by `nox -s bench -- distributed` on {m['date']} (commit"
            f" {results['commit']}): Python {m['python']}, {m['cpus']} cores, {m['platform']}."
            f" {n} prompts of `gpt-image-2`, each task {low:g}-{high:g} s (uniform, seed"
            f" {SEED}), enqueued in jobs of {chunk} with a budget of twice what they cost"
            f" (`evolink batch --enqueue --chunk-size {chunk} --max-credits {2 * PRICE * n:g}`)"
            f" and run by `evolink worker --max-in-flight {k} --burst` processes against the"
            " simulator served in its own process, on one PostgreSQL server on the same"
            " machine with durable settings (fsync and synchronous commits on): one"
            f" transaction updating a row took {results['commit_ms']:.2f} ms there, alone"
            f" ({results['async_commit_ms']:.2f} ms when its commit does not wait for the"
            " disk). See benchmarks/distributed.py for how each figure is taken."
        ),
        "",
        f"| figure | {' | '.join(heads)} |",
        "|---|" + "---|" * len(runs),
        row("wall time (s), processes started to all exited", runs, "wall", ".1f"),
        row(f"oracle (s): the same tasks on {k} slots a worker", runs, "oracle", ".1f"),
        row("wall / oracle", runs, "ratio", ".3f"),
        row(f"jobs' oracle (s): each job of {chunk} alone on a worker", runs, "jobs_oracle", ".1f"),
        row("wall / jobs' oracle", runs, "jobs_ratio", ".3f"),
        row("start-up (s): workers started to the first create", runs, "first_create", ".1f"),
        row("database statements (round trips) per input", runs, "statements", ".2f", n),
        row("transactions per input", runs, "transactions", ".2f", n),
        row("inputs completed", runs, "completed", "d"),
        row("tasks created (the simulator's count)", runs, "creates", "d"),
        row("images on disk", runs, "files", "d"),
        row("workers' CPU (s), all processes", runs, "workers_cpu", ".1f"),
        row("workers' CPU per input (ms)", runs, "cpu_per_input_ms", ".1f"),
        row("database server's CPU (s)", runs, "server_cpu", ".1f"),
        row("simulator's CPU (s)", runs, "simulator_cpu", ".1f"),
        row("cores busy with the run: all that CPU / wall", runs, "cores_busy", ".2f"),
        row("load average (1 min) when the workers started", runs, "load_before", ".1f"),
        "",
        (
            f"**Speed-up from 1 to 4 workers: {speedup:.2f}x** (target {SPEEDUP_TARGET:g}x,"
            f" {'met' if speedup >= SPEEDUP_TARGET else '**not met**'}; 4x is perfect), and"
            f" {one['wall'] / fast['wall']:.2f}x when the commits do not wait for the disk."
            f" Every input completed once, with its image on disk: {'yes' if ok else '**no**'}."
        ),
        "",
        *where_the_time_goes(results),
        "## Round trips per input, by what they are for",
        "",
        f"| statements for | {' | '.join(heads)} |",
        "|---|" + "---|" * len(runs),
    ]
    for name in [name for name, _ in KINDS] + ["other"]:
        cells = [f"{r['statements_by_kind'].get(name, 0) / n:.2f}" for r in runs]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    cells = [f"**{r['statements'] / n:.2f}**" for r in runs]
    lines += [
        f"| **all** | {' | '.join(cells)} |",
        "",
        (
            f"Enqueueing the {n} inputs (before the workers start, not in the figures above):"
            f" {one['enqueue_statements']} statements (the inputs' rows are one pipelined"
            f" `executemany`, so fewer round trips), {one['enqueue_wall']:.1f} s for the"
            " command."
        ),
        "",
        "The statements the 4 workers ran most:",
        "",
        "| calls | statement |",
        "|---|---|",
    ]
    for top in four["top_statements"]:
        query = top["query"].replace("|", "\\|")
        lines.append(f"| {top['calls']} | `{query}` |")
    lines.append("")
    return "\n".join(lines)
