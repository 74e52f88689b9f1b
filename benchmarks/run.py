"""`nox -s bench`: every figure of issue 4, as ratios measured in the same run.

Each scenario gets a fresh simulator served in its own process (benchmarks/sim_server.py)
and a client in its own process (benchmarks/scenario.py), so CPU and memory are the
client's alone. The oracle is computed from the simulator's own per-task durations: the
same tasks, in creation order, each started the instant a slot frees.

Writes docs/benchmarks/results.md, results.json and chart.png.

`python benchmarks/run.py matrix ...` (`nox -s bench -- matrix ...`) runs the matrix of
server behaviours instead (benchmarks/matrix.py); `python benchmarks/run.py mixed ...`
(`nox -s bench -- mixed ...`) images, videos and audio at once (benchmarks/mixed.py);
`python benchmarks/run.py distributed ...` (`nox -s bench -- distributed ...`) one run on 1
and 4 `evolink worker` processes over PostgreSQL (benchmarks/distributed.py);
`python benchmarks/run.py plans ...` the read plan alone against the matrix's behaviours,
without HTTP, in seconds (benchmarks/plans.py).
"""

from __future__ import annotations

import argparse
import heapq
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
DOCS = HERE.parent / "docs" / "benchmarks"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(knobs: dict[str, Any]):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "sim_server.py"), str(port), json.dumps(knobs)]
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/_bench/truth", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def scenario(name: str, base: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE / "scenario.py"), name, base, *args],
        check=True,
        capture_output=True,
        text=True,
        # The client under test is the one on PYTHONPATH (a worktree's src), else installed.
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(HERE), _path())))},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _path() -> str:
    return os.pathsep.join(
        str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    )


def oracle(tasks: list[dict[str, Any]], slots: int) -> float:
    """Makespan of the same tasks, in creation order, each started when a slot frees."""
    free = [0.0] * slots
    end = 0.0
    for task in tasks:
        start = heapq.heappop(free)
        finish = start + task["duration"]
        heapq.heappush(free, finish)
        end = max(end, finish)
    return end


def batch_run(name: str, knobs: dict[str, Any], tasks: int, in_flight: int, *extra: str):
    with served(knobs) as base:
        result = scenario(name, base, "--tasks", str(tasks), "--in-flight", str(in_flight), *extra)
        truth = httpx.get(base + "/_bench/truth", timeout=30).json()
    result["oracle"] = oracle(truth["tasks"], in_flight)
    result["counts"] = truth["counts"]
    result["ratio"] = result["wall"] / result["oracle"]
    done = max(1, len([t for t in truth["tasks"] if t["status"] == "completed"]))
    counts = truth["counts"]
    result["reads_per_task"] = (
        counts.get("task_reads", 0) + counts.get("batch_read_ids", 0)
    ) / done
    result["read_requests_per_task"] = (
        counts.get("task_reads", 0) + counts.get("batch_reads", 0)
    ) / done
    result["cpu_per_task_ms"] = result["cpu"] * 1000 / done
    return result


