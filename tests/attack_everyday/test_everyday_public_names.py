"""Public names in tracebacks and reprs; the key in no traceback, even with locals."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import traceback

import httpx
import pytest
from _attack_helpers import API, KEY, TASK_ID, FakeAPI, error_json

import evolink
from evolink import AsyncEvolink, Evolink


@pytest.mark.parametrize("name", evolink.__all__)
def test_every_public_class_is_named_evolink_dot(name):
    obj = getattr(evolink, name)
    if isinstance(obj, type):
        assert obj.__module__ == "evolink", obj
        assert obj.__qualname__ == name
        assert getattr(evolink, obj.__qualname__) is obj


def _uncaught(code: str) -> str:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_uncaught_errors_print_public_names():
    last = _uncaught(
        """
        from evolink import Task
        Task.from_dict({"id": "task-unified-1757156493-imcg5zqt", "status": "failed",
                        "error": {"code": "content_policy_violation", "message": "no"}
                        }).raise_for_status()
        """
    )
    assert last.startswith("evolink.TaskFailedError: "), last
    last = _uncaught("from evolink import Task; Task.from_dict([])")
    assert last.startswith("evolink.ValidationError: "), last


def test_uncaught_not_found_from_the_sync_client_prints_its_public_name(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import httpx, evolink
            def handler(request):
                return httpx.Response(404, json={{"error": {{"code": "task_not_found",
                    "message": "gone", "type": "x"}}}})
            with evolink.Evolink(api_key={KEY!r}, base_url={API!r},
                                 transport=httpx.MockTransport(handler)) as c:
                c.tasks.get({TASK_ID!r})
            """
        )
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("evolink.NotFoundError: 404"), result.stderr
    assert KEY not in result.stderr


def test_reprs_of_models_use_short_public_names():
    task = evolink.Task.from_dict({"id": TASK_ID, "status": "completed"})
    assert repr(task).startswith("Task(")
    assert "evolink._" not in repr(task.status)
    assert "_models" not in repr(type(task))


def test_key_not_in_a_traceback_with_locals_from_a_bad_option():
    client = Evolink(api_key=KEY, base_url=API, transport=FakeAPI().transport(), max_retries=-1)
    with pytest.raises(evolink.ConfigurationError) as info:
        client.credits()
    client.close()
    text = "".join(
        traceback.TracebackException.from_exception(info.value, capture_locals=True).format()
    )
    assert KEY not in text


def test_a_half_made_async_client_has_a_working_repr():
    # pytest --showlocals, Sentry and rich's show_locals repr every frame's locals.
    with pytest.raises(evolink.ConfigurationError) as info:
        AsyncEvolink(api_key=KEY, max_retries=-1)
    text = "".join(
        traceback.TracebackException.from_exception(info.value, capture_locals=True).format()
    )
    assert KEY not in text


@pytest.mark.anyio
async def test_key_not_in_a_traceback_with_locals_from_an_api_error():
    api = FakeAPI()
    api.routes["GET", f"/v1/tasks/{TASK_ID}"] = lambda _: error_json(404, "task_not_found", "x")
    async with AsyncEvolink(
        api_key=KEY, base_url=API, transport=api.transport(), max_retries=0
    ) as client:
        assert KEY not in repr(client)
        with pytest.raises(evolink.NotFoundError) as info:
            await client.tasks.get(TASK_ID)
    exc = info.value
    text = "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    assert KEY not in text
    assert KEY not in repr(exc.__dict__)
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        assert KEY not in repr(cause)
        assert KEY not in repr(getattr(cause, "__dict__", {}))
        cause = cause.__cause__ or cause.__context__


@pytest.mark.anyio
async def test_key_not_in_a_connection_error():
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with AsyncEvolink(
        api_key=KEY, base_url=API, transport=httpx.MockTransport(down), max_retries=0
    ) as client:
        with pytest.raises(evolink.APIConnectionError) as info:
            await client.credits()
    text = "".join(
        traceback.TracebackException.from_exception(info.value, capture_locals=True).format()
    )
    assert KEY not in text


def _task_failed() -> BaseException:
    task = evolink.Task.from_dict(
        {
            "id": TASK_ID,
            "status": "failed",
            "error": {"code": "service_error", "message": "no"},
        }
    )
    try:
        task.raise_for_status()
    except evolink.TaskFailedError as exc:
        return exc
    raise AssertionError


def _validation() -> BaseException:
    try:
        evolink.Task.from_dict([])
    except evolink.ValidationError as exc:
        return exc
    raise AssertionError


@pytest.mark.parametrize("make", [_task_failed, _validation])
def test_errors_survive_pickling_for_process_pools(make):
    exc = make()
    again = pickle.loads(pickle.dumps(exc))  # noqa: S301
    assert type(again) is type(exc)
    assert str(again) == str(exc)
