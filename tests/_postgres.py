"""A real, throwaway PostgreSQL server for the tests: made with initdb, stopped at the end.

The noxfile installs the distribution's PostgreSQL on a bare CI machine; on a developer's
machine without it the tests that need it skip (and fail under CI=true). initdb refuses to
run as root, so as root the server runs as the `postgres` system user the package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

#: Seconds the server may take to accept connections.
START_TIMEOUT = 60.0


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl, newest version first; None if absent."""
    found = shutil.which("initdb")
    if found is not None and shutil.which("pg_ctl") is not None:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextlib.contextmanager
def postgres_server(settings: Sequence[str] = ()) -> Iterator[str]:
    """Start a PostgreSQL server on a free local port; yield its URL; stop and delete it.

    `settings` are more `name=value` server settings (the benchmarks preload
    pg_stat_statements to count statements).
    """
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (initdb and pg_ctl not found)")
    root = Path(tempfile.mkdtemp(prefix="evolink-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    port = _free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    subprocess.run(  # noqa: S603 - our own arguments
        _as_server_user(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "evolink", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c max_connections=200 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        + "".join(f" -c {setting}" for setting in settings)
    )
    subprocess.run(  # noqa: S603
        _as_server_user(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                str(int(START_TIMEOUT)),
                "start",
            ]
        ),
        check=True,
        capture_output=True,
        env=env,
        timeout=START_TIMEOUT + 30,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"postgresql://evolink@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(  # noqa: S603
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
            env=env,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(url: str) -> str:
    """Make a new, empty database on the server of `url`; return its URL.

    Each test gets its own, so tests never see each other's rows (the server is the
    session's; its databases go with it).
    """
    import psycopg  # noqa: PLC0415 - the `postgres` extra, present where these tests run

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return url.rsplit("/", 1)[0] + "/" + name
