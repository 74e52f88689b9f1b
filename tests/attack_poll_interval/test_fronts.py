"""The other doors: the blocking `Evolink(max_poll_interval=...)` and the CLI's
`--max-poll-interval` (`evolink generate` / `evolink batch`)."""

from __future__ import annotations

import struct
import types
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import evolink._client
import evolink.cli._backend as backend
from evolink import AsyncEvolink, ConfigurationError, Evolink
from evolink.cli import main as cli
from evolink.testing import ScaledClock

from . import _server as s
from ._harness import EPS, describe, fresh
from ._server import API_KEY

BAD = [0, 0.05, -1.0, float("nan"), float("inf"), True, "1", 10**400]


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# -- the blocking client ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD, ids=lambda v: repr(v)[:20])
def test_blocking_client_refuses_bad_values_before_any_request(bad: Any) -> None:
    server = fresh()
    client = Evolink(api_key=API_KEY, transport=server.transport(), max_poll_interval=bad)
    try:
        with pytest.raises(ConfigurationError):
            client.images.generate("a fox")
    finally:
        client.close()
    assert server.log == []


def test_blocking_client_holds_to_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocking client has no `clock=`: its async client takes the system clock, here
    one running 10x (a 17 s task in 1.7 real seconds). A lying server (progress 40 % of
    the truth, no estimate) is seen some 25 s late without the option (the plan's reads at
    0.5, 1, 2.5, 5.5 s, then where the readings put the end: 42 s); with an interval of
    1 s it must be seen within it (the slack, 1.5 s on this clock, is 0.15 real seconds of
    scheduling noise)."""
    clock = ScaledClock(10.0)
    monkeypatch.setattr(evolink._client, "SYSTEM_CLOCK", clock)
    server = s.FakeServer(clock=clock, durations=s.fixed(17.0), progress=s.share(0.4))  # type: ignore[arg-type]
    with Evolink(api_key=API_KEY, transport=server.transport(), max_poll_interval=1.0) as client:
        task = client.images.generate("a fox")
        done = client.tasks.wait(task)
    assert done.is_terminal
    [fake] = server.tasks.values()
    assert fake.lateness() <= 1.0 + 1.5, describe(server)
    # About one read a second of its 17 s (the plan alone reads it 4 times before its end).
    assert fake.reads_while_running() >= 12, describe(server)


# -- the CLI ------------------------------------------------------------------------------------


def _cli_backend(monkeypatch: pytest.MonkeyPatch, server: s.FakeServer) -> list[Any]:
    """The CLI's real `open_backend`, its client sent to `server` on the server's virtual
    clock (running while the client is open), its images fetched from a stub."""
    made: list[Any] = []
    clock = server.clock

    class Client(AsyncEvolink):
        def __init__(self, **options: Any) -> None:
            made.append(options.get("max_poll_interval", "absent"))
            options.pop("base_url", None)
            super().__init__(
                **options,
                base_url="https://fake.evolink.test",
                transport=server.transport(),
                clock=clock,
            )

        async def __aenter__(self) -> Client:
            await super().__aenter__()
            self._running = clock.running()
            await self._running.__aenter__()
            return self

        async def __aexit__(self, *exc: object) -> None:
            await self._running.__aexit__(*exc)
            await super().__aexit__(*exc)

    png = _png()

    def images(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=png, headers={"content-type": "image/png"})

    real = httpx.AsyncClient
    fake_httpx = types.SimpleNamespace(**vars(httpx))
    fake_httpx.AsyncClient = lambda *a, **k: real(
        *a, **{**k, "transport": k.get("transport") or httpx.MockTransport(images)}
    )
    monkeypatch.setattr(backend, "AsyncEvolink", Client)
    monkeypatch.setattr(backend, "httpx", fake_httpx)
    return made


@pytest.mark.parametrize("flag", [None, "0.25"])
def test_cli_generate_takes_the_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flag: str | None
) -> None:
    server = fresh(durations=s.fixed(30.0), progress=s.share(0.4))
    made = _cli_backend(monkeypatch, server)
    monkeypatch.setenv("EVOLINK_API_KEY", API_KEY)
    args = ["generate", "a fox in the snow", "--out", str(tmp_path / "out"), "--plain"]
    if flag is not None:
        args += ["--max-poll-interval", flag]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert made == [None if flag is None else 0.25]
    assert API_KEY not in result.output
    [fake] = server.tasks.values()
    if flag is None:
        # (A lone task is a batch's last: read about once a second anyway, `HURRY_COSTS`.)
        assert fake.max_gap() > 0.25, describe(server)  # the measure bites
    else:
        assert fake.max_gap() <= 0.25 + EPS, describe(server)
        assert fake.lateness() <= 0.25 + EPS, describe(server)


def test_cli_batch_takes_the_interval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    server = fresh(durations=s.spread(10, 30, 7), progress=s.stuck_at(99))
    made = _cli_backend(monkeypatch, server)
    monkeypatch.setenv("EVOLINK_API_KEY", API_KEY)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"a fox number {i}\n" for i in range(6)))
    args = ["batch", str(prompts), "--out", str(tmp_path / "out"), "--plain"]
    result = CliRunner().invoke(cli, [*args, "--max-poll-interval", "0.5"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert made == [0.5]
    assert len(server.tasks) == 6
    assert server.worst_gap() <= 0.5 + EPS, describe(server)
    assert server.worst_lateness() <= 0.5 + EPS, describe(server)


@pytest.mark.parametrize("value", ["0", "0.05", "-1", "nan", "inf", "-inf", "abc", "1e400"])
@pytest.mark.parametrize("command", ["generate", "batch"])
def test_cli_refuses_bad_values_before_any_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str, value: str
) -> None:
    server = fresh()
    _cli_backend(monkeypatch, server)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a fox\n")
    first = ["generate", "a fox"] if command == "generate" else ["batch", str(prompts)]
    args = [*first, "--out", str(tmp_path / "out"), "--plain", "--max-poll-interval", value]
    result = CliRunner().invoke(cli, [*args, "--api-key", API_KEY])
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert server.log == []
    assert API_KEY not in result.output
    assert "Traceback" not in result.output
