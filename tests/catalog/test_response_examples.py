"""Every response the vendored OpenAPI files show decodes; mangled copies never crash.

The files give no whole 200 body: a task answer's example is spread over its schema, one
`example` per property. `_example_of` assembles it (a media-level `example`/`examples`,
where a file has one, is taken as it is). Error answers have whole examples; they go
through the client's error path over `httpx.MockTransport`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evolink import APIError, AsyncEvolink, RateLimitError, ResponseDecodeError, Task
from evolink._converter import parse_task
from evolink._errors import error_class_for

ROOT = Path(__file__).resolve().parents[2]
MODEL_FILES = sorted((ROOT / "specs").glob("evolink-docs-*/**/*.json"))
TASK_DETAIL = ROOT / "tests" / "simulator" / "openapi" / "get-task-detail.json"
TASK_ID = "task-unified-1756817821-4x3rx6ny"


def _resolve(node: Any, document: Mapping[str, Any]) -> Any:
    while isinstance(node, Mapping) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _example_of(schema: Any, document: Mapping[str, Any]) -> Any:
    """The value a schema's own `example`s describe (the first form of a choice)."""
    schema = _resolve(schema, document)
    if "example" in schema:
        return schema["example"]
    for choice in ("allOf", "oneOf", "anyOf"):
        if choice in schema:
            return _example_of(schema[choice][0], document)
    if "properties" in schema:
        fields = {name: _example_of(sub, document) for name, sub in schema["properties"].items()}
        return {name: value for name, value in fields.items() if value is not None}
    if schema.get("type") == "array" and "items" in schema:
        return [_example_of(schema["items"], document)]
    return schema.get("default", (schema.get("enum") or [None])[0])


def _media_examples(
    media: Mapping[str, Any], document: Mapping[str, Any], *, assemble: bool
) -> Iterator[Any]:
    if "example" in media:
        yield media["example"]
    for example in media.get("examples", {}).values():
        yield _resolve(example, document)["value"]
    if assemble and "example" not in media and "examples" not in media and "schema" in media:
        yield _example_of(media["schema"], document)


@functools.cache
def _responses() -> tuple[tuple[str, int, Any], ...]:
    """(file, status, body) for every response example in the files."""
    found = []
    for path in [*MODEL_FILES, TASK_DETAIL]:
        document = json.loads(path.read_text(encoding="utf-8"))
        for operations in document["paths"].values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = _resolve(response, document).get("content", {})
                    for media in content.values():
                        ok = status == "200"  # an error without an example shows none
                        for body in _media_examples(media, document, assemble=ok):
                            found.append((path.stem, int(status), body))
    return tuple(found)


TASK_BODIES = [(name, body) for name, status, body in _responses() if status == 200]
ERROR_BODIES = sorted(
    {
        (status, json.dumps(body, sort_keys=True))
        for _, status, body in _responses()
        if status >= 400
    }
)


def _code_of(text: str) -> str:
    return str(json.loads(text)["error"].get("code", "no-code"))


def test_every_file_gives_a_task_example():
    """Each model file and the task-detail file yields one task body (130 in all)."""
    assert len(MODEL_FILES) + 1 == len(TASK_BODIES)
    assert len(TASK_BODIES) >= 130
    assert {path.stem for path in MODEL_FILES} | {TASK_DETAIL.stem} == {
        name for name, _ in TASK_BODIES
    }


@pytest.mark.parametrize("body", [pytest.param(b, id=n) for n, b in TASK_BODIES])
def test_task_example_decodes(body):
    """A documented task answer decodes, field for field."""
    task = parse_task(body)

    assert body["id"] == task.id
    assert body["status"] == task.status.value
    assert tuple(body.get("results", ())) == task.results
    assert task.results == task.media_urls
    if "error" in body:
        assert task.error is not None
        assert body["error"]["code"] == task.error.code
    assert task == Task.from_dict(task.to_dict())


def test_error_examples_found():
    """The files' error examples span every status they document."""
    assert {400, 401, 402, 403, 404, 429, 500, 502, 503} == {s for s, _ in ERROR_BODIES}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "text"),
    [pytest.param(s, t, id=f"{s}-{_code_of(t)}") for s, t in ERROR_BODIES],
)
async def test_error_example_raises_its_typed_error(status, text):
    """A documented error answer raises the class its status names, with its fields."""
    body = json.loads(text)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    client = AsyncEvolink(
        api_key="sk-evo-test", transport=httpx.MockTransport(answer), max_retries=0
    )
    async with client:
        with pytest.raises(APIError) as info:
            await client.tasks.get(TASK_ID)

    error = body["error"]
    assert error_class_for(status) is type(info.value)
    assert (status, error["code"], error["message"]) == (
        info.value.status_code,
        info.value.code,
        info.value.message,
    )
    assert (error.get("type"), error.get("param")) == (info.value.type, info.value.param)
    if status == 429:
        assert isinstance(info.value, RateLimitError)


# -- mangled copies -------------------------------------------------------------------------

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)
odd_numbers = st.sampled_from(
    [math.nan, math.inf, -math.inf, 10**400, -(10**400), 2**63, -1, 1e308, -0.0, 0.5]
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included
    | odd_numbers
    | st.text(max_size=12)
)
weird = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


weird_or_deep = weird | st.integers(10, 200).map(_deep)
EXAMPLES = [body for _, body in TASK_BODIES]


@st.composite
def mangled(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """(body, only_added): a documented task body with a few mutations.

    `only_added` is true when every mutation added a field the SDK does not know, or
    reshaped `result_data` (kept as sent): such a body must still decode.
    """
    body = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    body.setdefault("results", ["https://cdn.example/1.png", "https://cdn.example/2.png"])
    only_added = True
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["drop", "retype", "add", "nest", "result_data"]))
        if action in {"add", "result_data"}:
            name = "result_data" if action == "result_data" else "x_" + draw(names)
            body[name] = draw(weird_or_deep)
            continue
        only_added = False
        target = body
        nested = [k for k, v in body.items() if isinstance(v, dict) and v]
        if nested and draw(st.booleans()):
            target = body[draw(st.sampled_from(sorted(nested)))]
        key = draw(st.sampled_from(sorted(target)))
        if action == "drop":
            del target[key]
        elif action == "retype":
            target[key] = draw(leaves)
        else:
            target[key] = draw(weird_or_deep)
    return body, only_added


def _well_formed_results(body: Mapping[str, Any]) -> tuple[str, ...] | None:
    results = body.get("results")
    if isinstance(results, list) and all(isinstance(url, str) for url in results):
        return tuple(results)
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled())
def test_mangled_task_never_crashes(case):
    """A mangled task body decodes or raises ResponseDecodeError, nothing else; decoded,
    it keeps well-formed `results`, and its views (`media_urls`, `to_dict`) work."""
    body, only_added = case
    try:
        task = parse_task(body)
    except ResponseDecodeError:
        assert not only_added, "unknown fields alone must never make a task unreadable"
        return
    results = _well_formed_results(body)
    if results is not None:
        assert results == task.results
    assert task.results == task.media_urls[: len(task.results)]
    assert isinstance(task.to_dict(), dict)
    assert task.result_data is None or isinstance(task.result_data.media_urls, tuple)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(EXAMPLES), weird_or_deep)
def test_any_json_for_a_whole_body(example, value):
    """Not an object at all, or an object of junk: a ResponseDecodeError, never a crash."""
    for body in (value, {**example, "id": value}, {**example, "status": value}):
        with contextlib.suppress(ResponseDecodeError):
            parse_task(body)