def main() -> None:
    if importlib.util.find_spec("jsonschema") is None:
        # The simulator checks each create against its model's schema; without jsonschema
        # every create answers 500 and the run measures nothing.
        sys.exit("the simulator needs jsonschema: pip install jsonschema (or 'evolink[testing]')")
    if sys.argv[1:2] == ["matrix"]:
        import matrix  # noqa: PLC0415 - the other benchmark, on request

        matrix.main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["mixed"]:
        import mixed  # noqa: PLC0415 - the other benchmark, on request

        mixed.main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["distributed"]:
        import distributed  # noqa: PLC0415 - the other benchmark, on request

        distributed.main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["plans"]:
        import plans  # noqa: PLC0415 - the other benchmark, on request

        plans.main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.in_flight, args.scale = 200, 50, 2000
    n, k = args.tasks, args.in_flight
    base_knobs = {"durations": [2, 6], "seed": 7, "balance": "100000000"}
    results: dict[str, Any] = {"machine": machine(), "tasks": n, "in_flight": k}

    runs = {
        "ours (batch reads)": ("ours", base_knobs, ()),
        "ours (GET per task)": ("ours_get", base_knobs, ()),
        "ours, stock httpx": ("ours", base_knobs, ("--backend", "httpx")),
        "hand-written, 1 s poll": ("hand_1s", base_knobs, ()),
        "Evolink's client, 3 s poll": ("official_3s", base_knobs, ()),
    }
    for label, (name, knobs, extra) in runs.items():
        backend = () if "--backend" in extra else ("--backend", "auto")
        print(f"running {label} ...", flush=True)
        results[label] = batch_run(name, knobs, n, k, *backend, *extra)
        print(f"  {summary(results[label])}", flush=True)

    print("running raw httpx with our request mix ...", flush=True)
    mix = results["ours, stock httpx"]["counts"]
    with served(base_knobs) as base:
        results["raw httpx, our requests"] = scenario(
            "raw", base, "--in-flight", str(k), "--mix", json.dumps(mix)
        )

    print("running a 429 storm ...", flush=True)
    storm = {**base_knobs, "faults": {"rate_limit": 0.5, "rate_limit_window": [5, 25]}}
    results["ours, 429 storm"] = batch_run("ours", storm, n, k, "--backend", "auto")
    print(f"  {summary(results['ours, 429 storm'])}", flush=True)

    for size in (args.scale // 10, args.scale):
        print(f"running {size} tasks in flight at once ...", flush=True)
        with served({**base_knobs, "durations": [600, 900]}) as base:
            results[f"scale {size}"] = scenario(
                "scale", base, "--tasks", str(size), "--backend", "auto", "--window", "10"
            )
        print(f"  {results[f'scale {size}']}", flush=True)

    figures = derive(results)
    results["figures"] = figures
    write(results, figures)


def summary(r: dict[str, Any]) -> str:
    return (
        f"wall {r['wall']:.1f} s, oracle {r['oracle']:.1f} s, ratio {r['ratio']:.3f}, "
        f"reads/task {r['reads_per_task']:.2f}, read requests/task "
        f"{r['read_requests_per_task']:.3f}, CPU/task {r['cpu_per_task_ms']:.2f} ms"
    )


def derive(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    ours, get, stock = r["ours (batch reads)"], r["ours (GET per task)"], r["ours, stock httpx"]
    hand, official = r["hand-written, 1 s poll"], r["Evolink's client, 3 s poll"]
    raw = r["raw httpx, our requests"]
    storm = r["ours, 429 storm"]
    scales = sorted((int(k.split()[1]), v) for k, v in r.items() if k.startswith("scale "))
    (n_small, small), (n_big, big) = scales[0], scales[-1]
    return [
        (
            "wall / oracle, ours (batch reads)",
            f"{ours['ratio']:.3f}",
            "<= 1.05",
            ours["ratio"] <= 1.05,
        ),
        (
            "wall / oracle, ours (GET per task)",
            f"{get['ratio']:.3f}",
            "<= 1.05",
            get["ratio"] <= 1.05,
        ),
        ("wall / oracle, hand-written 1 s", f"{hand['ratio']:.3f}", "(peer)", True),
        ("wall / oracle, Evolink's 3 s", f"{official['ratio']:.3f}", "(peer)", True),
        (
            "reads per task, GET per task",
            f"{get['reads_per_task']:.2f}",
            "<= 2",
            get["reads_per_task"] <= 2,
        ),
        (
            "read requests per task, batch reads",
            f"{ours['read_requests_per_task']:.3f}",
            "<= 0.2",
            ours["read_requests_per_task"] <= 0.2,
        ),
        ("reads per task, hand-written 1 s", f"{hand['reads_per_task']:.2f}", "(peer)", True),
        (
            "client CPU per task: ours / hand-written",
            f"{ours['cpu_per_task_ms'] / hand['cpu_per_task_ms']:.2f}",
            "<= 0.3",
            ours["cpu_per_task_ms"] <= 0.3 * hand["cpu_per_task_ms"],
        ),
        (
            "client CPU: ours (stock httpx) / raw httpx, same requests",
            f"{stock['cpu'] / raw['cpu']:.2f}",
            "<= 1.3",
            stock["cpu"] <= 1.3 * raw["cpu"],
        ),
        (
            f"CPU while {n_big} tasks wait (share of a core)",
            f"{big['cpu_while_waiting']:.3f}",
            "< 0.25",
            big["cpu_while_waiting"] < 0.25,
        ),
        (
            f"RSS per task in flight, {n_big} tasks (KB)",
            f"{big['rss_per_task_kb']:.2f}",
            "<= 10",
            big["rss_per_task_kb"] <= 10,
        ),
        (
            f"RSS per task, {n_big} / {n_small} tasks",
            f"{big['rss_per_task_kb'] / max(small['rss_per_task_kb'], 1e-9):.2f}",
            "<= 1.2",
            big["rss_per_task_kb"] <= 1.2 * max(small["rss_per_task_kb"], 0.0),
        ),
        (
            "429 storm: requests / fault-free",
            f"{storm['counts']['requests'] / ours['counts']['requests']:.2f}",
            "<= 1.5",
            storm["counts"]["requests"] <= 1.5 * ours["counts"]["requests"],
        ),
        (
            "429 storm: tasks completed",
            f"{storm['completed']}/{r['tasks']}",
            "all",
            storm["completed"] == r["tasks"],
        ),
    ]


def machine() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "date": time.strftime("%Y-%m-%d"),
    }


def write(results: dict[str, Any], figures: list[tuple[str, str, str, bool]]) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        (
            f"Measured by `nox -s bench` on {m['date']}: Python {m['python']}, "
            f"{m['cpus']} cores, {m['platform']}. {results['tasks']} tasks of 2-6 s, "
            f"`max_in_flight={results['in_flight']}`, each client in its own process "
            "against the simulator served in another."
        ),
        "",
        "| figure | measured | target | met |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {'yes' if ok else '**no**'} |" for a, b, c, ok in figures]
    lines += [
        "",
        "![wall time and reads per task](chart.png)",
        "",
        (
            "Against servers whose progress or estimates mislead (steps, none, curves, "
            "biased or missing estimates, heavy tails): [the matrix](matrix.md)."
        ),
        "",
        (
            "Images, videos and audio from one client at once, on a sped-up clock: "
            "[the mixed benchmark](mixed.md)."
        ),
        "",
        (
            "One run on 1 and on 4 `evolink worker` processes over PostgreSQL, and the"
            " database's round trips per input: [the distributed benchmark](distributed.md)."
        ),
        "",
    ]
    (DOCS / "results.md").write_text("\n".join(lines))
    print("\n".join(lines[5:-9]))  # the table
    chart(results)


def chart(results: dict[str, Any]) -> None:
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    labels = [
        "ours (batch reads)",
        "ours (GET per task)",
        "hand-written, 1 s poll",
        "Evolink's client, 3 s poll",
    ]
    ratios = [results[label]["ratio"] for label in labels]
    requests = [results[label]["read_requests_per_task"] for label in labels]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    colors = ["#2a9d8f", "#2a9d8f", "#b0b0b0", "#b0b0b0"]
    short = ["ours\nbatch reads", "ours\nGET/task", "by hand\n1 s poll", "Evolink\n3 s poll"]
    left.bar(short, ratios, color=colors)
    left.axhline(1.0, color="black", linewidth=0.8)
    left.axhline(1.05, color="#e76f51", linestyle="--", linewidth=0.8, label="target 1.05")
    left.set_ylim(0.9, max(ratios) * 1.05)
    left.set_title("batch wall time / oracle (lower is better)")
    left.legend()
    right.bar(short, requests, color=colors)
    right.set_title("read requests per task (lower is better)")
    fig.tight_layout()
    fig.savefig(DOCS / "chart.png", dpi=120)


if __name__ == "__main__":
    main()
