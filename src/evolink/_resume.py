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
5. its create was sent (a key is recorded) but no task id came back: resend it under the
   same key, so the server answers with the task it made, or makes it once;
6. otherwise (skipped before it was sent): submit it.
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

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Step:
    """The plan for one input, with the record it came from (None if unrecorded)."""

    action: Action
    entry: JournalEntry | None = None

    @property
    def idempotency_key(self) -> str | None:
        """The key to resend under (RESEND only)."""
        if self.action is Action.RESEND and self.entry is not None:
            return self.entry.idempotency_key
        return None

    @property
    def task_id(self) -> str | None:
        """The task to re-read (REREAD), or the adopted one's."""
        if self.action in (Action.REREAD, Action.ADOPT) and self.entry is not None:
            return self.entry.task_id
        return None


def same_request(recorded: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    """Whether two create bodies ask for the same thing: every field both name agrees.

    A field only one names is not a difference: a newer SDK may write a default the older
    one left out, and that must not make a journal unusable. Volatile fields are ignored.
    """
    shared = (recorded.keys() & body.keys()) - _VOLATILE_FIELDS
    return all(recorded[name] == body[name] for name in shared)


def plan_input(  # noqa: PLR0911 - one answer per question, in the module docstring's order
    entry: JournalEntry | None,
    body: Mapping[str, Any] | None = None,
    *,
    retry_failed: bool = False,
) -> Step:
    """Decide what to do with one input; see the module docstring for the order.

    Args:
        entry: the journal's latest record of the input, None if it has none.
        body: the input's create body now, to check it is the recorded one (None: the
            caller has checked the whole input already, as the CLI does by fingerprint).
        retry_failed: submit again an input whose task failed (a new task, a new key).
    """
    if entry is None:
        return Step(Action.SUBMIT)
    if body is not None and entry.body and not same_request(entry.body, body):
        return Step(Action.MISMATCH, entry)
    if entry.status is EntryStatus.FAILED and retry_failed:
        return Step(Action.SUBMIT, entry)
    if entry.status.is_final and entry.status is not EntryStatus.REJECTED:
        return Step(Action.ADOPT, entry)
    if entry.task_id is not None:
        return Step(Action.REREAD, entry)
    if entry.idempotency_key is not None:
        return Step(Action.RESEND, entry)
    return Step(Action.SUBMIT, entry)


def plan(
    entries: Mapping[int, JournalEntry],
    bodies: Mapping[int, Mapping[str, Any] | None],
    *,
    retry_failed: bool = False,
) -> dict[int, Step]:
    """`plan_input` for every input of `bodies` (by index)."""
    return {
        index: plan_input(entries.get(index), body, retry_failed=retry_failed)
        for index, body in bodies.items()
    }
