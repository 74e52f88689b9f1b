"""The Python SDK for Evolink's image-generation API: async first, with a blocking twin.

async with AsyncEvolink() as client:
    done = await client.images.run("a red fox in snow")

with Evolink() as client:
    done = client.images.run("a red fox in snow")
"""

from __future__ import annotations

import attrs

from evolink._batch import Batch
from evolink._batch_options import BatchOptions
from evolink._batch_run import BatchRun
from evolink._catalog import ModelSpec, all_models, model_spec
from evolink._client import DEFAULT_TIMEOUT, AsyncEvolink
from evolink._cost import CostEstimate
from evolink._downloads import SavedImage
from evolink._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BalanceTooLowError,
    ConfigurationError,
    ConflictError,
    DownloadError,
    EvolinkError,
    InsufficientCreditsError,
    JournalError,
    ModelDeprecatedWarning,
    ModelRetiredError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    SubmissionUncertainError,
    TaskFailedError,
    UnknownModelWarning,
    UploadUncertainError,
    ValidationError,
    WaitTimeoutError,
)
from evolink._files import FilePage, FileQuota, Files, UploadedFile
from evolink._generations import Audios, Videos
from evolink._images import Images
from evolink._journal import (
    EntryStatus,
    FileRecord,
    InputRecord,
    JournalEntry,
    JournalStore,
    OutcomeRecord,
    UploadRecord,
)
from evolink._journal_postgres import PostgresJournal
from evolink._journal_sqlite import SQLiteJournal
from evolink._json_codec import install as _install_codec  # noqa: F401 - to_dict()'s codec
from evolink._ledger import CreditLedger, TaskCredits
from evolink._limits_postgres import PostgresBrake, PostgresCredits
from evolink._model_catalog import CatalogSource, Lifecycle, ModelCatalog, ModelInfo
from evolink._model_names import ArchivedImageModel, AudioModel, ImageModel, VideoModel
from evolink._models import (
    Balance,
    BillingRule,
    Credits,
    GenerationRequest,
    ResultData,
    Task,
    TaskError,
    TaskInfo,
    TaskStatus,
    TaskType,
    Usage,
)
from evolink._outcomes import BatchReport, Outcome, OutcomeKind, SkipReason
from evolink._prices import ModelPrice, Prices, PriceTable, PriceUnit
from evolink._progress import BatchProgress
from evolink._retry import RetryPolicy
from evolink._shared_limits import SharedBrake, SharedCredits
from evolink._sync import Evolink
from evolink._transport import DEFAULT_BASE_URL
from evolink._uploads import UploadCache
from evolink._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "ArchivedImageModel",
    "AsyncEvolink",
    "AudioModel",
    "Audios",
    "AuthenticationError",
    "BadRequestError",
    "Balance",
    "BalanceTooLowError",
    "Batch",
    "BatchOptions",
    "BatchProgress",
    "BatchReport",
    "BatchRun",
    "BillingRule",
    "CatalogSource",
    "ConfigurationError",
    "ConflictError",
    "CostEstimate",
    "CreditLedger",
    "Credits",
    "DownloadError",
    "EntryStatus",
    "Evolink",
    "EvolinkError",
    "FilePage",
    "FileQuota",
    "FileRecord",
    "Files",
    "GenerationRequest",
    "ImageModel",
    "Images",
    "InputRecord",
    "InsufficientCreditsError",
    "JournalEntry",
    "JournalError",
    "JournalStore",
    "Lifecycle",
    "ModelCatalog",
    "ModelDeprecatedWarning",
    "ModelInfo",
    "ModelPrice",
    "ModelRetiredError",
    "ModelSpec",
    "NotFoundError",
    "Outcome",
    "OutcomeKind",
    "OutcomeRecord",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "PostgresBrake",
    "PostgresCredits",
    "PostgresJournal",
    "PriceTable",
    "PriceUnit",
    "Prices",
    "RateLimitError",
    "ResponseDecodeError",
    "ResultData",
    "RetryPolicy",
    "SQLiteJournal",
    "SavedImage",
    "ServerError",
    "SharedBrake",
    "SharedCredits",
    "SkipReason",
    "SubmissionUncertainError",
    "Task",
    "TaskCredits",
    "TaskError",
    "TaskFailedError",
    "TaskInfo",
    "TaskStatus",
    "TaskType",
    "UnknownModelWarning",
    "UploadCache",
    "UploadRecord",
    "UploadUncertainError",
    "UploadedFile",
    "Usage",
    "ValidationError",
    "VideoModel",
    "Videos",
    "WaitTimeoutError",
    "__version__",
    "all_models",
    "model_spec",
]


def _show_as_public() -> None:
    """Name the public classes `evolink.X` (tracebacks, reprs, pickles), not `evolink._mod.X`."""
    for name in __all__:
        obj = globals()[name]
        if not isinstance(obj, type) or not obj.__module__.startswith("evolink._"):
            continue
        if attrs.has(obj):
            # Annotations are strings resolved in the defining module's namespace: resolve
            # them there, now, before cattrs or anyone else looks them up under the new name.
            attrs.resolve_types(obj)
        obj.__module__ = __name__


_show_as_public()
