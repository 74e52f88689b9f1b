"""Test helpers: the Evolink simulator and a virtual clock.

`from evolink.testing import Simulator, VirtualClock`

The simulator is a local Evolink API (see `docs/simulator.md`): use
`Simulator().transport()` in-process, `Simulator().app` under any ASGI server, or
`python -m evolink.testing --port 8000`.
"""

from __future__ import annotations

from evolink.testing._callbacks import CallbackAttempt
from evolink.testing._catalog import (
    DEFAULT_MODELS,
    PERMANENT_TASK_ERRORS,
    RETRYABLE_TASK_ERRORS,
    TASK_ERROR_CODES,
    ModelSpec,
)
from evolink.testing._clock import ScaledClock, VirtualClock
from evolink.testing._durations import ByModel, Durations, Fixed, LogNormal, Pareto, Uniform
from evolink.testing._engine import FinalStatus, SimulatedTask
from evolink.testing._estimates import Estimates
from evolink.testing._faults import Faults
from evolink.testing._ledger import EntryKind, Ledger, LedgerEntry
from evolink.testing._per_model import EstimatesByModel, ProgressByModel
from evolink.testing._progress_models import (
    LinearProgress,
    NoProgress,
    PowerProgress,
    ProgressModel,
    ShareProgress,
    SteppedProgress,
)
from evolink.testing._records import RecordedRequest
from evolink.testing._serve import serve
from evolink.testing._simulator import TEST_API_KEY, Simulator

__all__ = [
    "DEFAULT_MODELS",
    "PERMANENT_TASK_ERRORS",
    "RETRYABLE_TASK_ERRORS",
    "TASK_ERROR_CODES",
    "TEST_API_KEY",
    "ByModel",
    "CallbackAttempt",
    "Durations",
    "EntryKind",
    "Estimates",
    "EstimatesByModel",
    "Faults",
    "FinalStatus",
    "Fixed",
    "Ledger",
    "LedgerEntry",
    "LinearProgress",
    "LogNormal",
    "ModelSpec",
    "NoProgress",
    "Pareto",
    "PowerProgress",
    "ProgressByModel",
    "ProgressModel",
    "RecordedRequest",
    "ScaledClock",
    "ShareProgress",
    "SimulatedTask",
    "Simulator",
    "SteppedProgress",
    "Uniform",
    "VirtualClock",
    "serve",
]
