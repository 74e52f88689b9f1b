"""The SDK and the simulator judge requests alike: one fake of the API, held to the SDK.

Both read Evolink's OpenAPI files through their own generated copies (`catalog.json`,
`_models.json`) and keep their own copies of the docs' prose rules (callback URLs, the
retryable task error codes): every model's documented example and a broken copy of it,
and a shared corpus of callback URLs and error codes, must get the same verdict from both.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from evolink import AsyncEvolink, GenerationRequest, TaskFailedError, ValidationError
from evolink._catalog import ModelSpec, all_models
from evolink._models import RETRYABLE_TASK_ERRORS, TaskError
from evolink._schema import Schema
from evolink._validation import validate
from evolink.testing import TEST_API_KEY, Faults, Fixed, Simulator, VirtualClock
from evolink.testing._catalog import RETRYABLE_TASK_ERRORS as SIM_RETRYABLE
from evolink.testing._catalog import TASK_ERROR_CODES
from evolink.testing._schemas import catalog
from evolink.testing._validation import Invalid, check_callback_url

pytestmark = pytest.mark.anyio

BASE_URL = "http://simulator.evolink.invalid"
MODELS = all_models()
CURRENT = [spec for spec in MODELS if not spec.archived]
ARCHIVED = [spec for spec in MODELS if spec.archived]
SIMULATED = catalog().models

# The docs' own examples that leave out a field their schema requires (2026-08-21), as
# tests/catalog/test_documented_examples.py lists them; the simulator's extractor filled
# the same fields into its copies (`example_fills`). Both must refuse the example as the
# docs print it, naming that field, and accept it completed.
DOC_DEFECTS = {
    ("MiniMax-Hailuo-2.3-Fast", "image_to_video"): "image_urls",
    ("kling-o3-image-to-video", "multi_shot"): "prompt",
    ("kling-o3-text-to-video", "multi_shot"): "prompt",
    ("kling-v3-text-to-video", "multi_shot"): "prompt",
    ("qwen-image-edit", "image_edit"): "image_urls",
    ("qwen-image-edit-plus", "image_edit"): "image_urls",
    ("wan2.5-image-to-image", "image_to_image"): "image_urls",
    ("wan2.5-image-to-video", "image_to_video"): "image_urls",
    ("wan2.6-image-to-video", "image_to_video"): "image_urls",
    ("wan2.6-image-to-video-flash", "image_to_video"): "image_urls",
}


def _request(spec: ModelSpec, body: Mapping[str, Any]) -> GenerationRequest:
    """`body` as a caller builds it: prompt and callback as arguments, the rest as params."""
    params = {k: v for k, v in body.items() if k not in {"model", "prompt", "callback_url"}}
    return GenerationRequest(
        kind=spec.kind,
        model=spec.name,
        prompt=body.get("prompt"),
        callback_url=body.get("callback_url"),
        params=params or None,
    )


def _sdk_refusal(spec: ModelSpec, body: Mapping[str, Any]) -> ValidationError | None:
    try:
        validate(_request(spec, body))
    except ValidationError as error:
        return error
    return None


async def _simulator_answer(
    spec: ModelSpec, body: Mapping[str, Any], *, sim: Simulator | None = None
) -> httpx.Response:
    """POST `body` to the model's create route of a simulator, as a plain HTTP client."""
    sim = sim or Simulator()
    async with httpx.AsyncClient(
        transport=sim.transport(),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {TEST_API_KEY}"},
    ) as client:
        return await client.post(spec.endpoint, json={**body, "model": spec.name})


