"""Issue 15, part 1: the catalog, attacked from the docs alone.

Promises checked (issue 15 "Parts 1", docs/how-to/estimate.md "The catalog", PLATFORM.md):
- "versioned envelope, ETag revalidation, a short cache, a stale copy served for a bounded
  time when a refresh fails, and the generated offline catalog as the fallback".
- "A deprecated model warns with its date; a retired one is refused before any create, with
  its replacement where the catalog names one."
- "A model retired mid-run stops new creates with a clear reason; tasks already running are
  collected."
"""

from __future__ import annotations

import warnings

import httpx
import pytest
from attack15_server import META, SECRET, Hostile, envelope_error, model_row, sku

from evolink import (
    AsyncEvolink,
    CatalogSource,
    GenerationRequest,
    Lifecycle,
    ModelDeprecatedWarning,
    ModelRetiredError,
    OutcomeKind,
    SkipReason,
)
from evolink.testing import VirtualClock

pytestmark = pytest.mark.anyio

CATALOG = "/v1/catalog/models"
CREATE = "/v1/images/generations"


def live_models() -> list[dict[str, object]]:
    return [
        model_row("gpt-image-2"),
        model_row("doubao-seedream-4.5"),
        # A model the platform added after the SDK's offline catalog was generated.
        model_row("brand-new-model-2099", capabilities=["image"]),
    ]


def names(models: tuple[object, ...]) -> set[str]:
    return {m.name for m in models}  # type: ignore[attr-defined]


async def test_etag_revalidation_takes_a_bodyless_304(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """'ETag revalidation, a short cache' (issue 15; PLATFORM.md: 'cached with ETag /
    If-None-Match; the official client caches 5 minutes'). A 304 carries no body: the
    SDK must keep the copy it has, with the weak ETag sent back verbatim."""
    a15_server.models = live_models()
    first = await a15_client.models.list()
    assert "brand-new-model-2099" in names(first)
    await a15_client.models.list()
    assert a15_server.count(CATALOG, "GET") == 1, "a second read within the cache went out"

    a15_clock.advance(301)
    again = await a15_client.models.list()
    catalog_reads = [r for r in a15_server.log if r.url.path == CATALOG]
    assert len(catalog_reads) == 2
    assert catalog_reads[1].headers.get("if-none-match") == 'W/"cat-1"'
    assert names(again) == names(first)
    assert (await a15_client.models.catalogue()).source is CatalogSource.SERVICE


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda r: envelope_error(503, "service_unavailable", "down"), id="503"),
        pytest.param(lambda r: httpx.Response(200, text="<html>maintenance</html>"), id="html"),
        pytest.param(
            lambda r: httpx.Response(200, json={"meta": META, "models": "oops"}), id="bad-shape"
        ),
    ],
)
async def test_failed_refresh_serves_stale_copy_for_a_day_then_offline(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock, fault: object
) -> None:
    """'a stale copy is served for up to a day, and after that the catalog built into the
    SDK' (docs/how-to/estimate.md). A refresh failing in any way is no error to the user."""
    a15_server.models = live_models()
    async with a15_clock.running():
        assert "brand-new-model-2099" in names(await a15_client.models.list())
    a15_server.catalog_fault = fault  # type: ignore[assignment]
    a15_clock.advance(301)
    async with a15_clock.running():
        stale = await a15_client.models.list()
        assert "brand-new-model-2099" in names(stale)
        assert (await a15_client.models.catalogue()).source is CatalogSource.STALE
    a15_clock.advance(24 * 3600 + 1)
    async with a15_clock.running():
        offline = await a15_client.models.catalogue()
    assert offline.source is CatalogSource.OFFLINE
    assert offline.find("brand-new-model-2099") is None


