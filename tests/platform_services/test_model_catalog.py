"""`client.models`: the live catalog with ETag revalidation, a stale copy, the offline
fallback, and lifecycles (a deprecated model warns, a retired one is refused unsent)."""

from __future__ import annotations

import warnings
from datetime import date
from typing import Any

import httpx
import pytest
import respx
from _platform_support import BASE_URL, client_for

from evolink import (
    AsyncEvolink,
    CatalogSource,
    GenerationRequest,
    Lifecycle,
    ModelDeprecatedWarning,
    ModelRetiredError,
    OutcomeKind,
    SkipReason,
    ValidationError,
)
from evolink.testing import TEST_API_KEY, Faults, Simulator, VirtualClock

pytestmark = pytest.mark.anyio

CATALOG = "/v1/catalog/models"


async def test_list_by_kind_with_lifecycle_and_price(client: AsyncEvolink):
    """Every video model, active, with its lowest published price per second."""
    videos = await client.models.list(kind="video")

    assert videos
    assert {"video"} == {m.kind for m in videos}
    assert {Lifecycle.ACTIVE} == {m.lifecycle for m in videos}
    assert all(m.price_from is not None and str(m.price_unit) == "second" for m in videos)
    assert list(videos) == sorted(videos, key=lambda m: m.name)


async def test_get_resolves_aliases_and_knows_no_stranger(client: AsyncEvolink):
    """An alias finds its model; an unknown name is None."""
    found = await client.models.get("gpt-4o-image")

    assert found is not None
    assert "gpt-4o-image-beta" == found.name
    assert await client.models.get("no-such-model") is None


async def test_bad_kind_sends_nothing(client: AsyncEvolink, sim: Simulator):
    with pytest.raises(ValidationError):
        await client.models.list(kind="hologram")
    assert [] == list(sim.requests)


async def test_cached_then_revalidated_with_etag(
    client: AsyncEvolink, sim: Simulator, clock: VirtualClock
):
    """Within 5 minutes: no request. After: If-None-Match, answered 304, copy kept."""
    await client.models.catalogue()
    await client.models.catalogue()
    await clock.sleep(301)
    again = await client.models.catalogue()

    catalog_requests = [r for r in sim.requests if r.path == CATALOG]
    assert [200, 304] == [r.status for r in catalog_requests]
    assert CatalogSource.SERVICE == again.source


async def test_a_failed_refresh_serves_the_stale_copy_then_the_offline_one(
    client: AsyncEvolink, sim: Simulator, clock: VirtualClock
):
    """The service down after a good read: the stale copy for 24 hours, then offline."""
    await client.models.catalogue()
    sim.app.faults = Faults(catalog_errors=1.0)
    await clock.sleep(3600)
    stale = await client.models.catalogue()
    await clock.sleep(86_400)
    offline = await client.models.catalogue()

    assert CatalogSource.STALE == stale.source
    assert CatalogSource.OFFLINE == offline.source
    assert offline.find("gpt-image-2") is not None


async def test_service_down_from_the_start_uses_the_offline_catalog(clock: VirtualClock):
    """No catalog and no prices: the offline catalog answers, with no prices."""
    sim = Simulator(clock=clock, faults=Faults(catalog_errors=1.0))
    async with clock.running(), client_for(sim) as client:
        images = await client.models.list(kind="image")
        price = await client.prices.get("gpt-image-2")
    assert any(m.name == "gpt-image-2" for m in images)
    assert price is None


def _respx_client(mock: respx.MockRouter) -> AsyncEvolink:
    return AsyncEvolink(
        api_key=TEST_API_KEY,
        base_url=BASE_URL,
        transport=httpx.MockTransport(mock.handler),
        clock=VirtualClock(),
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"meta": {}, "models": "none"}, id="models-not-a-list"),
        pytest.param(["not", "an", "envelope"], id="not-an-object"),
        pytest.param({"data": None}, id="no-models"),
    ],
)
async def test_a_malformed_catalog_falls_back_offline(body: Any):
    """A catalog we cannot use at all is the same as no catalog: offline answers."""
    async with respx.mock() as mock:
        mock.get(f"{BASE_URL}{CATALOG}").respond(200, json=body)
        async with _respx_client(mock) as client:
            catalogue = await client.models.catalogue()
    assert CatalogSource.OFFLINE == catalogue.source