def _completed(spec: ModelSpec, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The example with the fields the docs forgot, as the simulator's copy fills them."""
    completed = copy.deepcopy(dict(body))
    field = DOC_DEFECTS.get((spec.name, name))
    if field is not None:
        completed[field] = copy.deepcopy(SIMULATED[spec.name].examples[name][field])
    return completed


# -- the two catalogs -----------------------------------------------------------------------


def test_same_models_routes_and_lifecycles():
    """Both catalogs know the same models, each on the same route, archived alike."""
    assert {spec.name for spec in MODELS} == set(SIMULATED)
    for spec in MODELS:
        doc = SIMULATED[spec.name]
        assert (spec.endpoint, spec.archived) == (doc.endpoint, doc.archived), spec.name


def test_doc_defects_are_the_simulators_fills():
    """The known docs defects are exactly the fields the simulator filled into its copies
    (besides `model`, filled where a family lends its example to a member)."""
    fills = {
        (name, example): fields
        for name, doc in SIMULATED.items()
        for example, fields in doc.example_fills.items()
        if fields != ("model",)
    }
    assert {key: (field,) for key, field in DOC_DEFECTS.items()} == fills


EXAMPLES = [
    pytest.param(spec, example.name, id=f"{spec.name}-{example.name}")
    for spec in CURRENT
    for example in spec.examples
]


def test_examples_match_the_simulators_copies():
    """Where both hold an example of a name, the bodies agree (once completed)."""
    for spec in CURRENT:
        for example in spec.examples:
            theirs = SIMULATED[spec.name].examples.get(example.name)
            if theirs is not None:
                expected = {**_completed(spec, example.name, example.body), "model": spec.name}
                assert expected == {**theirs, "model": spec.name}, (spec.name, example.name)


@pytest.mark.parametrize(("spec", "example_name"), EXAMPLES)
async def test_documented_example_accepted_by_both(spec, example_name):
    """A model's documented example (completed where the docs forgot a field) passes the
    SDK's checks and makes a task in the simulator."""
    [example] = [e for e in spec.examples if e.name == example_name]
    body = _completed(spec, example_name, example.body)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refused = _sdk_refusal(spec, body)
    answer = await _simulator_answer(spec, body)

    assert refused is None, str(refused)
    assert 200 == answer.status_code, answer.text


@pytest.mark.parametrize(
    ("spec", "example_name", "field"),
    [
        pytest.param(spec, name, field, id=f"{spec.name}-{name}")
        for (model, name), field in DOC_DEFECTS.items()
        for spec in CURRENT
        if spec.name == model
    ],
)
async def test_doc_defect_refused_by_both(spec, example_name, field):
    """An example as the docs print it, lacking a required field, is refused by both,
    naming that field."""
    [example] = [e for e in spec.examples if e.name == example_name]

    refused = _sdk_refusal(spec, example.body)
    answer = await _simulator_answer(spec, example.body)

    if example_name == "multi_shot":
        # Kling's docs say the prompt may be left out in multi-shot mode (prompts per
        # shot), though its schema requires one: both sides follow the docs' words.
        assert (None, 200) == (refused, answer.status_code), answer.text
        return
    assert refused is not None
    assert (field, 400, field) == (refused.field, answer.status_code, _param(answer))


def _param(answer: httpx.Response) -> Any:
    return answer.json().get("error", {}).get("param")


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.name) for s in ARCHIVED])
def test_archived_models_warn(spec):
    """A model taken off the docs is still checked, with a DeprecationWarning naming it."""
    body = _completed(spec, spec.examples[0].name, spec.examples[0].body)

    with pytest.warns(DeprecationWarning, match=spec.name):
        validate(_request(spec, body))


# -- broken bodies ------------------------------------------------------------------------

_DROP = object()


def _first_body(spec: ModelSpec) -> dict[str, Any]:
    example = spec.examples[0]
    return _completed(spec, example.name, example.body)


