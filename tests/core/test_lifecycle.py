"""Configuration, the connection pool's lifecycle and the event-loop guard."""

from __future__ import annotations

import anyio
import httpx
import pytest
import respx
from _core_support import API_KEY, TASK_ID, TASK_PATH, task_payload

from evolink import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, AsyncEvolink, ConfigurationError
from evolink._clock import SYSTEM_CLOCK, SystemClock


@pytest.mark.anyio
async def test_async_with_closes_the_pool(make_client):
    """Leaving `async with` closes the client's own httpx client."""
    async with make_client() as client:
        assert not client.is_closed
        assert not client._transport._http_client().is_closed

    assert client.is_closed
    assert client._transport._http is not None
    assert client._transport._http.is_closed


@pytest.mark.anyio
async def test_aclose_twice_is_harmless(make_client):
    """aclose() may be called again."""
    client = make_client()
    await client.aclose()
    await client.aclose()

    assert client.is_closed


@pytest.mark.anyio
async def test_borrowed_http_client_stays_open(router: respx.MockRouter, make_client):
    """A borrowed http_client is used for requests and not closed by aclose()."""
    router.get(TASK_PATH).respond(200, json=task_payload())
    http = httpx.AsyncClient(transport=httpx.MockTransport(router.handler))

    async with make_client(http_client=http) as client:
        await client.tasks.get(TASK_ID)

    assert client.is_closed
    assert not http.is_closed
    assert 1 == len(router.calls)
    await http.aclose()


@pytest.mark.anyio
async def test_closed_client_refuses_requests(router: respx.MockRouter, make_client):
    """A closed client raises ConfigurationError and sends nothing."""
    client = make_client()
    await client.aclose()

    with pytest.raises(ConfigurationError, match="closed"):
        await client.tasks.get(TASK_ID)
    assert 0 == len(router.calls)


def test_client_used_from_a_second_event_loop(router: respx.MockRouter, make_client):
    """A client opened on one event loop raises a clear ConfigurationError on another."""
    router.get(TASK_PATH).respond(200, json=task_payload())
    client = make_client()

    async def first() -> None:
        await client.__aenter__()
        await client.tasks.get(TASK_ID)

    async def second() -> None:
        await client.tasks.get(TASK_ID)

    anyio.run(first, backend="asyncio")
    with pytest.raises(ConfigurationError, match="another event loop") as info:
        anyio.run(second, backend="asyncio")

    assert "one client per event loop" in str(info.value)
    assert 1 == len(router.calls)


def test_client_entered_on_a_second_event_loop(make_client):
    """Entering `async with` on another loop than the first use also raises."""
    client = make_client()

    async def use() -> None:
        async with client:
            pass

    async def enter_again() -> None:
        await client.__aenter__()

    anyio.run(use, backend="trio")
    with pytest.raises(ConfigurationError, match="another event loop"):
        anyio.run(enter_again, backend="trio")


@pytest.mark.anyio
async def test_same_loop_reuse_is_fine(router: respx.MockRouter, make_client):
    """Many requests on the loop the client was opened on work."""
    router.get(TASK_PATH).respond(200, json=task_payload())

    async with make_client() as client:
        for _ in range(3):
            await client.tasks.get(TASK_ID)

    assert 3 == len(router.calls)


def test_no_key_is_a_configuration_error(monkeypatch):
    """Without api_key and EVOLINK_API_KEY the client refuses to start."""
    monkeypatch.delenv("EVOLINK_API_KEY", raising=False)

    with pytest.raises(ConfigurationError, match="EVOLINK_API_KEY"):
        AsyncEvolink()


def test_empty_key_is_a_configuration_error(monkeypatch):
    """An empty key (argument or variable) counts as none."""
    monkeypatch.setenv("EVOLINK_API_KEY", "")

    with pytest.raises(ConfigurationError):
        AsyncEvolink()
    with pytest.raises(ConfigurationError):
        AsyncEvolink(api_key="")


