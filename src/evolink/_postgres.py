"""PostgreSQL for the SDK's shared state: a connection pool from a URL, and the schema.

Everything the SDK keeps in PostgreSQL (the journal, a run's shared credits and 429 brake,
the inputs of a distributed run, the app replicas' callback secret) lives in tables named
`evolink_*`, created and migrated here. The schema's version is a row of `evolink_schema`;
`migrate` brings a database to `SCHEMA_VERSION` under a transaction-scoped advisory lock,
so any number of processes may start at once: the first migrates, the others wait for it
and find nothing left to do.
A database of a newer schema is refused rather than written.

psycopg 3 and psycopg-pool are the `postgres` extra: they are imported only when a
PostgreSQL URL is opened, so the core imports without them. psycopg's async connections
run on asyncio only: opened under trio, they raise a `JournalError` saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evolink._errors import JournalError
from evolink._extras import install_hint
from evolink._redact import redact_url

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

#: The schemes a journal URL may have.
URL_SCHEMES = ("postgresql://", "postgres://")
#: The key of the advisory lock held while the schema is migrated ("evolink" in ASCII).
MIGRATION_LOCK = 0x65766F6C696E6B
#: Seconds a pool waits for its first connection before the URL is called unreachable.
CONNECT_TIMEOUT = 30.0

#: The schema, one step per version; step `i` takes a database from version `i` to `i + 1`.
#: Every step runs in one transaction; never edit a released step, add one.
MIGRATIONS: Sequence[str] = (
    # 1: the journal (runs, their inputs and saved files).
    """
    CREATE TABLE evolink_runs (run TEXT PRIMARY KEY, fingerprint TEXT NOT NULL);
    CREATE TABLE evolink_inputs (
        run TEXT NOT NULL,
        idx INTEGER NOT NULL,
        request TEXT NOT NULL,
        endpoint TEXT,
        model TEXT,
        idempotency_key TEXT,
        task_id TEXT,
        status TEXT NOT NULL,
        error_code TEXT,
        error_message TEXT,
        reserved NUMERIC,
        charged NUMERIC,
        results TEXT,
        PRIMARY KEY (run, idx)
    );
    CREATE TABLE evolink_files (
        run TEXT NOT NULL,
        idx INTEGER NOT NULL,
        number INTEGER NOT NULL,
        url TEXT NOT NULL,
        path TEXT NOT NULL,
        size BIGINT NOT NULL,
        PRIMARY KEY (run, idx, number)
    );
    """,
    # 2: limits shared by every worker of a run: credits (a total and one hold per input)
    # and the 429 brake (`until`: Unix seconds on the workers' clock).
    """
    CREATE TABLE evolink_credit_pools (
        run TEXT PRIMARY KEY,
        max_credits NUMERIC,
        committed NUMERIC NOT NULL DEFAULT 0
    );
    CREATE TABLE evolink_credit_holds (
        run TEXT NOT NULL,
        idx INTEGER NOT NULL,
        amount NUMERIC NOT NULL,
        open BOOLEAN NOT NULL DEFAULT TRUE,
        PRIMARY KEY (run, idx)
    );
    CREATE TABLE evolink_brakes (
        run TEXT PRIMARY KEY,
        until DOUBLE PRECISION NOT NULL,
        hits BIGINT NOT NULL DEFAULT 0
    );
    """,
    # 3: distributed runs: what `evolink batch --enqueue` stored for the workers.
    """
    CREATE TABLE evolink_run_plans (
        run TEXT PRIMARY KEY,
        out TEXT NOT NULL,
        total INTEGER NOT NULL,
        chunk INTEGER NOT NULL,
        max_credits NUMERIC,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE evolink_run_inputs (
        run TEXT NOT NULL,
        idx INTEGER NOT NULL,
        line INTEGER NOT NULL,
        prompt TEXT NOT NULL,
        request TEXT,
        error TEXT,
        PRIMARY KEY (run, idx)
    );
    """,
    # 4: a hold kept for good: its create may have made a task nobody can see, so it
    # never shrinks and nothing waits for it (it still counts in `committed`).
    """
    ALTER TABLE evolink_credit_holds ADD COLUMN kept BOOLEAN NOT NULL DEFAULT FALSE;
    """,
    # 5: when each create was sent (to find its task in the listing), and the local files
    # each run uploaded (a resumed run reuses them).
    """
    ALTER TABLE evolink_inputs ADD COLUMN sent_at DOUBLE PRECISION;
    CREATE TABLE evolink_uploads (
        run TEXT NOT NULL,
        file_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        file_url TEXT NOT NULL,
        expires_at DOUBLE PRECISION,
        size BIGINT,
        PRIMARY KEY (run, file_id)
    );
    """,
    # 6: the callback secret app replicas share (one row per callback path). Replicas of
    # earlier SDKs made this table themselves, hence `IF NOT EXISTS`.
    """
    CREATE TABLE IF NOT EXISTS evolink_callback_secret (
        path TEXT PRIMARY KEY,
        secret TEXT NOT NULL,
        created TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    """,
    # 7: how many jobs a distributed run was split into, written once they are all on the
    # queue: workers delete a job's row when it succeeds, so `evolink status` counts the
    # succeeded ones as those no longer there (NULL: enqueued by an earlier SDK).
    """
    ALTER TABLE evolink_run_plans ADD COLUMN jobs INTEGER;
    """,
    # 8: an input whose create was resent unproven: a second task may have been made.
    """
    ALTER TABLE evolink_inputs ADD COLUMN possible_duplicate BOOLEAN NOT NULL DEFAULT FALSE;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def is_postgres_url(value: object) -> bool:
    """Whether `value` is a PostgreSQL URL (`postgresql://...` or `postgres://...`)."""
    return isinstance(value, str) and value.startswith(URL_SCHEMES)


def display_url(url: str) -> str:
    """`url` without its password (in the user part or a parameter), for messages and reprs."""
    return redact_url(url)


def _require_asyncio() -> None:
    import sniffio  # noqa: PLC0415 - anyio's own dependency

    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:  # pragma: no cover - always called in a loop
        return
    if library != "asyncio":
        raise JournalError(f"PostgreSQL stores run on asyncio (psycopg), not on {library}")


async def open_pool(url: str, *, max_size: int = 10) -> AsyncConnectionPool:
    """An open connection pool to `url` (autocommit), its schema migrated.

    Raises:
        JournalError: the `postgres` extra is missing, not on asyncio, the database cannot
            be reached, or its schema is newer than this SDK's.
    """
    _require_asyncio()
    try:
        import psycopg_pool  # noqa: PLC0415 - the `postgres` extra
        from psycopg_pool import AsyncConnectionPool  # noqa: PLC0415
    except ImportError:
        raise JournalError(f"a PostgreSQL journal needs {install_hint('postgres')}") from None
    import psycopg  # noqa: PLC0415

    try:
        # One connection first: a wrong URL fails at once with the server's own words
        # (a pool would retry it until its timeout), and the schema is ready before use.
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await migrate(conn)
    except psycopg.Error as exc:
        raise JournalError(f"{display_url(url)}: cannot use the database ({exc})") from None
    pool: AsyncConnectionPool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        open=False,
        # Set on each connection, not in `kwargs`: procrastinate opens connections of its
        # own with the pool's kwargs and its own `autocommit`.
        configure=_autocommit,
        name="evolink",
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
    except (psycopg.Error, TimeoutError, psycopg_pool.PoolTimeout) as exc:
        await pool.close()
        raise JournalError(f"{display_url(url)}: cannot use the database ({exc})") from None
    except BaseException:
        await pool.close()
        raise
    return pool


async def _autocommit(conn: AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)


async def migrate(conn: AsyncConnection[Any]) -> int:
    """Bring the database to `SCHEMA_VERSION`; return the version it had.

    Safe with several processes at once: the steps run under an advisory lock.

    Raises:
        JournalError: the database's schema is newer than this SDK's.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS evolink_schema (version INTEGER NOT NULL)")
        cursor = await conn.execute("SELECT max(version) FROM evolink_schema")
        row = await cursor.fetchone()
        found = 0 if row is None or row[0] is None else int(row[0])
        if found > SCHEMA_VERSION:
            raise JournalError(
                f"the database's evolink schema is version {found}; this SDK knows up to"
                f" {SCHEMA_VERSION}: upgrade evolink"
            )
        for step in MIGRATIONS[found:]:
            for statement in step.split(";"):
                if statement.strip():
                    await conn.execute(statement)
        if found < SCHEMA_VERSION:
            await conn.execute("DELETE FROM evolink_schema")
            await conn.execute("INSERT INTO evolink_schema VALUES (%s)", (SCHEMA_VERSION,))
    return found
