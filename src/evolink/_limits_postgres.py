"""A run's limits shared by every worker, in PostgreSQL: its credits and its 429 brake.

`PostgresCredits` keeps the run's `max_credits` at every moment, whichever workers send
its creates: the run's total (`evolink_credit_pools.committed`) only grows by an update
that checks the budget in the same statement, under the row's lock, so two workers can
never both take the last credits. Each input holds its own share (`evolink_credit_holds`),
once: a worker taking over an input a dead one had reserved finds its hold and adds
nothing. A hold is set to the task's reservation when its create answers and to its charge
when it ends; one whose create may have made a task is kept as it is, for good, and no
create waits for it to shrink. Until a price is known, one create of it (a probe, held at
0) goes out at a time across the whole run.

`PostgresBrake` shares a 429's `Retry-After` (or backoff): the latest end time is one row
(`evolink_brakes.until`, Unix seconds on the workers' clock: keep machines' clocks in sync),
written when a worker meets a 429 and read before requests, at most every `refresh`
seconds.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio

from evolink._clock import SYSTEM_CLOCK, Clock
from evolink._shared_limits import Verdict

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger("evolink")

#: Seconds a stopping batch spends writing its last settlements (a lost one leaves the
#: input's hold as it was: more credits counted as spent, never fewer).
DRAIN_SECONDS = 10.0
#: Seconds a brake's reading stays fresh.
BRAKE_REFRESH = 0.25


class PostgresCredits:
    """The credits of one run, shared by its workers; see the module docstring.

    With a `fence` (whether this worker still owns its inputs, asked in each write's
    transaction), a worker whose job another took over takes and settles nothing more.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool,
        run: str,
        *,
        fence: Callable[[Any], Awaitable[bool]] | None = None,
    ) -> None:
        self._pool = pool
        self.run_name = run
        self._fence = fence
        self._queue: deque[tuple[int, Decimal | None, bool]] = deque()
        self._wake = anyio.Event()

    @classmethod
    async def open(
        cls, pool: AsyncConnectionPool, run: str, max_credits: Decimal | None
    ) -> PostgresCredits:
        """The credits of `run` (made if new), with its budget set to `max_credits`."""
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO evolink_credit_pools (run, max_credits) VALUES (%s, %s)"
                " ON CONFLICT (run) DO UPDATE SET max_credits = excluded.max_credits",
                (run, max_credits),
            )
        return cls(pool, run)

    async def committed(self) -> tuple[Decimal, Decimal | None]:
        """The run's credits held now, and its budget."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT committed, max_credits FROM evolink_credit_pools WHERE run = %s",
                (self.run_name,),
            )
            row = await cursor.fetchone()
        return (Decimal(0), None) if row is None else (row[0], row[1])

    async def reserve(self, index: int, amount: Decimal) -> Verdict:
        """Hold `amount` for input `index` if it fits (an open hold of it already does).

        A create of unknown price (`amount` 0) is a probe: it fits while the run is under
        budget and no other probe of the run is unanswered, so the run passes its budget
        by one reservation at most, however many workers start at once (give price hints,
        or let the published prices tell).
        """
        async with self._pool.connection() as conn, conn.transaction():
            if self._fence is not None and not await self._fence(conn):
                return Verdict.NEVER  # its job is another worker's now
            # The run's row first: reservations of one run are taken one after another,
            # and each statement below sees the holds the one before it committed.
            cursor = await conn.execute(
                "SELECT committed, max_credits FROM evolink_credit_pools WHERE run = %s FOR UPDATE",
                (self.run_name,),
            )
            pool = await cursor.fetchone()
            cursor = await conn.execute(
                "SELECT open FROM evolink_credit_holds WHERE run = %s AND idx = %s",
                (self.run_name, index),
            )
            held = await cursor.fetchone()
            if held is not None and held[0]:
                return Verdict.FITS
            if pool is not None and pool[1] is not None and amount == 0:
                cursor = await conn.execute(
                    "SELECT 1 FROM evolink_credit_holds WHERE run = %s AND open AND NOT kept"
                    " AND amount = 0 LIMIT 1",
                    (self.run_name,),
                )
                if await cursor.fetchone() is not None:
                    return Verdict.WAIT  # a probe is out: its answer tells the price
            cursor = await conn.execute(
                "UPDATE evolink_credit_pools SET committed = committed + %(x)s"
                " WHERE run = %(run)s AND (max_credits IS NULL OR"
                " (committed + %(x)s <= max_credits AND (%(x)s > 0 OR committed < max_credits)))"
                " RETURNING committed",
                {"x": amount, "run": self.run_name},
            )
            if await cursor.fetchone() is not None:
                await conn.execute(
                    "INSERT INTO evolink_credit_holds (run, idx, amount) VALUES (%s, %s, %s)"
                    " ON CONFLICT (run, idx) DO UPDATE SET amount = excluded.amount,"
                    " open = TRUE, kept = FALSE",
                    (self.run_name, index, amount),
                )
                return Verdict.FITS
            cursor = await conn.execute(
                "SELECT 1 FROM evolink_credit_holds WHERE run = %s AND open AND NOT kept LIMIT 1",
                (self.run_name,),
            )
            waiting = await cursor.fetchone() is not None
        return Verdict.WAIT if waiting else Verdict.NEVER

    def settle(self, index: int, amount: Decimal, *, final: bool) -> None:
        """Queue: input `index` holds `amount` now (`final`: its task ended)."""
        self._queue.append((index, amount, final))
        self._wake.set()

    def keep(self, index: int) -> None:
        """Queue: input `index`'s hold stays as it is, for good (its create may have made
        a task nobody can see); no create waits for it to shrink."""
        self._queue.append((index, None, False))
        self._wake.set()

    async def _settle(self, index: int, amount: Decimal | None, *, final: bool) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            if self._fence is not None and not await self._fence(conn):
                return  # its job is another worker's now: the new owner settles it
            if amount is None:
                await conn.execute(
                    "UPDATE evolink_credit_holds SET kept = TRUE WHERE run = %s AND idx = %s",
                    (self.run_name, index),
                )
                return
            cursor = await conn.execute(
                "SELECT amount FROM evolink_credit_holds WHERE run = %s AND idx = %s FOR UPDATE",
                (self.run_name, index),
            )
            row = await cursor.fetchone()
            if row is None and amount == 0:
                return
            before = Decimal(0) if row is None else row[0]
            await conn.execute(
                "INSERT INTO evolink_credit_holds (run, idx, amount, open) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (run, idx) DO UPDATE SET amount = excluded.amount,"
                " open = excluded.open, kept = FALSE",
                (self.run_name, index, amount, not final),
            )
            # Held without a reservation first (a task adopted from elsewhere): it is spent
            # all the same, so it counts even past the budget. Unchanged (the usual case:
            # charged what was reserved), the run's row is left alone: not locked.
            if amount != before:
                await conn.execute(
                    "UPDATE evolink_credit_pools SET committed = committed + %s WHERE run = %s",
                    (amount - before, self.run_name),
                )

    async def run(self) -> None:
        """Write queued settlements, in order, until cancelled."""
        while True:
            await self._write_queued()
            self._wake = anyio.Event()
            if not self._queue:
                await self._wake.wait()

    async def _write_queued(self) -> None:
        while self._queue:
            index, amount, final = self._queue[0]
            with anyio.CancelScope(shield=True):  # a query cut short closes its connection
                await self._settle(index, amount, final=final)
            self._queue.popleft()  # only once written: a cancelled write is written again

    async def drain(self) -> None:
        """Write what is still queued, for at most `DRAIN_SECONDS`."""
        with anyio.move_on_after(DRAIN_SECONDS):
            await self._write_queued()


class PostgresBrake:
    """The 429 brake of one run, shared by its workers; see the module docstring."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        run: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        refresh: float = BRAKE_REFRESH,
    ) -> None:
        self._pool = pool
        self.run_name = run
        self._clock = clock
        self._refresh = refresh
        self._pending: float | None = None
        self._pending_hits = 0  # 429s met since the last write: each counts in `hits`
        self._until = 0.0  # on the clock's time()
        self._read_at = -float("inf")  # time.monotonic() of the last reading
        self._lock = anyio.Lock()

    def _now(self) -> float:
        return self._clock.time()

    def rate_limited(self, delay: float) -> None:
        """Publish a brake of `delay` seconds from now (at the next `remaining`)."""
        self._pending = max(self._pending or 0.0, delay)
        self._pending_hits += 1
        self._until = max(self._until, self._now() + delay)

    async def remaining(self) -> float:
        """Seconds the run's brake still holds: published, or read if stale."""
        if self._pending is not None or time.monotonic() - self._read_at >= self._refresh:
            async with self._lock:
                if self._pending is not None or time.monotonic() - self._read_at >= self._refresh:
                    try:
                        await self._exchange()
                    except Exception:  # a brake is advice: it never fails a request
                        self._read_at = time.monotonic()  # try again after `refresh`
                        logger.warning("the run's shared brake is unreachable", exc_info=True)
        return max(0.0, self._until - self._now())

    async def _exchange(self) -> None:
        pending, self._pending = self._pending, None
        hits, self._pending_hits = self._pending_hits, 0
        async with self._pool.connection() as conn:
            if pending is not None:
                try:
                    cursor = await conn.execute(
                        "INSERT INTO evolink_brakes (run, until, hits)"
                        " VALUES (%(run)s, %(until)s, %(hits)s)"
                        " ON CONFLICT (run) DO UPDATE SET"
                        " until = greatest(evolink_brakes.until, excluded.until),"
                        " hits = evolink_brakes.hits + excluded.hits RETURNING until",
                        {"run": self.run_name, "until": self._now() + pending, "hits": hits},
                    )
                except BaseException:
                    # Not written: these 429s are counted with the next write.
                    self._pending_hits += hits
                    raise
            else:
                cursor = await conn.execute(
                    "SELECT until FROM evolink_brakes WHERE run = %s", (self.run_name,)
                )
            row = await cursor.fetchone()
        self._read_at = time.monotonic()
        if row is not None:
            self._until = max(self._until, float(row[0]))

    async def hits(self) -> int:
        """How many 429s the run's workers have met."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT hits FROM evolink_brakes WHERE run = %s", (self.run_name,)
            )
            row = await cursor.fetchone()
        return 0 if row is None else int(row[0])
