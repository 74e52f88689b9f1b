"""Test helpers: the Evolink simulator and a virtual clock.

`from evolink.testing import Simulator, VirtualClock`
"""

from __future__ import annotations

from evolink.testing._clock import VirtualClock

__all__ = ["VirtualClock"]
