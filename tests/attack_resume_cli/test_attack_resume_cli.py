"""Attack: `evolink batch` SIGKILLed at random moments, then `--resume` (real processes).

The server is the SDK's simulator in its own process (tests/attack_resume_cli/_server.py),
with an extra `/__record` route giving its own truth: every request and every task made.
"""

from __future__ import annotations

import random
import re
from decimal import Decimal
from pathlib import Path

import pytest

from . import _harness as h

N_IMAGES = 2
PROMPTS = 30
FAST = {"durations": [0.3, 1.0], "pending_time": 0.1}


def _run_with_kills(cli: h.Cli, rng: random.Random, kills: int, lo=0.2, hi=1.2) -> int:
    """Start, SIGKILL `kills` times (first run, then the resumed runs), resume to the end."""
    proc = cli.start(resume=False)
    for _ in range(kills):
        if not cli.kill_after(proc, rng, lo, hi):
            cli.finish(proc)
        proc = cli.start(resume=True)
    code, _ = cli.finish(proc, timeout=40)
    return code


def _own_task_checks(lines, prompts, rec) -> list[str]:
    by_prompt = h.tasks_by_prompt(rec)
    problems = []
    assert [line["index"] for line in lines] == list(range(len(prompts))), "one line per input"
    for line in lines:
        prompt = prompts[line["index"]]
        if line["prompt"] != prompt:
            problems.append(f"input {line['index']}: manifest prompt {line['prompt']!r}")
        own = {t["id"] for t in by_prompt.get(prompt, [])}
        if line["task_id"] is not None and line["task_id"] not in own:
            problems.append(f"input {line['index']}: task {line['task_id']} is not of its prompt")
    return problems


@pytest.mark.parametrize("seed", [11, pytest.param(23, marks=pytest.mark.soak)])
def test_kill_three_times_key_honouring_server(tmp_path: Path, seed: int) -> None:
    """(1)+(5): many creates in flight, killed 3 times (resumed runs killed too): one task
    per prompt, every image of its own prompt, every input completed."""
    rng = random.Random(seed)
    prompts = h.write_prompts(tmp_path / "p.txt", PROMPTS, f"honour{seed}")
    config = {
        "sim": {**FAST, "seed": seed},
        "faults": {"lost_create_response": 0.15, "slow_response": 0.4, "slow_delay": 0.5},
    }
    with h.server(config) as url:
        cli = h.Cli(
            tmp_path / "p.txt", tmp_path / "out", url, "--max-in-flight", "10", "-n", str(N_IMAGES)
        )
        code = _run_with_kills(cli, rng, kills=3)
        rec = h.record(url)
    lines = h.manifest(tmp_path / "out")
    counts = {p: len(h.tasks_by_prompt(rec).get(p, [])) for p in prompts}
    assert {i: c for i, p in enumerate(prompts) if (c := counts[p]) != 1} == {}, (
        "every prompt exactly one task on a key-honouring server"
    )
    assert _own_task_checks(lines, prompts, rec) == []
    assert h.check_images(tmp_path / "out", lines, prompts, N_IMAGES) == []
    assert [line["status"] for line in lines] == ["completed"] * PROMPTS, code
    assert all(len(line["files"]) >= 1 for line in lines)


def _flagged_indexes(stderr: str) -> set[int]:
    return {int(m) for m in re.findall(r"input (\d+)'s create", stderr)}


@pytest.fixture(scope="module")
def ignoring_run(tmp_path_factory):
    """(2): a server that ignores idempotency keys, creates slow to answer, 3 kills."""
    tmp = tmp_path_factory.mktemp("ignoring")
    rng = random.Random(5)
    prompts = h.write_prompts(tmp / "p.txt", PROMPTS, "ignore")
    config = {
        "sim": {**FAST, "seed": 5, "idempotency": False},
        "delay_create_answer": 1.5,
    }
    with h.server(config) as url:
        cli = h.Cli(tmp / "p.txt", tmp / "out", url, "--max-in-flight", "12", "-n", str(N_IMAGES))
        _run_with_kills(cli, rng, kills=3, lo=0.3, hi=1.0)
        rec = h.record(url)
    resumed = sum(1 for s in cli.sessions if s["resume"])
    return tmp, prompts, rec, h.manifest(tmp / "out"), cli.stderr(), resumed


def test_key_ignoring_server_bound_and_ownership(ignoring_run) -> None:
    tmp, prompts, rec, lines, stderr, resumed = ignoring_run
    by_prompt = h.tasks_by_prompt(rec)
    extra = {i: len(by_prompt.get(p, [])) - 1 for i, p in enumerate(prompts)}
    extra = {i: e for i, e in extra.items() if e > 0}
    # No fault on the server: the only creates of unknown fate are the ones a kill cut off,
    # so at most one possible duplicate a resumed batch.
    assert sum(extra.values()) <= resumed, (extra, resumed)
    assert _own_task_checks(lines, prompts, rec) == []
    assert h.check_images(tmp / "out", lines, prompts, N_IMAGES) == []
    # Every duplicated prompt is at least warned about, by its input's index, in the log.
    assert set(extra) <= _flagged_indexes(stderr), (extra, _flagged_indexes(stderr))


