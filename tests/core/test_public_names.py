"""Public classes carry their public names: `evolink.NotFoundError`, not `evolink._errors...`."""

from __future__ import annotations

import pickle
import traceback

import pytest

import evolink
from evolink import NotFoundError, Task, TaskStatus


def _read_a_missing_task() -> None:
    raise NotFoundError("No such task", status_code=404, code="task_not_found")


def test_traceback_names_the_public_error():
    """A traceback's last line says `evolink.NotFoundError: ...`."""
    try:
        _read_a_missing_task()
    except NotFoundError as exc:
        lines = traceback.format_exception(exc)

    assert lines[-1].startswith("evolink.NotFoundError: 404 task_not_found: No such task")


@pytest.mark.parametrize(
    "name", [name for name in evolink.__all__ if isinstance(getattr(evolink, name), type)]
)
def test_every_public_class_lives_at_evolink(name: str):
    """Each class in `evolink.__all__` reports `evolink` as its module."""
    assert "evolink" == getattr(evolink, name).__module__


def test_models_still_parse_and_pickle_under_the_public_name():
    """Renaming the module keeps models loadable (types resolved) and picklable."""
    task = Task.from_dict({"id": "task-unified-1", "status": "completed", "created": 1})

    assert task == pickle.loads(pickle.dumps(task))  # noqa: S301 - our own bytes
    assert TaskStatus.COMPLETED is pickle.loads(pickle.dumps(task.status))  # noqa: S301
