"""The commands end to end through click's runner, on the simulator."""

from __future__ import annotations

import json
import runpy
import types
from functools import partial
from pathlib import Path

import httpx
import pytest
from _cli_journal import SyncJournal
from _cli_sim import BrokenFiles, create, creates, read, use, with_fates
from click.testing import CliRunner

from _fake_server import FakeEvolink
from evolink import AsyncEvolink
from evolink.cli import main
from evolink.cli._backend import make_simulator
from evolink.cli._demo import demo_rows
from evolink.cli._input import Defaults, read_prompt_file, rows_from_fields
from evolink.testing import Faults, Simulator, VirtualClock

KEY = "sk-evo-VERYSECRETKEY0123456789"


def _prompts(tmp_path: Path, text: str, name: str = "p.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _batch(runner, *args: str):
    return runner.invoke(main, ["batch", *args, "--simulate"], catch_exceptions=False)


#: Some tasks fail, all with this code (which ones: `with_fates`).
REFUSALS = Faults(task_failure=0.5, failure_codes=("content_policy_violation",))


def _second_fails(monkeypatch) -> Simulator:
    """`--simulate` on a simulator whose first task completes and whose second fails."""
    return use(monkeypatch, with_fates(["completed", "failed"], faults=REFUSALS))


def _error_of(sim: Simulator, task_id: str) -> dict:
    """The error of a failed task, as the simulator reports it."""
    error = read(sim, task_id)["error"]
    return {"code": error["code"], "message": error["message"]}


def test_batch_all_completed(tmp_path, sim, runner):
    """Every prompt completes: exit 0, images named by index and prompt, manifest, gallery."""
    source = _prompts(tmp_path, "a red fox in snow\n# skip me\n\n../../etc/passwd\n")
    out = tmp_path / "out"
    result = _batch(runner, str(source), "--out", str(out), "-n", "2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.png")) == [
        "0001-a-red-fox-in-snow-1.png",
        "0001-a-red-fox-in-snow-2.png",
        "0002-etc-passwd-1.png",
        "0002-etc-passwd-2.png",
    ]
    assert not list(tmp_path.glob("etc*"))
    lines = _manifest(out)
    assert [(m["index"], m["line"], m["status"]) for m in lines] == [
        (0, 1, "completed"),
        (1, 4, "completed"),
    ]
    assert lines[0]["files"] == ["0001-a-red-fox-in-snow-1.png", "0001-a-red-fox-in-snow-2.png"]
    assert lines[0]["credits"] == {"reserved": 5, "charged": 5}
    assert lines[0]["task_id"].startswith("task-unified-")
    assert lines[0]["request"] == {"model": "gpt-image-2", "prompt": "a red fox in snow", "n": 2}
    gallery = (out / "index.html").read_text()
    assert '<img src="0001-a-red-fox-in-snow-1.png"' in gallery
    assert "../../etc/passwd" in gallery
    assert "Gallery: file://" in result.output


def test_failures_exit_1_and_show_in_manifest_and_gallery(tmp_path, runner, monkeypatch):
    """A failed task gives exit 1; its error is in the manifest and on the gallery page."""
    sim = _second_fails(monkeypatch)
    source = _prompts(tmp_path, "fine\nplease FAIL <script>\n")
    out = tmp_path / "out"
    result = _batch(runner, str(source), "--out", str(out))
    assert result.exit_code == 1
    failed = _manifest(out)[1]
    assert failed["status"] == "failed"
    error = _error_of(sim, failed["task_id"])
    assert error["code"] == "content_policy_violation"
    assert failed["error"] == error
    gallery = (out / "index.html").read_text()
    assert f"content_policy_violation: {error['message']}" in gallery
    assert "please FAIL &lt;script&gt;" in gallery
    assert "<script>" not in gallery.split("<main>")[1].split("</main>")[0]


