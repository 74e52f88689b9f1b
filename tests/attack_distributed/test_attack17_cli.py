"""The command line: bad input, secrets in output, `evolink status` against what happened."""

from __future__ import annotations

import collections
import subprocess
from pathlib import Path

from test_attack17_workers import KEY, _cli, _serve_simulator, _status, _stop_simulator

from conftest import PYTHON, child_env

PASSWORD = "Pg-" + "Hq4Wn8Tz"


def _with_password(db: str) -> str:
    user, host = db.split("://", 1)[1].split("@", 1)
    return f"postgresql://{user}:{PASSWORD}@{host}"


def test_malformed_journal_urls_fail_clearly_before_sending(tmp_path: Path) -> None:
    """Promise (brief of issue 17's attack; docs/reference/errors.md: JournalError 'the
    database cannot be reached'): a malformed journal URL gets a clear error (exit 2, no
    traceback) before anything is sent."""
    sim, base_url, record_path = _serve_simulator(tmp_path)
    (tmp_path / "p.txt").write_text("a fox\n")
    env = child_env(EVOLINK_API_KEY=KEY, EVOLINK_BASE_URL=base_url)
    try:
        for url in (
            "postgresql://127.0.0.1:notaport/db",
            "postgresql://[::1/db",
            "mysql://127.0.0.1/db",
            "postgresql://127.0.0.1:1/db",
        ):
            for args in (
                [
                    "batch",
                    str(tmp_path / "p.txt"),
                    "--out",
                    str(tmp_path / "o"),
                    "--journal",
                    url,
                    "--run",
                    "x",
                    "--enqueue",
                ],
                ["worker", "--journal", url, "--burst"],
                ["status", "--journal", url, "--run", "x"],
            ):
                result = _cli(*args, env=env)
                text = result.stdout + result.stderr
                assert result.returncode == 2, (args, text)
                assert "Traceback" not in text, (args, text)
    finally:
        record = _stop_simulator(sim, record_path)
    assert record["requests"] == []


def test_empty_run_name_is_refused(db: str, tmp_path: Path) -> None:
    """Brief of the attack: 'a run name that is not valid gets a clear typed error before
    anything is sent'. An empty (or blank) --run is accepted and enqueued, and the hint printed
    (`evolink status --run `) is a command that cannot be run; the docs define no valid names."""
    (tmp_path / "p.txt").write_text("a fox\n")
    for name in ("", "   "):
        result = _cli(
            "batch",
            str(tmp_path / "p.txt"),
            "--out",
            str(tmp_path / "o"),
            "--journal",
            db,
            "--run",
            name,
            "--enqueue",
        )
        assert result.returncode == 2, (repr(name), result.stdout, result.stderr)


def test_reused_run_name_is_refused_with_exit_2(db: str, tmp_path: Path) -> None:
    """Promise (docs/how-to/many-machines.md): 'A run name is used once: to enqueue the file
    again, name another --run.' (exit status 2: usage or input errors, `evolink batch --help`)."""
    (tmp_path / "p.txt").write_text("a fox\nan owl\n")
    args = (
        "batch",
        str(tmp_path / "p.txt"),
        "--out",
        str(tmp_path / "o"),
        "--journal",
        db,
        "--run",
        "once",
        "--enqueue",
    )
    assert _cli(*args).returncode == 0
    again = _cli(*args)
    assert again.returncode == 2, again.stdout + again.stderr
    assert _status(db, "once")["jobs"] == {"todo": 1}