@pytest.mark.anyio
async def test_key_and_base_url_from_environment(monkeypatch):
    """EVOLINK_API_KEY and EVOLINK_BASE_URL configure a client built with no arguments."""
    monkeypatch.setenv("EVOLINK_API_KEY", API_KEY)
    monkeypatch.setenv("EVOLINK_BASE_URL", "https://env.example/")
    with respx.MockRouter(base_url="https://env.example", using="httpx") as router:
        route = router.get(TASK_PATH).respond(200, json=task_payload())

        async with AsyncEvolink() as client:
            await client.tasks.get(TASK_ID)

    assert "https://env.example" == client.base_url
    assert f"Bearer {API_KEY}" == route.calls.last.request.headers["Authorization"]


def test_arguments_win_over_environment(monkeypatch):
    """api_key and base_url arguments take precedence over the environment."""
    monkeypatch.setenv("EVOLINK_API_KEY", "sk-evo-from-env")
    monkeypatch.setenv("EVOLINK_BASE_URL", "https://env.example")

    client = AsyncEvolink(api_key=API_KEY, base_url="https://arg.example")

    assert "https://arg.example" == client.base_url
    assert API_KEY == client._api_key.reveal()


def test_defaults(monkeypatch):
    """Without configuration the client targets the real API with the documented timeouts."""
    monkeypatch.delenv("EVOLINK_BASE_URL", raising=False)

    client = AsyncEvolink(api_key=API_KEY)

    assert DEFAULT_BASE_URL == client.base_url == "https://api.evolink.ai"
    assert DEFAULT_TIMEOUT == client._transport._timeout
    assert httpx.Timeout(60.0, connect=10.0) == DEFAULT_TIMEOUT
    assert 2 == client.max_retries
    assert client.clock is SYSTEM_CLOCK


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(
            {"transport": httpx.MockTransport(lambda _: httpx.Response(200)), "http_client": "x"},
            "not both",
            id="transport-and-http-client",
        ),
        pytest.param({"max_retries": -1}, "max_retries", id="negative-retries"),
        pytest.param({"max_connections": 0}, "max_connections", id="no-connections"),
    ],
)
def test_bad_configuration(kwargs, match):
    """Contradictory or impossible options raise ConfigurationError."""
    if kwargs.get("http_client") == "x":
        kwargs["http_client"] = httpx.AsyncClient()

    with pytest.raises(ConfigurationError, match=match):
        AsyncEvolink(api_key=API_KEY, **kwargs)


@pytest.mark.anyio
async def test_system_clock():
    """The real clock reads wall and monotonic time and sleeps (0 s here)."""
    clock = SystemClock()
    before = clock.monotonic()

    await clock.sleep(0)
    await clock.sleep(-1)

    assert clock.monotonic() >= before
    assert clock.time() > 1_700_000_000
    assert "SystemClock()" == repr(clock)


@pytest.mark.anyio
async def test_generate_many_with_nothing_sends_nothing(router: respx.MockRouter, make_client):
    """generate_many over no inputs goes through client.batch and sends no request."""
    async with make_client() as client:
        report = await client.images.generate_many([], max_in_flight=2)

    assert 0 == len(router.calls)
    assert [] == list(report.outcomes)
    assert 0 == report.requests


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("sk-evo-SECRET\r", id="trailing-cr-is-stripped"),
        pytest.param("sk-evo-SEC\nRET", id="inner-newline"),
        pytest.param("sk-evo SECRET", id="inner-space"),
        pytest.param("   ", id="only-spaces"),
    ],
)
def test_keys_with_control_characters_are_refused_or_cleaned(key):
    """A key read with its line ending is cleaned; one with inner junk is refused, unquoted."""
    if key.strip() and key.strip().isprintable() and " " not in key.strip():
        assert "'***'" in repr(AsyncEvolink(api_key=key))
        return
    with pytest.raises(ConfigurationError) as caught:
        AsyncEvolink(api_key=key)
    assert "SEC" not in str(caught.value)
