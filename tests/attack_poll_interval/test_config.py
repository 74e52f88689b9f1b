"""Promise 4: a bad `max_poll_interval` is a `ConfigurationError` when the client is made,
before any HTTP request; good ones are taken as seconds."""

from __future__ import annotations

import decimal
import fractions
import math
from typing import Any

import pytest

from evolink import AsyncEvolink, ConfigurationError

from ._harness import client_for, fresh, run
from ._server import API_KEY


class _Seconds(float):
    """A float subclass (numpy's float64 is one)."""


BAD: list[Any] = [
    0,
    0.0,
    -0.0,
    0.0999,
    0.09999999999999999,
    -1,
    -0.5,
    math.nan,
    -math.nan,
    math.inf,
    -math.inf,
    True,
    False,
    "1",
    "1.0",
    b"1",
    decimal.Decimal(1),
    fractions.Fraction(1, 2),
    1j,
    [1.0],
    10**400,  # an int no float can hold: as infinite as inf
    -(10**400),
]


@pytest.mark.parametrize("bad", BAD, ids=lambda v: repr(v)[:30])
def test_bad_values_are_refused_before_any_request(bad: Any) -> None:
    server = fresh()
    with pytest.raises(ConfigurationError) as caught:
        client_for(server, bad)
    assert "max_poll_interval" in str(caught.value)
    assert server.log == []


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0.1, 0.1),
        (1, 1.0),
        (2.5, 2.5),
        (_Seconds(0.5), 0.5),
        (10**6, 1e6),
    ],
    ids=repr,
)
def test_good_values_are_seconds(value: Any, seconds: float) -> None:
    server = fresh()
    client = client_for(server, value)
    assert client.max_poll_interval == seconds
    assert type(client.max_poll_interval) is float


def test_default_is_none() -> None:
    client = AsyncEvolink(api_key=API_KEY)
    assert client.max_poll_interval is None


def test_a_refused_value_leaves_nothing_open() -> None:
    """Refused in `__init__`: nothing to close, and a good client next to it still works."""
    server = fresh()

    async def main() -> None:
        with pytest.raises(ConfigurationError):
            client_for(server, 0)
        async with client_for(server, 1.0) as client, server.clock.running():
            task = await client.images.generate("a fox")
            await client.tasks.wait(task)

    run(main)
    assert len(server.tasks) == 1
