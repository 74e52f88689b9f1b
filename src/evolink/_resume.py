"""The one planner of resumed runs: what to do with each input, given its journal record.

A pure function of the record (and the input's request body): no I/O, so the batch, the
CLI and any future front end decide the same way. The order of the questions is what
keeps a resume from paying twice:

1. nothing recorded: submit it, as on a first run;
2. recorded with another request: refuse it (the journal belongs to other inputs);
3. ended for good (completed, failed, cancelled): adopt that outcome; with
   `retry_failed`, a *failed* one is submitted again under a new key. A *rejected* one is
   not adopted: rejected, it sent nothing, and an input that reaches the planner passed
   validation this time (the file was fixed), so it goes on to the questions below;
4. its task id is known: re-read that task, never create another;
5. its create was sent (a key is recorded) but no task id came back: the caller may have
   looked for its task in the account's task listing (`Listing`, from `_task_recovery`).
   One listed task that can only be its: re-read that one. Several it could be: send
   nothing, it stays uncertain (which is its cannot be told, and one of them may be).
   None, or the listing not read: resend it under the same key, so a server that honours
   keys answers with the task it made, or makes it once;
6. otherwise (skipped before it was sent): submit it.

A request naming a local file is recorded with the URL it was uploaded to. The file may be
uploaded again (a new URL) before a resumed run meets the input: `aliases` (every upload
URL of the run, to its content's hash) lets the comparison see the same content.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from evolink._journal import EntryStatus, JournalEntry

#: Body fields that may differ between runs without making it another request: a
#: callback URL carries a per-process token.
_VOLATILE_FIELDS = frozenset({"callback_url"})


class Action(str, enum.Enum):
    """What a resumed run does with one input."""

    #: Its outcome is final in the journal: report it, send nothing.
    ADOPT = "adopt"
    #: Its task exists: read and watch it, create nothing.
    REREAD = "reread"
    #: Its create may have made a task: send it again under its recorded key.
    RESEND = "resend"
    #: Nothing of it may exist on the server: a new create (new key).
    SUBMIT = "submit"
    #: The journal holds another request at this index: send nothing.
    MISMATCH = "mismatch"
    #: Its create was never answered and the listing shows several tasks it may have
    #: made: resent under its key only once the server has shown it honours keys, or as
    #: the batch's one probe of it (`Batch._may_resend_ambiguous`); else it stays
    #: uncertain.
    AMBIGUOUS = "ambiguous"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Listing:
    """What the account's task listing shows of an input whose create was never answered.

    Attributes:
        task_id: the one listed task that can only be its, if there is one.
        candidates: else, every listed task it could be (empty: none).
    """

    task_id: str | None = None
    candidates: tuple[str, ...] = ()


@attrs.frozen
class Step:
    """The plan for one input, with the record it came from (None if unrecorded)."""

    action: Action
    entry: JournalEntry | None = None
    #: The task the listing found for it (REREAD of an unanswered create).
    found: str | None = None

    @property
    def idempotency_key(self) -> str | None:
        """The key to resend under (RESEND only)."""
        if self.action is Action.RESEND and self.entry is not None:
            return self.entry.idempotency_key
        return None

    @property
    def task_id(self) -> str | None:
        """The task to re-read (REREAD), or the adopted one's."""
        if self.found is not None:
            return self.found
        if self.action in (Action.REREAD, Action.ADOPT) and self.entry is not None:
            return self.entry.task_id
        return None


def canonical_value(value: Any, aliases: Mapping[str, str]) -> Any:
    """`value` with every upload URL in `aliases` written as its content (`sha256:...`),
    in lists and objects too: two bodies naming one file through two uploads compare equal."""
    if isinstance(value, str):
        digest = aliases.get(value)
        return value if digest is None else f"sha256:{digest}"
    if isinstance(value, (list, tuple)):
        return [canonical_value(v, aliases) for v in value]
    if isinstance(value, Mapping):
        return {k: canonical_value(v, aliases) for k, v in value.items()}
    return value


def same_request(
    recorded: Mapping[str, Any],
    body: Mapping[str, Any],
    aliases: Mapping[str, str] | None = None,
) -> bool:
    """Whether two create bodies ask for the same thing: every field both name agrees.

    A field only one names is not a difference: a newer SDK may write a default the older
    one left out, and that must not make a journal unusable. Volatile fields are ignored.
    Upload URLs in `aliases` (URL to content hash) stand for their content.
    """
    shared = (recorded.keys() & body.keys()) - _VOLATILE_FIELDS
    if not aliases:
        return all(recorded[name] == body[name] for name in shared)
    return all(
        canonical_value(recorded[name], aliases) == canonical_value(body[name], aliases)
        for name in shared
    )


def unanswered(entry: JournalEntry) -> bool:
    """Whether the input's create was sent and never answered (question 5): a key, no
    task id, no final outcome."""
    return (
        entry.idempotency_key is not None
        and entry.task_id is None
        and not (entry.status.is_final and entry.status is not EntryStatus.REJECTED)
    )


def plan_input(  # noqa: PLR0911 - one answer per question, in the module docstring's order
    entry: JournalEntry | None,
    body: Mapping[str, Any] | None = None,
    *,
    retry_failed: bool = False,
    aliases: Mapping[str, str] | None = None,
    listing: Listing | None = None,
) -> Step:
    """Decide what to do with one input; see the module docstring for the order.

    Args:
        entry: the journal's latest record of the input, None if it has none.
        body: the input's create body now, to check it is the recorded one (None: the
            caller has checked the whole input already, as the CLI does by fingerprint).
        retry_failed: submit again an input whose task failed (a new task, a new key).
        aliases: the run's upload URLs, to their content's hash (see the module docstring).
        listing: what the task listing shows of it, if its create was never answered and
            the listing was read (question 5).
    """
    if entry is None:
        return Step(Action.SUBMIT)
    if body is not None and entry.body and not same_request(entry.body, body, aliases):
        return Step(Action.MISMATCH, entry)
    if entry.status is EntryStatus.FAILED and retry_failed:
        return Step(Action.SUBMIT, entry)
    if entry.status.is_final and entry.status is not EntryStatus.REJECTED:
        return Step(Action.ADOPT, entry)
    if entry.task_id is not None:
        return Step(Action.REREAD, entry)
    if entry.idempotency_key is not None:
        if listing is not None and listing.task_id is not None:
            return Step(Action.REREAD, entry, found=listing.task_id)
        if listing is not None and listing.candidates:
            return Step(Action.AMBIGUOUS, entry)
        return Step(Action.RESEND, entry)
    return Step(Action.SUBMIT, entry)


def plan(
    entries: Mapping[int, JournalEntry],
    bodies: Mapping[int, Mapping[str, Any] | None],
    *,
    retry_failed: bool = False,
    listings: Mapping[int, Listing] | None = None,
) -> dict[int, Step]:
    """`plan_input` for every input of `bodies` (by index)."""
    listings = listings or {}
    return {
        index: plan_input(
            entries.get(index), body, retry_failed=retry_failed, listing=listings.get(index)
        )
        for index, body in bodies.items()
    }
