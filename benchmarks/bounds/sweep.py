"""The least mean delay any read schedule can reach at a given number of reads a task,
for tasks of 2-6 s with honest estimates (+-15 %, whole seconds), the distribution known
exactly: a dynamic programme over read times (`read_bound.c`), per estimate, weighted.

    python benchmarks/bounds/sweep.py STEPS PRICE[,PRICE...] [GRID]

STEPS: 4 for progress in steps of 25 % (coarse steps), 1 for no progress (a read shows
only running or done). Each price of a read gives one point of the frontier: reads a
task, mean delay (s), and wall / oracle ~ 1 + delay / 4 s (100 slots running back to
back, before any request latency). docs/explanation/waiting.md, "What is reachable".
Needs a C compiler (`cc`).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    steps, prices = sys.argv[1], [float(p) for p in sys.argv[2].split(",")]
    grid = sys.argv[3] if len(sys.argv) > 3 else "0.02"
    with tempfile.TemporaryDirectory() as tmp:
        binary = str(Path(tmp) / "read_bound")
        subprocess.run(["cc", "-O2", "-o", binary, str(HERE / "read_bound.c"), "-lm"], check=True)
        for price in prices:
            reads = delay = weight = 0.0
            for estimate in range(1, 9):
                out = subprocess.run(
                    [binary, grid, steps, "0.15", str(price), str(estimate)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                found = re.search(r"pE=([\d.]+) reads=([\d.]+) delay=([\d.]+)", out)
                if found is None:
                    continue
                p, r, d = map(float, found.groups())
                weight, reads, delay = weight + p, reads + p * r, delay + p * d
            print(
                f"price {price}: {reads / weight:.3f} reads a task, mean delay "
                f"{delay / weight:.4f} s, wall / oracle ~ {1 + delay / weight / 4:.4f}"
            )


if __name__ == "__main__":
    main()