def _broken(schema: Schema, value: Mapping[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(constraint, field, broken value or _DROP) for the constraints `schema` documents."""
    for name in schema.required:
        if name in value and name != "model":  # `model` is the SDK's argument, not a field
            yield "drop-required", name, _DROP
    for name, field in schema.properties.items():
        if field.one_of or name == "model":
            continue  # a value past one form's limit may fit another
        if field.enum is not None:
            odd = "not-a-documented-value" if "string" in field.types else 10**6 + 7
            yield "enum", name, odd
        elif field.maximum is not None:
            limit = field.maximum
            yield "maximum", name, int(limit) + 1 if "integer" in field.types else limit + 1
        elif field.max_items is not None and value.get(name):
            yield "max-items", name, [value[name][0]] * (field.max_items + 1)


def _mutations(spec: ModelSpec) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(constraint, dotted field, body): the first example with one constraint broken,
    one of each kind the model documents (top level, then one object deep)."""
    body = _first_body(spec)
    places: list[tuple[list[str], Schema, Mapping[str, Any]]] = [([], spec.params, body)]
    for name, schema in spec.params.properties.items():
        if schema.properties and isinstance(body.get(name), dict):
            places.append(([name], schema, body[name]))
    seen = set()
    for prefix, schema, value in places:
        for kind, name, broken in _broken(schema, value):
            if kind in seen:
                continue
            seen.add(kind)
            mutated = copy.deepcopy(body)
            target = mutated
            for part in prefix:
                target = target[part]
            if broken is _DROP:
                del target[name]
            else:
                target[name] = broken
            yield kind, ".".join([*prefix, name]), mutated


MUTATIONS = [
    pytest.param(spec, kind, field, body, id=f"{spec.name}-{kind}-{field}")
    for spec in CURRENT
    for kind, field, body in _mutations(spec)
]


def test_every_current_model_has_a_broken_body():
    """The mutations reach every current model: none is held to acceptance alone."""
    assert {spec.name for spec in CURRENT} == {param.values[0].name for param in MUTATIONS}


@pytest.mark.parametrize(("spec", "kind", "field", "body"), MUTATIONS)
async def test_broken_body_refused_by_both(spec, kind, field, body):
    """A body breaking one documented constraint is refused by both, naming the field."""
    refused = _sdk_refusal(spec, body)
    answer = await _simulator_answer(spec, body)

    assert refused is not None, f"the SDK accepted a body breaking {kind} on {field}"
    assert (field, 400, field) == (refused.field, answer.status_code, _param(answer)), (
        str(refused),
        answer.text,
    )


# -- callback URLs --------------------------------------------------------------------------

# The docs, on every model's `callback_url`: "HTTPS protocol only; callbacks to internal IP
# addresses are prohibited (127.0.0.1, 10.x.x.x, 172.16-31.x.x, 192.168.x.x, etc.); URL
# length must not exceed 2048 characters". Read as: public HTTPS hosts only.
CALLBACK_URLS = [
    pytest.param("https://example.com/cb", True, id="public-name"),
    pytest.param("https://EXAMPLE.com:8443/cb?x=1", True, id="public-name-port-query"),
    pytest.param("https://8.8.8.8/cb", True, id="public-ipv4"),
    pytest.param("https://[2001:4860:4860::8888]/cb", True, id="public-ipv6"),
    pytest.param("https://xn--nxasmq6b.com/cb", True, id="punycode-name"),
    pytest.param("https://example.com/" + "a" * 2028, True, id="2048-chars"),
    pytest.param("https://example.com/" + "a" * 2029, False, id="2049-chars"),
    pytest.param("http://example.com/cb", False, id="http"),
    pytest.param("ftp://example.com/cb", False, id="ftp"),
    pytest.param("not a url", False, id="not-a-url"),
    pytest.param("https:///cb", False, id="no-host"),
    pytest.param("https://:443/cb", False, id="port-only"),
    pytest.param("https://[::1/cb", False, id="broken-ipv6"),
    pytest.param("https://example.com:99999/cb", False, id="port-out-of-range"),
    pytest.param("https://exa mple.com/cb", False, id="space-in-host"),
    pytest.param("https://localhost/cb", False, id="localhost"),
    pytest.param("https://localhost./cb", False, id="localhost-trailing-dot"),
    pytest.param("https://api.localhost/cb", False, id="dot-localhost"),
    pytest.param("https://hooks.internal/cb", False, id="dot-internal"),
    pytest.param("https://hooks.internal./cb", False, id="dot-internal-trailing-dot"),
    pytest.param("https://printer.local/cb", False, id="dot-local"),
    pytest.param("https://printer.LOCAL./cb", False, id="dot-local-upper-trailing-dot"),
    pytest.param("https://nas.lan/cb", False, id="dot-lan"),
    pytest.param("https://nas.home.arpa/cb", False, id="home-arpa"),
    pytest.param("https://127.0.0.1/cb", False, id="loopback"),
    pytest.param("https://127.0.0.1./cb", False, id="loopback-trailing-dot"),
    pytest.param("https://2130706433/cb", False, id="loopback-as-one-number"),
    pytest.param("https://0x7f.1/cb", False, id="loopback-hex-short"),
    pytest.param("https://0177.0.0.1/cb", False, id="loopback-octal"),
    pytest.param("https://1.2.3.4.5/cb", False, id="five-part-number"),
    pytest.param("https://256.1.1.1/cb", False, id="octet-past-255"),
    pytest.param("https://1.16777216/cb", False, id="last-part-too-large"),
    pytest.param("https://0x1g.1/cb", False, id="bad-hex-part"),
    pytest.param("https://09.1.1.1/cb", False, id="bad-octal-part"),
    pytest.param("https://10.0.0.1/cb", False, id="private-10"),
    pytest.param("https://172.16.5.4/cb", False, id="private-172"),
    pytest.param("https://192.168.1.1/cb", False, id="private-192"),
    pytest.param("https://100.64.0.1/cb", False, id="shared-100-64"),
    pytest.param("https://100.127.255.255/cb", False, id="shared-top"),
    pytest.param("https://169.254.169.254/cb", False, id="link-local-metadata"),
    pytest.param("https://0.0.0.0/cb", False, id="unspecified"),
    pytest.param("https://224.0.0.1/cb", False, id="multicast"),
    pytest.param("https://240.0.0.1/cb", False, id="reserved"),
    pytest.param("https://192.0.2.1/cb", False, id="documentation"),
    pytest.param("https://[::1]/cb", False, id="ipv6-loopback"),
    pytest.param("https://[fe80::1]/cb", False, id="ipv6-link-local"),
    pytest.param("https://[fd00::1]/cb", False, id="ipv6-unique-local"),
    pytest.param("https://[::ffff:127.0.0.1]/cb", False, id="ipv4-mapped-loopback"),
    pytest.param("https://[ff02::1]/cb", False, id="ipv6-multicast"),
]


def _sdk_accepts_callback(url: str, *, allow_local: bool) -> bool:
    request = GenerationRequest(model="gpt-image-2", prompt="a fox", callback_url=url)
    try:
        validate(request, allow_local_callbacks=allow_local)
    except ValidationError as error:
        field = error.field
    else:
        return True
    assert "callback_url" == field
    return False


def _simulator_accepts_callback(url: str, *, allow_local: bool) -> bool:
    try:
        check_callback_url(url, allow_local=allow_local)
    except Invalid as refusal:
        param = refusal.param
    else:
        return True
    assert "callback_url" == param
    return False


@pytest.mark.parametrize(("url", "public"), CALLBACK_URLS)
def test_callback_url_verdicts(url, public):
    """Both accept a callback URL exactly when it is public HTTPS, as the docs say."""
    assert public == _sdk_accepts_callback(url, allow_local=False)
    assert public == _simulator_accepts_callback(url, allow_local=False)


@pytest.mark.parametrize(("url", "public"), CALLBACK_URLS)
def test_local_callback_verdicts_agree(url, public):
    """With local callbacks allowed (a local simulator), both still agree on every URL."""
    sdk = _sdk_accepts_callback(url, allow_local=True)

    assert sdk == _simulator_accepts_callback(url, allow_local=True)
    if public:
        assert sdk


@pytest.mark.parametrize(("url", "public"), CALLBACK_URLS)
async def test_callback_url_through_the_simulator(url, public):
    """The simulator's HTTP answer to a create with the URL matches the SDK's verdict."""
    [spec] = [s for s in CURRENT if s.name == "gpt-image-2"]

    answer = await _simulator_answer(spec, {"prompt": "a fox", "callback_url": url})

    assert (200 if public else 400) == answer.status_code
    assert public or "callback_url" == _param(answer)


# -- retryable task error codes -------------------------------------------------------------

# The error-codes page's "Server Errors (Retry Later)" table (the page's own sample code
# and "Safe to Retry Directly" card name only its first five; the table is the reference).
DOCS_RETRY_LATER = frozenset(
    {
        "generation_failed_no_content",
        "service_error",
        "generation_timeout",
        "resource_exhausted",
        "quota_exceeded",
        "service_unavailable",
        "resource_not_found",
        "unknown_error",
    }
)
ERROR_CODES = [
    *TASK_ERROR_CODES,
    "SERVICE_ERROR",
    " service_error",
    "",
    "1004",
    "rate_limited",
    "policy_violation",
    "unknown",
]


def test_retryable_codes_are_the_docs():
    """Both copies of the retryable codes are the docs' table."""
    assert DOCS_RETRY_LATER == RETRYABLE_TASK_ERRORS
    assert DOCS_RETRY_LATER == frozenset(SIM_RETRYABLE)


@pytest.mark.parametrize("code", ERROR_CODES)
def test_retryable_verdicts_agree(code):
    """On every code, documented or not, the SDK's verdict is the simulator's."""
    assert (code in SIM_RETRYABLE) == TaskError(code=code).is_retryable


@pytest.mark.parametrize("code", TASK_ERROR_CODES)
async def test_failed_simulated_task_reads_as_the_simulator_classes_it(code):
    """A task the simulator fails with `code` reaches the SDK as retryable exactly when the
    simulator lists the code as retryable."""
    clock = VirtualClock()
    sim = Simulator(
        clock=clock, durations=Fixed(5), faults=Faults(task_failure=1.0, failure_codes=(code,))
    )
    async with AsyncEvolink(api_key=TEST_API_KEY, transport=sim.transport(), clock=clock) as api:
        created = await api.images.generate(prompt="a fox")
        clock.advance(6)
        task = await api.tasks.get(created.id)

    with pytest.raises(TaskFailedError) as info:
        task.raise_for_status()
    assert (code, code in SIM_RETRYABLE) == (info.value.code, info.value.retryable)
