"""The async Python SDK for Evolink's image-generation API.

async with AsyncEvolink() as client:
    task = await client.images.generate("a red fox in snow")
    done = await client.tasks.wait(task)
"""

from __future__ import annotations

from evolink._batch import Batch
from evolink._batch_options import BatchOptions
from evolink._batch_run import BatchRun
from evolink._client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, AsyncEvolink
from evolink._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    EvolinkError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    SubmissionUncertainError,
    TaskFailedError,
    ValidationError,
    WaitTimeoutError,
)
from evolink._ledger import CreditLedger, TaskCredits
from evolink._models import (
    Balance,
    BillingRule,
    Credits,
    GenerationRequest,
    Task,
    TaskError,
    TaskInfo,
    TaskStatus,
    TaskType,
    Usage,
)
from evolink._outcomes import BatchReport, Outcome, OutcomeKind, SkipReason
from evolink._progress import BatchProgress
from evolink._retry import RetryPolicy
from evolink._validation import MODEL_RULES, ModelRules
from evolink._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "MODEL_RULES",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncEvolink",
    "AuthenticationError",
    "BadRequestError",
    "Balance",
    "Batch",
    "BatchOptions",
    "BatchProgress",
    "BatchReport",
    "BatchRun",
    "BillingRule",
    "ConfigurationError",
    "ConflictError",
    "CreditLedger",
    "Credits",
    "EvolinkError",
    "GenerationRequest",
    "InsufficientCreditsError",
    "ModelRules",
    "NotFoundError",
    "Outcome",
    "OutcomeKind",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseDecodeError",
    "RetryPolicy",
    "ServerError",
    "SkipReason",
    "SubmissionUncertainError",
    "Task",
    "TaskCredits",
    "TaskError",
    "TaskFailedError",
    "TaskInfo",
    "TaskStatus",
    "TaskType",
    "Usage",
    "ValidationError",
    "WaitTimeoutError",
    "__version__",
]