def test_password_and_key_never_in_cli_output(db: str, tmp_path: Path) -> None:
    """Promise (docs/how-to/app-replicas.md): 'never the API key, the token or the database
    password, and neither do the log lines and errors (the database URL's password is shown
    as ***)'; the API key never appears in files written either."""
    sim, base_url, record_path = _serve_simulator(tmp_path, "--durations", "0.5", "1")
    url = _with_password(db)
    (tmp_path / "p.txt").write_text("a fox\nan owl\na lynx\n")
    out = tmp_path / "out"
    env = child_env(EVOLINK_API_KEY=KEY, EVOLINK_BASE_URL=base_url)
    texts = []
    try:
        enq = _cli(
            "batch",
            str(tmp_path / "p.txt"),
            "--out",
            str(out),
            "--journal",
            url,
            "--run",
            "pw",
            "--enqueue",
            env=env,
        )
        assert enq.returncode == 0, enq.stderr
        texts.append(enq.stdout + enq.stderr)
        work = _cli("worker", "--journal", url, "--burst", "--max-in-flight", "4", env=env)
        texts.append(work.stdout + work.stderr)
        for extra in ([], ["--json"]):
            st = _cli("status", "--journal", url, "--run", "pw", *extra, env=env)
            texts.append(st.stdout + st.stderr)
    finally:
        _stop_simulator(sim, record_path)
    assert _status(db, "pw")["counts"] == {"completed": 3}
    for text in texts:
        assert PASSWORD not in text, text
        assert KEY not in text, text
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert PASSWORD.encode() not in data, path
            assert KEY.encode() not in data, path


def test_query_string_password_never_in_cli_output(db: str, tmp_path: Path) -> None:
    """Promise (docs/how-to/app-replicas.md): 'the database URL's password is shown as ***'.
    `--journal` takes 'a libpq URL'; libpq URLs may carry the password as `?password=`."""
    url = f"{db}?password={PASSWORD}"
    (tmp_path / "p.txt").write_text("a fox\n")
    enq = _cli(
        "batch",
        str(tmp_path / "p.txt"),
        "--out",
        str(tmp_path / "o"),
        "--journal",
        url,
        "--run",
        "q",
        "--enqueue",
    )
    worker = _cli(
        "worker",
        "--journal",
        url,
        "--burst",
        env=child_env(EVOLINK_API_KEY=KEY, EVOLINK_BASE_URL="http://127.0.0.1:1"),
    )
    bad = _cli(
        "status", "--journal", f"postgresql://127.0.0.1:1/x?password={PASSWORD}", "--run", "q"
    )
    for result in (enq, worker, bad):
        assert PASSWORD not in result.stdout + result.stderr, result.stdout + result.stderr


def test_status_counts_the_429s_met(db: str, tmp_path: Path) -> None:
    """Promise (docs/how-to/many-machines.md): '`evolink status` reads the run's progress from
    the database: ... the 429s met'; issue 17: '`evolink status` matches the simulator'.
    Two workers on a server answering 30% of requests 429."""
    sim, base_url, record_path = _serve_simulator(
        tmp_path,
        "--durations",
        "0.5",
        "1",
        "--rate-limit",
        "0.3",
        "--retry-after",
        "1",
        "--seed",
        "5",
    )
    (tmp_path / "p.txt").write_text("".join(f"a gull over a pier {i}\n" for i in range(12)))
    env = child_env(EVOLINK_API_KEY=KEY, EVOLINK_BASE_URL=base_url)
    try:
        enq = _cli(
            "batch",
            str(tmp_path / "p.txt"),
            "--out",
            str(tmp_path / "o"),
            "--journal",
            db,
            "--run",
            "gulls",
            "--enqueue",
            "--chunk-size",
            "6",
            env=env,
        )
        assert enq.returncode == 0, enq.stderr
        procs = [
            subprocess.Popen(  # noqa: S603
                [
                    PYTHON,
                    "-m",
                    "evolink.cli",
                    "worker",
                    "--journal",
                    db,
                    "--burst",
                    "--max-in-flight",
                    "6",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(2)
        ]
        for p in procs:
            p.communicate(timeout=50)
    finally:
        record = _stop_simulator(sim, record_path)
    status = _status(db, "gulls")
    met = sum(1 for r in record["requests"] if r["status"] == 429)
    assert met > 0
    assert sum(status["counts"].values()) == 12
    paths = collections.Counter(
        r["path"].rsplit("/", 1)[0] for r in record["requests"] if r["status"] == 429
    )
    assert status["rate_limited"] == met, (status["rate_limited"], met, paths)
