"""Finding the task of a create whose answer never reached the journal, in the task listing.

A resumed run may hold inputs whose create was recorded as sent, with its idempotency key,
but never its task id (the process died, or the answer was lost). A server that honours
keys answers a resend with the task it made; one that does not makes a second task. So
before resending, a run looks in the account's task listing (`GET /v1/tasks`).

What the listing shows of a task is its id, model, type, status and `created` (whole Unix
seconds): not its prompt, body or idempotency key (PLATFORM.md, the task-detail OpenAPI
file, and the simulator serve the same). The strongest match is therefore by model and
time: a listed task can be an input's if its model is the input's (aliases resolved), its
type the input's kind, it was created between `EARLY` seconds before the input's recorded
send (clocks differ; `created` drops the fraction) and `LATE` seconds after it (the
create's time on the wire, with its retries), and no input of the run holds it already.

An input is matched only one to one: it has exactly one such task, and that task could be
no other unanswered input's. Otherwise its candidates are reported: it is never given a
task that may be another's, and resent under its key only where that cannot pay twice
unflagged (the batch's one probe of the server's keys; see `Batch._may_resend_ambiguous`),
else left uncertain.
What the listing cannot tell: a task of the same model made in that window by something
else on the account (another program, a teammate's run) looks like the input's own; a
run whose creates are never answered in bulk, many at the same second, ends uncertain
rather than matched.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Collection, Iterable, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, cast

import attrs

from evolink._catalog import resolve_alias
from evolink._errors import EvolinkError
from evolink._journal import JournalEntry
from evolink._models import Task
from evolink._resume import Listing, unanswered
from evolink._task_listing import MAX_LIST_PAGE_SIZE, list_tasks

if TYPE_CHECKING:
    from evolink._batch_journal import BatchJournal
    from evolink._transport import RequestCount, Transport

logger = logging.getLogger("evolink")

#: Seconds a listed task may seem created before its create was sent (the server's clock
#: behind the client's, and `created` in whole seconds).
EARLY = 5.0
#: Seconds after its send a create may still have made its task (its retries included).
LATE = 120.0
#: Listed tasks read at most, newest first, looking for the run's unanswered creates.
MAX_LISTED = 2000


@attrs.frozen
class Unanswered:
    """An input whose create was sent and never answered, as the journal recorded it."""

    index: int
    model: str
    kind: str | None
    sent_at: float

    @classmethod
    def of(cls, entry: JournalEntry) -> Unanswered | None:
        """The entry as an unanswered create, None if it is not one or holds no time."""
        if not unanswered(entry) or entry.sent_at is None or entry.model is None:
            return None
        return cls(entry.index, entry.model, _kind(entry.endpoint), entry.sent_at)

    def could_be(self, task: Task) -> bool:
        """Whether `task` (as listed) can be the one this create made."""
        if task.created is None or task.model is None:
            return False
        created = task.created.timestamp()
        if not self.sent_at - EARLY <= created <= self.sent_at + LATE:
            return False
        if task.type is not None and self.kind is not None and task.type.value != self.kind:
            return False
        return task.model == self.model or resolve_alias(task.model) == resolve_alias(self.model)


def match(
    pending: Iterable[Unanswered], listed: Iterable[Task], held: Collection[str] = ()
) -> dict[int, Listing]:
    """What the listing shows of each unanswered create: its one task, or its candidates.

    Args:
        pending: the unanswered creates.
        listed: the tasks the listing showed.
        held: ids of tasks inputs of the run already hold (never anyone else's match).
    """
    pending = list(pending)
    free = [task for task in listed if task.id not in held]
    candidates = {p.index: [t.id for t in free if p.could_be(t)] for p in pending}
    claimants: dict[str, int] = {}
    for ids in candidates.values():
        for task_id in ids:
            claimants[task_id] = claimants.get(task_id, 0) + 1
    found: dict[int, Listing] = {}
    for index, ids in candidates.items():
        if len(ids) == 1 and claimants[ids[0]] == 1:
            found[index] = Listing(task_id=ids[0])
        else:
            found[index] = Listing(candidates=tuple(ids))
    return found


async def look_up(
    transport: Transport,
    journal: BatchJournal,
    *,
    counts: Sequence[RequestCount] = (),
) -> dict[int, Listing]:
    """What the listing shows of the run's unanswered creates, by input index (nothing is
    read unless this batch's own `journal.entries` hold one).

    The whole run's records are matched, not only this batch's (a worker's chunk): a
    task another input holds, or could have made, is not this one's. `counts` count the
    listing's requests. An input is left out (resent as before) when the listing could not
    be read, or was not read far enough back (`MAX_LISTED`) to cover its window.
    """
    if not any(Unanswered.of(e) is not None for e in journal.entries.values()):
        return {}
    entries = await journal.run_entries()
    pending = [p for p in map(Unanswered.of, entries.values()) if p is not None]
    oldest = min(p.sent_at for p in pending) - EARLY
    listed: list[Task] = []
    covered = float("inf")  # every task created since this time has been seen
    pages = list_tasks(transport, page_size=MAX_LIST_PAGE_SIZE, limit=MAX_LISTED, counts=counts)
    try:
        async with aclosing(cast("AsyncGenerator[Task, None]", pages)):
            async for task in pages:
                listed.append(task)
                if task.created is not None:
                    covered = min(covered, task.created.timestamp())
                    if covered < oldest:
                        break
            else:
                if len(listed) < MAX_LISTED:
                    covered = float("-inf")  # the listing ended: nothing older exists
    except EvolinkError as exc:
        logger.warning(
            "resume: the task listing could not be read (%s); %d create(s) never answered"
            " are resent under their keys",
            type(exc).__name__,
            len(pending),
        )
        return {}
    held = {e.task_id for e in entries.values() if e.task_id is not None}
    seen = [p for p in pending if p.sent_at - EARLY > covered]  # its whole window was read
    return match(seen, listed, held)


def _kind(endpoint: str | None) -> str | None:
    """`image` from `/v1/images/generations`, None for anything else."""
    if endpoint is None:
        return None
    parts = endpoint.strip("/").split("/")
    if len(parts) == 3 and parts[2] == "generations" and parts[1].endswith("s"):
        return parts[1][:-1]
    return None
