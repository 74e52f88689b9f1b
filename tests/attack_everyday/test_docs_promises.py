"""README and docs promises, runnable against the simulator."""

from __future__ import annotations

import inspect
from pathlib import Path

import httpx
import pytest
from _attack_helpers import KEY

import evolink
from evolink import AsyncEvolink, Evolink
from evolink.testing import Simulator, VirtualClock


def _public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_sync_client_has_the_async_clients_resources_names_and_arguments():
    sim = Simulator()
    sync = Evolink(api_key=KEY, transport=sim.transport())
    asyn = AsyncEvolink(api_key=KEY, transport=sim.transport())
    try:
        for resource in ("images", "tasks"):
            s_res, a_res = getattr(sync, resource), getattr(asyn, resource)
            assert _public(a_res) <= _public(s_res), resource
            for name in _public(a_res):
                if not callable(getattr(a_res, name)):
                    continue  # a plain attribute (`kind`): same value, no signature
                assert getattr(a_res, name) is not None
                a_sig = inspect.signature(getattr(a_res, name))
                s_sig = inspect.signature(getattr(s_res, name))
                assert list(a_sig.parameters) == list(s_sig.parameters), (resource, name)
                for p in a_sig.parameters:
                    assert a_sig.parameters[p].default == s_sig.parameters[p].default, (name, p)
        assert callable(sync.credits)
    finally:
        sync.close()


def test_documented_error_hierarchy():
    assert issubclass(evolink.RateLimitError, evolink.APIError)
    assert issubclass(evolink.APITimeoutError, evolink.APIConnectionError)
    assert issubclass(evolink.WaitTimeoutError, TimeoutError)
    assert issubclass(evolink.ValidationError, ValueError)
    for name in ("TaskFailedError", "WaitTimeoutError", "DownloadError", "ConfigurationError"):
        assert issubclass(getattr(evolink, name), evolink.EvolinkError)


def test_transport_and_http_client_together_is_a_configuration_error():
    sim = Simulator()
    with pytest.raises(evolink.ConfigurationError):
        AsyncEvolink(api_key=KEY, transport=sim.transport(), http_client=httpx.AsyncClient())


def test_sync_client_refuses_clock_and_http_client():
    with pytest.raises(TypeError):
        Evolink(api_key=KEY, clock=VirtualClock())  # type: ignore[call-arg]


@pytest.mark.anyio
async def test_readme_async_snippet_names_files_as_promised(tmp_path):
    clock = VirtualClock()
    sim = Simulator(clock=clock)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            done = await client.images.run("a red fox in snow", size="1:1", n=2, timeout=300)
            async with httpx.AsyncClient(transport=sim.transport()) as images:
                paths = await client.tasks.save(done, tmp_path / "out", http_client=images)
    assert [p.name for p in paths] == [f"{done.id}-1.png", f"{done.id}-2.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)
    assert done.credits_reserved == 5
    assert sorted(Path(tmp_path / "out").iterdir()) == sorted(paths)  # noqa: ASYNC240


@pytest.mark.anyio
async def test_save_of_an_expired_result_is_a_permanent_download_error(tmp_path):
    clock = VirtualClock()
    sim = Simulator(clock=clock, durations=5, result_ttl=60)
    async with AsyncEvolink(api_key=KEY, transport=sim.transport(), clock=clock) as client:
        async with clock.running():
            done = await client.images.run("a red fox", timeout=300)
            await clock.sleep(120)
            async with httpx.AsyncClient(transport=sim.transport()) as images:
                with pytest.raises(evolink.DownloadError) as info:
                    await client.tasks.save(done, tmp_path, http_client=images)
    assert not info.value.transient
    assert list(tmp_path.iterdir()) == []


def test_sync_credits_and_print_report():
    sim = Simulator(durations=(0.02, 0.05), pending_time=0.001)
    with Evolink(api_key=KEY, transport=sim.transport()) as client:
        before = client.credits()
        report = client.images.generate_many(["a", "b", "c"], max_in_flight=3)
        after = client.credits()
    assert str(report).startswith("BatchReport(outcomes=3, completed=3, reserved=")
    assert before.token is not None
    assert after.token is not None
    assert before.token.remaining_credits - after.token.remaining_credits == report.charged
