"""Crash and resume, seeded: the CLI killed with SIGKILL at random moments, then `--resume`.

Each trial serves the simulator on loopback (short tasks, lost create answers, read errors),
runs `python -m evolink.cli batch`, kills it with SIGKILL at a moment its seed picks (after
a random delay, mid-create once k creates were answered, or mid-download once k images are
on disk), resumes (and may kill again), then resumes to the end. From the simulator's own
record: no input went out under two idempotency keys or made two tasks; every image is on
disk exactly once; the manifest has one line per input. CI runs 2 trials;
`nox -s soak` runs EVOLINK_CRASH_TRIALS.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from _figures import record

from evolink.testing import Faults, Simulator

TRIALS = int(os.environ.get("EVOLINK_CRASH_TRIALS", "2"))
PROMPTS = 12
IMAGES = 2
KEY = "sk-evo-crash-trials-key-000000"
MOMENTS = ("delay", "mid-create", "mid-download")
FIGURES: Counter[str] = Counter()


def _start(source: Path, out: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
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
            "--max-in-flight",
            "4",
            "-n",
            str(IMAGES),
            "--plain",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _creates(simulator: Simulator) -> int:
    return simulator.count("POST", "/v1/images/generations")


def _kill_at(
    moment: str, rng: random.Random, process: subprocess.Popen[str], sim: Simulator, out: Path
) -> bool:
    """Wait for the trial's moment, then SIGKILL; False if the run ended first."""
    deadline = time.monotonic() + 20
    if moment == "delay":
        # From the journal's creation: before it nothing is sent, and `--resume` refuses a
        # folder without one (a busy machine may take seconds to start the command).
        wait = rng.uniform(0.3, 2.5)
        fire_at: list[float] = []

        def ready() -> bool:
            if not fire_at and (out / "journal.sqlite3").exists():
                fire_at.append(time.monotonic() + wait)
            return bool(fire_at) and time.monotonic() >= fire_at[0]
    elif moment == "mid-create":
        at_least = _creates(sim) + rng.randint(1, PROMPTS // 2)
        ready = lambda: _creates(sim) >= at_least  # noqa: E731
    else:
        at_least = len(list(out.glob("*.png"))) + rng.randint(1, PROMPTS)
        ready = lambda: (  # noqa: E731
            any(out.glob(".*.part")) or len(list(out.glob("*.png"))) >= at_least
        )
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if ready():
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=10)
            return True
        time.sleep(0.002)
    raise AssertionError(f"the moment {moment!r} never came")


def _ambiguous(out: Path) -> set[int]:
    """Indexes the manifest says ended uncertain for an ambiguous listing."""
    found = set()
    for line in (out / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["status"] == "uncertain" and (entry.get("error") or {}).get("code") == (
            "ambiguous_listing"
        ):
            found.add(entry["index"])
    return found


def _check(sim: Simulator, out: Path, prompts: list[str], ambiguous: set[int]) -> None:
    keys: dict[str, set[str | None]] = defaultdict(set)
    for request in sim.requests:
        if request.method == "POST" and request.path == "/v1/images/generations":
            if request.body is None:
                # Cut off mid-body by the kill: the server refused it, made nothing.
                assert request.status >= 400
                continue
            keys[request.body["prompt"]].add(request.idempotency_key)
    # No create body went out under two keys, so no input can have made two tasks. An
    # input left uncertain may never have reached the server (killed before its body went
    # out): one key and one task at most, never two.
    made = Counter(t.prompt for t in sim.tasks.values())
    assert set(keys) | set(made) <= set(prompts)
    for index, prompt in enumerate(prompts):
        allowed = (0, 1) if index in ambiguous else (1,)
        assert len(keys.get(prompt, ())) in allowed, prompt
        assert made[prompt] in allowed, prompt
    pngs = sorted(p.name for p in out.glob("*.png"))
    for index, prompt in enumerate(prompts):
        if index in ambiguous:
            continue
        made = sim.task(next(t for t, v in sim.tasks.items() if v.prompt == prompt)).images
        mine = [name for name in pngs if name.startswith(f"{index + 1:04d}-")]
        # Exactly once each: image 1..made, no copies under other names.
        assert [f"-{n}.png" for n in range(1, made + 1)] == sorted(
            "-" + name.rsplit("-", 1)[1] for name in mine
        )
    assert not list(out.glob(".*.part"))
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert list(range(len(prompts))) == [m["index"] for m in manifest]
    assert ["uncertain" if m["index"] in ambiguous else "completed" for m in manifest] == [
        m["status"] for m in manifest
    ]
    assert sorted(pngs) == sorted(f for m in manifest for f in m["files"])


@pytest.fixture(scope="module", autouse=True)
def _figures():
    FIGURES.clear()
    yield
    record("crash", dict(FIGURES))


@pytest.mark.parametrize("trial", [pytest.param(t, id=f"trial-{t}") for t in range(TRIALS)])
def test_sigkill_at_random_moments_then_resume(tmp_path, trial):
    """Killed at seeded moments (delay, mid-create, mid-download), resumes finish it once."""
    rng = random.Random(f"crash-{trial}")
    sim = Simulator(
        seed=trial,
        durations=(0.3, 0.9),
        faults=Faults(lost_create_response=0.15, read_errors=0.05, partial_completion=0.2),
    )
    prompts = [f"crash trial {trial} prompt {i}" for i in range(PROMPTS)]
    source = tmp_path / "prompts.txt"
    source.write_text("\n".join(prompts) + "\n")
    out = tmp_path / "out"
    kills = 0
    with sim.serve_in_thread() as url:
        process = _start(source, out, url)
        for round_ in range(rng.choice((1, 2))):
            moment = MOMENTS[(trial + round_) % len(MOMENTS)]
            if not _kill_at(moment, rng, process, sim, out):
                break
            kills += 1
            FIGURES[f"kill_{moment}"] += 1
            process = _start(source, out, url, "--resume")
        stdout, stderr = process.communicate(timeout=60)
        if process.returncode != 0:  # a last resume if the final run was cut short
            process = _start(source, out, url, "--resume")
            stdout, stderr = process.communicate(timeout=60)
    # Lost creates sent at the same moment may be told apart by nothing in the task
    # listing: they end `uncertain` (`ambiguous_listing`, docs/how-to/resume.md), never
    # resent, never guessed. Everything else completes.
    ambiguous = _ambiguous(out)
    assert (0 if not ambiguous else 1) == process.returncode, stdout + stderr
    assert kills >= 1
    _check(sim, out, prompts, ambiguous)
    FIGURES["trials"] += 1
    FIGURES["kills"] += kills
    FIGURES["requests"] += len(sim.requests)
    FIGURES["lost_create_answers"] += sum(1 for r in sim.requests if r.fault == "lost_response")
    FIGURES["faults"] += sum(1 for r in sim.requests if r.fault is not None)
    FIGURES["images_on_disk"] += len(list(out.glob("*.png")))