def test_invalid_rows_stop_the_run(tmp_path, sim, runner):
    """Invalid rows are listed with line numbers, nothing is sent, exit 2."""
    source = _prompts(tmp_path, '{"prompt": "ok"}\n{"prompt": "x", "n": 11}\n', "p.jsonl")
    result = _batch(runner, str(source), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "p.jsonl:2: n: is 11; the most allowed is 10" in result.output
    assert "--skip-invalid" in result.output
    assert sim.requests == []


def test_skip_invalid_makes_rejected_outcomes(tmp_path, sim, runner):
    """With --skip-invalid the valid rows run and invalid ones are 'rejected' (exit 1)."""
    source = _prompts(tmp_path, '{"prompt": "ok"}\n{"prompt": "x", "n": 0}\n', "p.jsonl")
    out = tmp_path / "out"
    result = _batch(runner, str(source), "--out", str(out), "--skip-invalid")
    assert result.exit_code == 1
    rejected = _manifest(out)[1]
    assert rejected["status"] == "rejected"
    assert rejected["error"]["message"].startswith("line 2: n:")
    assert len(creates(sim)) == 1


def test_unreadable_input_exits_2(tmp_path, sim, runner):
    """A file that is not UTF-8 stops with exit 2 and the line of the bad byte."""
    source = tmp_path / "p.txt"
    source.write_bytes(b"ok\n\xc3\x28 broken\n")
    result = _batch(runner, str(source), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "p.txt:2: not UTF-8" in result.output


def test_usage_errors_exit_2(tmp_path, runner):
    """A bad option value is a usage error (exit 2)."""
    source = _prompts(tmp_path, "fox\n")
    result = runner.invoke(main, ["batch", str(source), "--out", "o", "--max-credits", "lots"])
    assert result.exit_code == 2
    assert "is not a number" in result.output


def test_json_output(tmp_path, runner, monkeypatch):
    """--json prints one JSON document with counts, credits and every result."""
    _second_fails(monkeypatch)
    source = _prompts(tmp_path, "fox\nFAIL\n")
    result = _batch(runner, str(source), "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["counts"]["completed"] == 1
    assert document["counts"]["failed"] == 1
    assert document["credits"]["charged"] == 2.5
    assert [r["status"] for r in document["results"]] == ["completed", "failed"]


def test_plain_output_off_a_terminal(tmp_path, sim, runner):
    """Off a terminal, progress is plain log lines: no escape codes, a line per input."""
    source = _prompts(tmp_path, "fox\ncat\n")
    result = _batch(runner, str(source), "--out", str(tmp_path / "out"))
    assert "\x1b[" not in result.output
    assert "completed 0001-fox-1.png  1 image(s)" in result.output
    assert "progress: 2/2 done (2 completed, 0 failed, 0 skipped)" in result.output


def test_budget_skips_what_does_not_fit(tmp_path, sim, runner):
    """--max-credits: inputs that would go over the budget are skipped (exit 1)."""
    source = _prompts(tmp_path, "".join(f"prompt {i}\n" for i in range(6)))
    out = tmp_path / "out"
    result = _batch(runner, str(source), "--out", str(out), "--max-credits", "5")
    assert result.exit_code == 1
    statuses = [m["status"] for m in _manifest(out)]
    assert statuses.count("completed") == 2
    assert statuses.count("skipped") == 4


def test_existing_journal_needs_resume(tmp_path, sim, runner):
    """A second run into the same folder refuses without --resume (exit 2, nothing sent)."""
    source = _prompts(tmp_path, "fox\n")
    out = str(tmp_path / "out")
    assert _batch(runner, str(source), "--out", out).exit_code == 0
    sent = len(sim.requests)
    result = _batch(runner, str(source), "--out", out)
    assert result.exit_code == 2
    assert "--resume" in result.output
    assert len(sim.requests) == sent


def test_resume_of_a_finished_run_sends_nothing(tmp_path, sim, runner):
    """--resume after a complete run creates nothing and downloads nothing again."""
    source = _prompts(tmp_path, "fox\ncat\n")
    out = str(tmp_path / "out")
    assert _batch(runner, str(source), "--out", out).exit_code == 0
    sent = len(sim.requests)
    result = _batch(runner, str(source), "--out", out, "--resume")
    assert result.exit_code == 0
    assert len(sim.requests) == sent
    assert "resumed as done" in result.output


def test_resume_refuses_a_changed_input(tmp_path, sim, runner):
    """--resume with a different file is an input error (exit 2)."""
    out = str(tmp_path / "out")
    assert _batch(runner, str(_prompts(tmp_path, "fox\n")), "--out", out).exit_code == 0
    changed = _prompts(tmp_path, "fox\ncat\n", "q.txt")
    result = _batch(runner, str(changed), "--out", out, "--resume")
    assert result.exit_code == 2
    assert "the input changed" in result.output


def test_resume_reconciles_adopts_and_refetches(tmp_path, sim, runner):
    """From a crash's journal: a keyed create is resent with its key, a known task adopted,
    a missing image fetched again, an unstarted input created, and nothing created twice."""
    source = _prompts(tmp_path, "keyed\nadopted\nredownload\nfresh\n")
    out = tmp_path / "out"
    out.mkdir()
    # What a run killed mid-way leaves: tasks made on the server, rows in the journal.
    created = {
        p: create(sim, p, f"key-{p}-0123456789", wait=p == "redownload")
        for p in ("keyed", "adopted", "redownload")
    }
    ids = {p: task["id"] for p, task in created.items()}
    journal = SyncJournal(out)
    journal.bind(read_prompt_file(source, Defaults()).fingerprint())
    body = {"model": "gpt-image-2"}
    journal.record_create(0, {**body, "prompt": "keyed"}, "key-keyed-0123456789")
    journal.record_create(1, {**body, "prompt": "adopted"}, "key-adopted-0123456789")
    journal.record_created(1, {**body, "prompt": "adopted"}, ids["adopted"])
    journal.record_outcome(
        2,
        {**body, "prompt": "redownload"},
        status="completed",
        task_id=ids["redownload"],
        results=tuple(created["redownload"]["results"]),
    )
    journal.close()
    sent = len(sim.requests)
    result = _batch(runner, str(source), "--out", str(out), "--resume")
    assert result.exit_code == 0, result.output
    resent = creates(sim, sent)
    assert sorted(r.body["prompt"] for r in resent) == ["fresh", "keyed"]
    keyed = next(r for r in resent if r.body["prompt"] == "keyed")
    assert keyed.idempotency_key == "key-keyed-0123456789"
    assert keyed.replayed
    assert len(sim.tasks) == 4  # the keyed create was answered with its first task
    assert sorted(p.name for p in out.glob("*.png")) == [
        "0001-keyed-1.png",
        "0002-adopted-1.png",
        "0003-redownload-1.png",
        "0004-fresh-1.png",
    ]


def test_generate(tmp_path, sim, runner):
    """`generate` saves one prompt's images in --out and reports them as JSON."""
    out = tmp_path / "out"
    result = runner.invoke(
        main,
        [
            "generate",
            "a red fox",
            "-n",
            "2",
            "--size",
            "1:1",
            "--out",
            str(out),
            "--simulate",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["results"][0]["files"] == ["0001-a-red-fox-1.png", "0001-a-red-fox-2.png"]
    assert not (out / "manifest.jsonl").exists()
    assert creates(sim)[0].body["size"] == "1:1"


def test_task_get_and_credits(tmp_path, runner, monkeypatch):
    """`task get` and `credits` print what the API says, as text or JSON."""
    sim = use(monkeypatch, Simulator(balance="102.5"))  # 100 left once the fox is reserved
    task_id = create(sim, "fox", "k" * 20)["id"]
    shown = runner.invoke(main, ["task", "get", task_id, "--simulate", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["id"] == task_id
    text = runner.invoke(main, ["task", "get", task_id, "--simulate"])
    assert task_id in text.output
    missing = runner.invoke(main, ["task", "get", "task-unified-nope", "--simulate"])
    assert missing.exit_code == 1
    assert "404" in missing.output
    balance = runner.invoke(main, ["credits", "--simulate"])
    assert "remaining credits: 100" in balance.output
    as_json = runner.invoke(main, ["credits", "--simulate", "--json"])
    assert json.loads(as_json.stdout)["user"]["remaining_credits"] == 100


def test_no_key_is_a_usage_error(tmp_path, runner, monkeypatch):
    """Without a key (and without --simulate) the command says how to fix it; exit 2."""
    monkeypatch.delenv("EVOLINK_API_KEY", raising=False)
    result = runner.invoke(main, ["credits"])
    assert result.exit_code == 2
    assert "EVOLINK_API_KEY" in result.output
    assert "--simulate" in result.output


def test_api_key_never_written(tmp_path, runner, monkeypatch):
    """The API key appears in no output, manifest, gallery or journal."""
    sim = with_fates(["completed", "failed"], api_keys={KEY}, faults=REFUSALS)
    monkeypatch.setattr(
        "evolink.cli._backend.AsyncEvolink", partial(AsyncEvolink, transport=sim.transport())
    )
    monkeypatch.setattr(
        "evolink.cli._backend.httpx",
        types.SimpleNamespace(
            AsyncClient=partial(httpx.AsyncClient, transport=sim.transport()),
            Timeout=httpx.Timeout,
        ),
    )
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    source = _prompts(tmp_path, "fox\nFAIL\n")
    out = tmp_path / "out"
    result = runner.invoke(main, ["batch", str(source), "--out", str(out), "--json"])
    assert result.exit_code == 1
    # The simulator takes only KEY: the create went through with it.
    assert (creates(sim)[0].status, creates(sim)[0].key) == (200, f"sk-evo-…{KEY[-4:]}")
    assert KEY not in result.output
    for path in out.iterdir():
        assert KEY.encode() not in path.read_bytes(), path.name


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["batch", "--help"],
        ["generate", "--help"],
        ["task", "get", "--help"],
        ["credits", "--help"],
        ["simulator", "--help"],
        ["demo", "--help"],
    ],
    ids=" ".join,
)
def test_help_everywhere(runner, args):
    """Every command has --help."""
    result = runner.invoke(main, args)
    assert result.exit_code == 0
    assert "Usage: " in result.output


def test_generate_twice_keeps_the_first_images(tmp_path, sim, runner):
    """A second `generate` into the same folder adds files instead of overwriting."""
    out = str(tmp_path / "out")
    for _ in range(2):
        result = runner.invoke(main, ["generate", "fox", "--out", out, "--simulate"])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in Path(out).iterdir()) == ["0001-fox-1-2.png", "0001-fox-1.png"]


def test_demo_runs_and_reruns(tmp_path, sim, runner):
    """The demo fills its folder; a second demo replaces its own files and keeps others."""
    out = tmp_path / "demo"
    first = runner.invoke(main, ["demo", "--out", str(out), "-n", "6"])
    assert first.exit_code == 0, first.output
    assert len(_manifest(out)) == 6
    assert len(list(out.glob("*.png"))) == 8  # prompts 1 and 6 ask for 2 images
    (out / "mine.txt").write_text("keep me")
    second = runner.invoke(main, ["demo", "--out", str(out), "-n", "3", "--json"])
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["counts"]["completed"] == 3
    assert sorted(
        p.name for p in out.iterdir() if p.suffix != ".png" and not p.name.startswith(".evolink")
    ) == [
        "index.html",
        "journal.sqlite3",
        "manifest.jsonl",
        "mine.txt",
    ]
    assert len(list(out.glob("*.png"))) == 4


def test_the_demo_does_not_clear_another_runs_folder(tmp_path):
    """`evolink demo --out` on a batch's folder refuses (exit 2) and deletes nothing."""
    out = tmp_path / "out"
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox\n")
    runner = CliRunner()
    batch = runner.invoke(main, ["batch", str(prompts), "--out", str(out), "--simulate", "--plain"])
    assert 0 == batch.exit_code, batch.output
    images = sorted(out.glob("*.png"))
    demo = runner.invoke(main, ["demo", "--out", str(out), "-n", "1", "--plain"])
    assert 2 == demo.exit_code
    assert "another run" in demo.output
    assert images == sorted(out.glob("*.png"))
    assert (out / "journal.sqlite3").exists()


def test_demo_rows_are_varied_and_valid():
    """The demo's built-in prompts are all different and all valid requests."""
    rows = rows_from_fields(demo_rows(50), Defaults()).rows
    assert all(r.valid for r in rows)
    assert len({r.prompt for r in rows}) == 50


def test_batch_against_the_simulator(tmp_path, runner, monkeypatch):
    """On the real in-process simulator: tasks run, images download as PNGs, credits add up."""
    simulator = Simulator(seed=3, durations=(0.05, 0.2))
    monkeypatch.setattr("evolink.cli._backend.make_simulator", lambda **_: simulator)
    source = _prompts(
        tmp_path, '{"prompt": "fox", "n": 2, "size": "2:3"}\n{"prompt": "owl"}\n', "p.jsonl"
    )
    out = tmp_path / "out"
    result = _batch(runner, str(source), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [r["files"] for r in document["results"]] == [
        ["0001-fox-1.png", "0001-fox-2.png"],
        ["0002-owl-1.png"],
    ]
    assert (out / "0001-fox-1.png").read_bytes().startswith(b"\x89PNG")
    assert document["credits"]["charged"] == float(simulator.ledger.charged)


def test_failed_download_is_its_own_outcome(tmp_path, sim, runner, monkeypatch):
    """An image that cannot be fetched makes a 'download_failed' outcome, not a crash."""
    broken = BrokenFiles(sim, (200, "text/html", b"<html>"))  # the first task's images
    use(monkeypatch, types.SimpleNamespace(transport=lambda: broken))
    source = _prompts(tmp_path, "fox\nowl\n")
    out = tmp_path / "out"
    result = _batch(runner, str(source), "--out", str(out))
    assert result.exit_code == 1
    first, second = _manifest(out)
    assert first["status"] == "download_failed"
    assert first["error"]["code"] == "download_failed"
    assert "not an image" in first["error"]["message"]
    assert second["status"] == "completed"


def test_resume_refetches_a_failed_download(tmp_path, sim, runner, monkeypatch):
    """After a failed download, --resume reads the task again and fetches its image."""
    broken = BrokenFiles(sim, (404, "text/plain", b"gone"))
    use(monkeypatch, types.SimpleNamespace(transport=lambda: broken))
    source = _prompts(tmp_path, "fox\n")
    out = tmp_path / "out"
    assert _batch(runner, str(source), "--out", str(out)).exit_code == 1
    use(monkeypatch, sim)  # the file is back
    sent = len(sim.requests)
    result = _batch(runner, str(source), "--out", str(out), "--resume")
    assert result.exit_code == 0, result.output
    assert len(creates(sim)) == 1
    assert [] == creates(sim, sent)
    assert _manifest(out)[0]["files"] == ["0001-fox-1.png"]


def test_resume_with_an_expired_task(tmp_path, sim, runner):
    """A journaled task the server no longer knows ends 'uncertain' (it is not made again)."""
    source = _prompts(tmp_path, "fox\n")
    out = tmp_path / "out"
    out.mkdir()
    journal = SyncJournal(out)
    journal.bind(read_prompt_file(source, Defaults()).fingerprint())
    journal.record_created(0, {"prompt": "fox"}, "task-unified-1757156493-gone")
    journal.close()
    result = _batch(runner, str(source), "--out", str(out), "--resume")
    assert result.exit_code == 1
    [line] = _manifest(out)
    assert (line["status"], line["error"]["code"]) == ("uncertain", "task_not_found")
    assert creates(sim) == []


def test_completed_task_without_images(tmp_path, runner, monkeypatch):
    """A task that completes with no image at all is reported, not counted as done.

    The simulator never completes a task without images: the scripted server does."""
    fake = use(monkeypatch, FakeEvolink(VirtualClock(), duration=0))
    view = fake.view

    def no_results(task):
        answer = view(task)
        answer.pop("results", None)
        return answer

    monkeypatch.setattr(fake, "view", no_results)
    out = tmp_path / "out"
    result = _batch(runner, str(_prompts(tmp_path, "fox\n")), "--out", str(out))
    assert result.exit_code == 1
    assert _manifest(out)[0]["error"]["message"] == "the task completed without any image"


def test_task_get_text_shows_results_and_errors(tmp_path, runner, monkeypatch):
    """`task get` without --json shows credits, result links and the error."""
    sim = _second_fails(monkeypatch)
    done = create(sim, "fox", "a" * 20, wait=True)
    failed = create(sim, "FAIL", "b" * 20, wait=True)
    shown = runner.invoke(main, ["task", "get", done["id"], "--simulate"])
    assert "credits reserved: 2.5" in shown.output
    assert done["results"][0] in shown.output
    refused = runner.invoke(main, ["task", "get", failed["id"], "--simulate"])
    error = failed["error"]
    assert f"error content_policy_violation: {error['message']}" in refused.output


def test_credits_of_a_capped_key(tmp_path, runner, monkeypatch):
    """`credits` shows the key's own cap and the account's balance.

    The simulator gives a key no cap of its own: the scripted server answers one."""
    balance = {"remaining_credits": 7, "used_credits": 3, "unlimited_credits": False}
    user = {"remaining_credits": 90, "used_credits": 10}
    credits = {"data": {"token": balance, "user": user}}
    use(monkeypatch, FakeEvolink(VirtualClock(), credits=credits))
    result = runner.invoke(main, ["credits", "--simulate"])
    assert result.output.splitlines() == [
        "remaining credits: 7",
        "account: 90 left, 10 used",
        "this key: 7 left, 3 used",
    ]


def test_empty_file_exits_2(tmp_path, runner):
    """A file with no prompt (only comments) is an input error."""
    result = runner.invoke(main, ["batch", str(_prompts(tmp_path, "# nothing\n")), "--out", "o"])
    assert result.exit_code == 2
    assert "no prompts found" in result.output


def test_module_entry_point(monkeypatch):
    """`python -m evolink.cli` runs the same command."""
    monkeypatch.setattr("sys.argv", ["evolink", "--version"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("evolink.cli", run_name="__main__")
    assert exited.value.code == 0


def test_make_simulator_builds_the_real_one():
    """--simulate builds evolink.testing's Simulator with the asked durations and failures."""
    simulator = make_simulator(durations=(1.0, 2.0), failures=0.25, seed=5)
    assert isinstance(simulator, Simulator)
    assert simulator.faults.task_failure == 0.25
    assert simulator.seed == 5
