"""What a task id may look like: it becomes part of a URL path, so it is checked first."""

from __future__ import annotations

import re

from evolink._errors import ValidationError

TASK_ID_PREFIX = "task-unified-"
# Letters, digits and a few marks: nothing that could end a path segment, start a query,
# or be decoded into one by a server (`/`, `?`, `#`, `%`, `\`).
_TASK_ID = re.compile(r"task-unified-[A-Za-z0-9._~:-]{1,200}")


def check_task_id(task_id: object) -> str:
    """Return `task_id` if it looks like a task id, else raise `ValidationError`."""
    if not isinstance(task_id, str) or not task_id.startswith(TASK_ID_PREFIX):
        raise ValidationError("task_id", "format", f"task ids start with {TASK_ID_PREFIX!r}")
    if _TASK_ID.fullmatch(task_id) is None:
        raise ValidationError(
            "task_id", "format", "a task id holds only letters, digits and '._~:-'"
        )
    return task_id


def task_path(task_id: object) -> str:
    """The path that reads `task_id`; raise `ValidationError` if it is not a task id."""
    return f"/v1/tasks/{check_task_id(task_id)}"