async def test_odd_entries_are_read_leniently():
    """Entries without an id are skipped; unknown lifecycles and fields survive."""
    body = {
        "meta": {"schema_version": "9", "catalog_version": "42"},
        "data": {
            "models": [
                {"display_name": "no id"},
                "junk",
                {
                    "model_id": "m-new",
                    "lifecycle": "sunsetting",
                    "capabilities": "video",
                    "aliases": ["m-old", 3],
                    "deprecates_at": "2026-09-01T00:00:00Z",
                    "replaced_by": "m-newer",
                    "surprise": {"x": 1},
                },
                {"id": "m-plain", "kind": "audio", "deprecates_at": "soon"},
            ]
        },
    }
    async with respx.mock() as mock:
        mock.get(f"{BASE_URL}{CATALOG}").respond(200, json=body, headers={"ETag": '"v42"'})
        async with _respx_client(mock) as client:
            catalogue = await client.models.catalogue()
    assert {"m-new", "m-plain"} == set(catalogue.models)
    new = catalogue.find("m-old")
    assert new is not None
    assert ("sunsetting", "video", "m-newer") == (new.lifecycle.value, new.kind, new.replacement)
    assert date(2026, 9, 1) == new.deprecates_at
    assert "42" == catalogue.version
    assert catalogue.models["m-plain"].deprecates_at is None


async def test_a_deprecated_model_warns_once_with_its_date(client: AsyncEvolink, sim: Simulator):
    """The warning names the date and the replacement; a second check is silent."""
    sim.set_lifecycle(
        "gpt-image-2", "deprecated", retires_at="2026-12-31", replacement="gpt-image-2-beta"
    )
    with pytest.warns(ModelDeprecatedWarning, match=r"2026-12-31.*gpt-image-2-beta"):
        await client.models.check("gpt-image-2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await client.models.check("gpt-image-2")


async def test_a_retired_model_is_refused_before_a_create(client: AsyncEvolink, sim: Simulator):
    """Once the catalog says retired, a create is refused unsent, naming the replacement."""
    sim.set_lifecycle("gpt-image-2", "retired", retires_at="2026-08-01", replacement="gpt-image-3")
    with pytest.raises(ModelRetiredError) as caught:
        await client.models.check("gpt-image-2")
    with pytest.raises(ModelRetiredError):
        await client.images.generate("a fox")

    assert "gpt-image-3" == caught.value.replacement
    assert "2026-08-01" == caught.value.retired_at
    assert 0 == sim.count("POST", "/v1/images/generations")


async def test_a_batch_refuses_a_retired_model_before_its_first_create(
    client: AsyncEvolink, sim: Simulator
):
    """Every input of a retired model is skipped with the reason; no create is sent."""
    sim.set_lifecycle("gpt-image-2", "retired", replacement="gpt-image-2-beta")

    report = await client.images.generate_many([f"fox {i}" for i in range(5)])

    assert {OutcomeKind.SKIPPED} == {o.kind for o in report.outcomes}
    assert {SkipReason.MODEL_REFUSED} == {o.reason for o in report.outcomes}
    assert all("gpt-image-2-beta" in (o.error_message or "") for o in report.outcomes)
    assert 0 == sim.count("POST", "/v1/images/generations")


async def test_a_model_retired_mid_run_stops_new_creates(
    client: AsyncEvolink, sim: Simulator, clock: VirtualClock
):
    """Retired while a batch runs: what runs is collected; what was not sent is skipped."""
    requests = [GenerationRequest(prompt=f"fox {i}") for i in range(12)]
    async with client.batch(max_in_flight=4) as batch:
        for index, request in enumerate(requests):
            if index == 6:
                sim.set_lifecycle("gpt-image-2", "retired")
            await batch.submit(request)
    report = batch.report()

    kinds = [o.kind for o in report.outcomes]
    assert OutcomeKind.COMPLETED in kinds
    assert OutcomeKind.SKIPPED in kinds
    skipped = [o for o in report.outcomes if o.kind is OutcomeKind.SKIPPED]
    assert {SkipReason.MODEL_REFUSED} == {o.reason for o in skipped}
    completed = sum(k is OutcomeKind.COMPLETED for k in kinds)
    assert completed == sim.count("POST", "/v1/images/generations") - (
        kinds.count(OutcomeKind.FAILED)
    )