def test_key_ignoring_server_duplicates_flagged_in_manifest(ignoring_run) -> None:
    """The outcome of a possibly duplicated input must say so (`possible_duplicate`): the
    CLI's outcome record is manifest.jsonl ("one line per input ... for scripts")."""
    _, prompts, rec, lines, stderr, _ = ignoring_run
    by_prompt = h.tasks_by_prompt(rec)
    dup = [i for i, p in enumerate(prompts) if len(by_prompt.get(p, [])) > 1]
    warned = _flagged_indexes(stderr)
    suspicious = sorted(set(dup) | warned)
    if not suspicious:
        pytest.skip("this trial made no possible duplicate")
    unflagged = [i for i in suspicious if not lines[i].get("possible_duplicate")]
    assert unflagged == [], (
        f"inputs {unflagged} may have been paid twice (server tasks per prompt: "
        f"{ {i: len(by_prompt[prompts[i]]) for i in dup} }, warned in log: {sorted(warned)}) "
        f"but manifest.jsonl carries no possible_duplicate flag: keys {sorted(lines[0])}"
    )


def test_listing_unreadable_key_ignoring_every_resend_flagged(tmp_path: Path) -> None:
    """The listing answers 500 and keys are ignored: each lost create resent is warned."""
    rng = random.Random(7)
    prompts = h.write_prompts(tmp_path / "p.txt", PROMPTS, "nolist")
    config = {
        "sim": {**FAST, "seed": 7, "idempotency": False},
        "delay_create_answer": 1.5,
        "list_error": True,
    }
    with h.server(config) as url:
        cli = h.Cli(
            tmp_path / "p.txt", tmp_path / "out", url, "--max-in-flight", "12", "-n", str(N_IMAGES)
        )
        _run_with_kills(cli, rng, kills=2, lo=0.4, hi=0.9)
        rec = h.record(url)
    lines = h.manifest(tmp_path / "out")
    by_prompt = h.tasks_by_prompt(rec)
    dup = {i for i, p in enumerate(prompts) if len(by_prompt.get(p, [])) > 1}
    assert all(len(by_prompt.get(p, [])) <= 1 + 2 for p in prompts)
    assert _own_task_checks(lines, prompts, rec) == []
    assert h.check_images(tmp_path / "out", lines, prompts, N_IMAGES) == []
    assert dup <= _flagged_indexes(cli.stderr()), (sorted(dup), cli.stderr()[-3000:])


def test_kill_during_429_storm_then_resume(tmp_path: Path) -> None:
    """(3): creates answered 429 with Retry-After (a storm, plus random 429s); killed in it."""
    rng = random.Random(3)
    prompts = h.write_prompts(tmp_path / "p.txt", PROMPTS, "storm")
    config = {
        "sim": {**FAST, "seed": 3, "retry_after": 1},
        "faults": {"rate_limit": 0.1, "lost_create_response": 0.1},
        "storm_creates": 12,
        "storm_retry_after": 1,
    }
    with h.server(config) as url:
        cli = h.Cli(
            tmp_path / "p.txt", tmp_path / "out", url, "--max-in-flight", "10", "-n", str(N_IMAGES)
        )
        proc = cli.start(resume=False)
        assert cli.kill_after(proc, rng, 0.8, 1.5)
        storm = h.control(url)
        assert storm["storm_answered"] > 0, "the kill came during the storm"
        h.control(url, storm_creates=8)  # the resumed run walks into a storm too
        proc = cli.start(resume=True)
        assert cli.kill_after(proc, rng, 0.8, 1.5)
        proc = cli.start(resume=True)
        cli.finish(proc, timeout=45)
        rec = h.record(url)
    lines = h.manifest(tmp_path / "out")
    counts = {i: len(h.tasks_by_prompt(rec).get(p, [])) for i, p in enumerate(prompts)}
    assert {i: c for i, c in counts.items() if c != 1} == {}
    assert _own_task_checks(lines, prompts, rec) == []
    assert h.check_images(tmp_path / "out", lines, prompts, N_IMAGES) == []
    assert [line["status"] for line in lines] == ["completed"] * PROMPTS


def test_max_credits_across_kills(tmp_path: Path) -> None:
    """(4): --max-credits bounds what the whole run commits, across kills and resumes."""
    rng = random.Random(9)
    prompts = h.write_prompts(tmp_path / "p.txt", PROMPTS, "budget")
    budget = Decimal(42)
    config = {
        "sim": {**FAST, "seed": 9},
        "faults": {"lost_create_response": 0.2, "slow_response": 0.4, "slow_delay": 0.5},
    }
    with h.server(config) as url:
        cli = h.Cli(
            tmp_path / "p.txt",
            tmp_path / "out",
            url,
            "--max-in-flight",
            "8",
            "-n",
            str(N_IMAGES),
            "--max-credits",
            str(budget),
        )
        _run_with_kills(cli, rng, kills=2, lo=0.3, hi=0.9)
        rec = h.record(url)
    lines = h.manifest(tmp_path / "out")
    reserved = sum(
        Decimal(e["amount"]) for e in rec["ledger"] if e["kind"] in {"reserve", "reserved"}
    )
    kinds = {e["kind"] for e in rec["ledger"]}
    assert Decimal(rec["peak_committed"]) <= budget, (rec["peak_committed"], kinds)
    assert Decimal(rec["charged"]) <= budget
    assert reserved <= budget or not kinds & {"reserve", "reserved"}, (reserved, kinds)
    counts = [len(h.tasks_by_prompt(rec).get(p, [])) for p in prompts]
    assert max(counts) <= 1
    assert sum(counts) < PROMPTS, "the budget must have stopped the run short"
    assert _own_task_checks(lines, prompts, rec) == []
    statuses = {line["status"] for line in lines}
    # `uncertain` is allowed (a resend whose answer was lost again), never `failed`.
    assert statuses <= {"completed", "skipped", "uncertain"}, statuses