async def test_unreachable_catalog_falls_back_offline_without_prices(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """'When the catalog service cannot be reached ... the catalog built into the SDK (which
    has no prices: estimates then say "no published price")' (docs/how-to/estimate.md)."""

    def gone(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("unreachable", request=request)

    a15_server.catalog_fault = gone
    a15_server.pricing_fault = gone
    async with a15_clock.running():
        models = await a15_client.models.list(kind="image")
        cost = await a15_client.estimate("a fox")
    assert len(models) >= 40  # the 43 documented image models
    assert all(m.price_from is None for m in models)
    assert cost.max_credits is None
    assert any("no published price" in line for line in cost.basis)


async def test_newer_envelope_and_odd_rows_do_not_break_the_catalog(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """PLATFORM.md: a versioned envelope; 'Response fields a lenient reader must survive'.
    A newer schema_version with new fields, a lifecycle value from next year, rows missing
    optional fields: the rows that are fine are read, nothing raises."""
    a15_server.models = [
        {"model_id": "gpt-image-2", "lifecycle": "active"},  # every optional field missing
        model_row("doubao-seedream-4.5", lifecycle="sunsetting", shiny_new_field=[1, 2]),
        model_row("krea-2-turbo", deprecates_at="2026-10-01T00:00:00Z", lifecycle="deprecated"),
        model_row("brand-new-model-2099", aliases=None, capabilities=None),
    ]
    a15_server.catalog_fault = lambda r: httpx.Response(
        200,
        json={
            "meta": {**META, "schema_version": 7, "catalog_version": "2099-01-01", "extra": {}},
            "models": a15_server.models,
            "next_year_section": {"x": 1},
        },
    )
    models = {m.name: m for m in await a15_client.models.list()}
    assert models["gpt-image-2"].lifecycle is Lifecycle.ACTIVE
    assert "krea-2-turbo" in models


async def test_deprecated_model_warns_with_its_date(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """'A deprecated model warns with its date' (issue 15), and is still created."""
    a15_server.models = [
        model_row("gpt-image-2", lifecycle="deprecated", deprecates_at="2026-10-01")
    ]
    await a15_client.models.list()
    with pytest.warns(ModelDeprecatedWarning, match="2026-10-01"):
        async with a15_clock.running():
            await a15_client.images.generate("a fox")
    assert a15_server.count(CREATE) == 1


RETIRED = [
    model_row("gpt-image-2"),
    model_row(
        "krea-2-turbo",
        lifecycle="retired",
        deprecates_at="2026-05-01",
        aliases=["krea-classic"],
        replacement="gpt-image-2",
    ),
    model_row(
        "veo-3.1-generate-preview",
        lifecycle="retired",
        deprecates_at="2026-05-01",
        capabilities=["video"],
        replacement="veo-3.1-fast-generate-preview",
    ),
]


async def test_retired_model_is_refused_before_any_create(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """'a retired one is refused before any create, with its replacement where the catalog
    names one' (issue 15). A single create checks the catalog this client has read
    (docs/how-to/estimate.md: it adds no round trip of its own; batches and estimates
    read it themselves)."""
    a15_server.models = RETIRED
    await a15_client.models.list()
    with pytest.raises(ModelRetiredError) as caught:
        await a15_client.images.generate("a fox", model="krea-2-turbo")
    assert caught.value.replacement == "gpt-image-2"
    with pytest.raises(ModelRetiredError):
        await a15_client.videos.generate("a wave", model="veo-3.1-generate-preview")
    assert a15_server.count(CREATE) == 0
    assert a15_server.count("/v1/videos/generations") == 0


async def test_alias_of_retired_model_is_refused(
    a15_client: AsyncEvolink, a15_server: Hostile
) -> None:
    """PLATFORM.md: 'A retired model or alias resolves to nothing.' An alias the catalog
    lists for a retired model is refused like the model (the SDK's offline catalog does not
    know the alias, hence the UnknownModelWarning it may give on the way)."""
    a15_server.models = RETIRED
    await a15_client.models.list()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ModelRetiredError):
            await a15_client.estimate(GenerationRequest(prompt="a fox", model="krea-classic"))
        with pytest.raises(ModelRetiredError):
            await a15_client.images.generate("a fox", model="krea-classic")
    assert a15_server.count(CREATE) == 0


async def test_retired_model_in_a_batch_creates_nothing(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """'a retired one is refused before any create' and 'Every input ends in exactly one
    Outcome' (docs/reference/batch.md), with a clear reason."""
    a15_server.models = RETIRED
    async with a15_clock.running():
        report = await a15_client.images.generate_many(
            [GenerationRequest(prompt=f"fox {i}", model="krea-2-turbo") for i in range(5)]
        )
    assert a15_server.count(CREATE) == 0
    assert [o.index for o in report.outcomes] == list(range(5))
    assert all(o.kind is not OutcomeKind.COMPLETED for o in report.outcomes)
    said = " ".join(f"{o.error_code} {o.error_message} {o.reason}" for o in report.outcomes) + str(
        report.stopped_reason
    )
    assert "retire" in said.lower()


def retire_at(server: Hostile, at: float, *, refuse_creates: bool) -> None:
    """From `at` (server time) the catalog says retired, and maybe creates are refused."""

    def catalog(request: httpx.Request) -> httpx.Response | None:
        if server.now() < at:
            return None
        rows = [
            model_row(
                "gpt-image-2",
                lifecycle="retired",
                deprecates_at="2026-01-01",
                replacement="gpt-image-2-beta",
            ),
            model_row("gpt-image-2-beta"),
        ]
        return httpx.Response(200, json={"meta": {**META, "catalog_version": "v2"}, "models": rows})

    def create(request: httpx.Request, body: dict[str, object]) -> httpx.Response | None:
        if refuse_creates and server.now() >= at:
            return envelope_error(403, "model_access_denied", "gpt-image-2 was retired")
        return None

    server.catalog_fault = catalog
    server.create_fault = create
    server.models = [
        model_row("gpt-image-2", lifecycle="deprecated", deprecates_at="2026-01-01"),
        model_row("gpt-image-2-beta"),
    ]
    server.prices = [sku("gpt-image-2", "g2", price=1)]


async def test_model_retired_mid_run_stops_creates_and_collects_running(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """'A model retired mid-run stops new creates with a clear reason; tasks already
    running are collected' (issue 15, Done when). Deprecated at the start, then retired:
    the server refuses creates from then on."""
    start = a15_clock.time()
    retire_at(a15_server, start + 65, refuse_creates=True)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        async with a15_clock.running():
            report = await a15_client.images.generate_many(
                [f"fox {i}" for i in range(30)], max_in_flight=3
            )
    made = len(a15_server.tasks)
    assert 3 <= made < 30
    refusals = a15_server.count(CREATE) - made
    assert 1 <= refusals <= 3, f"{refusals} creates sent after the model was refused"
    assert [o.index for o in report.outcomes] == list(range(30))
    completed = [o for o in report.outcomes if o.kind is OutcomeKind.COMPLETED]
    assert len(completed) == made, "a task created before the retirement was not collected"
    skipped = [o for o in report.outcomes if o.kind is OutcomeKind.SKIPPED]
    assert len(skipped) == 30 - a15_server.count(CREATE)
    assert all(o.reason is SkipReason.MODEL_REFUSED for o in skipped)
    # BatchReport: "stopped_reason: why submissions stopped early ... or None".
    assert report.stopped_reason is not None, "submissions stopped early, report says nothing"


async def test_catalog_retirement_mid_run_stops_creates_even_if_server_still_accepts(
    a15_client: AsyncEvolink, a15_server: Hostile, a15_clock: VirtualClock
) -> None:
    """'a retired one is refused before any create' (issue 15): once the catalog says
    retired, the batch stops creating within the catalog's cache time (5 minutes), even
    where the platform would still take the create and charge for it."""
    start = a15_clock.time()
    retired_at = start + 600
    retire_at(a15_server, retired_at, refuse_creates=False)
    a15_server.task_seconds = 60
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        async with a15_clock.running():
            report = await a15_client.images.generate_many(
                [f"fox {i}" for i in range(100)], max_in_flight=2
            )
    late = [t for t in a15_server.tasks.values() if t["created"] > retired_at + 300 + 60]
    assert not late, f"{len(late)} creates of a retired model, long after the catalog said so"
    assert len(report.outcomes) == 100


async def test_key_quoted_in_catalog_error_never_leaks(
    a15_server: Hostile, a15_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """'No error carries the API key, in its message, attributes or cause'
    (docs/reference/errors.md); nor may a log. Here the catalog answers 401 quoting it."""
    caplog.set_level("DEBUG")
    a15_server.catalog_fault = lambda r: envelope_error(401, "invalid_key", f"bad key {SECRET}")
    a15_server.pricing_fault = a15_server.catalog_fault
    async with AsyncEvolink(
        api_key=SECRET, transport=a15_server.transport(), clock=a15_clock, max_retries=0
    ) as client:
        seen: list[str] = []
        try:
            seen.append(repr(await client.models.list()))
            seen.append(repr(await client.estimate("a fox")))
        except Exception as exc:  # noqa: BLE001 - whatever it is, it must not hold the key
            seen += [str(exc), repr(exc), repr(exc.args), repr(vars(exc))]
            cause = exc.__cause__ or exc.__context__
            seen.append(repr(cause))
    seen += [r.getMessage() for r in caplog.records]
    assert not [s for s in seen if SECRET in s or SECRET[8:] in s]
