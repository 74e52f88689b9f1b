"""The server's clock as the answers tell it: a task's age is by its stamp, on that clock."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from evolink._server_clock import ServerClock


def _date(seconds: float) -> str:
    return format_datetime(datetime.fromtimestamp(seconds, tz=timezone.utc), usegmt=True)


def test_unknown_until_an_answer_tells() -> None:
    assert ServerClock().offset() == 0.0


def test_a_creates_stamp_tells_the_offset_within_a_second() -> None:
    clock = ServerClock()
    for k in range(5):
        ours = 1_800_000_000.0 + 10 * k
        # The server runs 600 s behind: it stamps (floored) while the create is out.
        clock.saw_created(float(int(ours + 0.05 - 600)), ours, ours + 0.1)
    assert clock.offset() == pytest.approx(-600, abs=1.0)


def test_date_headers_tell_it_where_no_create_did() -> None:
    clock = ServerClock()
    ours = 1_800_000_000.3
    clock.saw_date(_date(ours + 300), ours, ours + 0.05)
    clock.saw_date("not a date", ours, ours + 0.05)
    clock.saw_date(None, ours, ours + 0.05)
    assert clock.offset() == pytest.approx(300, abs=1.0)


def test_stamps_are_preferred_to_date_headers() -> None:
    """A proxy in front of the API may set `Date` on its own clock: the stamps are the
    clock the `created` fields come from."""
    clock = ServerClock()
    ours = 1_800_000_000.0
    clock.saw_date(_date(ours + 3600), ours, ours + 0.05)
    clock.saw_created(float(int(ours - 120)), ours, ours + 0.05)
    assert clock.offset() == pytest.approx(-120, abs=1.0)


def test_a_slow_answer_says_too_little() -> None:
    clock = ServerClock()
    clock.saw_created(1_800_000_000.0, 1_800_000_000.0, 1_800_000_060.0)
    assert clock.offset() == 0.0
