"""Making a simulator: what it needs is said when it is made, not on its first request."""

from __future__ import annotations

import sys

import pytest

from evolink.testing import Simulator


def test_a_simulator_without_jsonschema_says_so_when_made(monkeypatch):
    """Without the `testing` extra's jsonschema, `Simulator()` names the extra at once.

    Found by running the tests with no extra installed: the error surfaced only as a 500 on
    each create, which a client reads as an uncertain outcome.
    """
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    with pytest.raises(RuntimeError, match=r"pip install '\.\[testing\]'"):
        Simulator()
