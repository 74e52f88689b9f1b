"""Every error the SDK raises, under one root.

    EvolinkError
    ├── ValidationError            bad input, caught before any request (no credit spent)
    ├── ConfigurationError         no API key, a client used from another event loop, ...
    ├── APIError                   the server answered with an error
    │   ├── BadRequestError          400
    │   ├── AuthenticationError      401
    │   ├── InsufficientCreditsError 402
    │   ├── PermissionDeniedError    403
    │   ├── NotFoundError            404
    │   ├── ConflictError            409 (an Idempotency-Key reused with another body)
    │   ├── RateLimitError           429 (`retry_after`)
    │   ├── ServerError              5xx
    │   └── ResponseDecodeError      a 2xx whose body is not what the API documents
    ├── APIConnectionError         the request did not get an answer
    │   └── APITimeoutError
    ├── OutcomeUnknownError        a paid request whose outcome is unknown after safe retries
    │   ├── SubmissionUncertainError   a create
    │   └── UploadUncertainError       a file upload
    ├── ModelRetiredError          a model the catalog says is retired (nothing was sent)
    ├── BalanceTooLowError         the account cannot cover a batch's estimate (nothing sent)
    ├── TaskFailedError            a task that ended `failed` (or `cancelled`)
    ├── WaitTimeoutError           a task still running when a wait's deadline passed
    ├── DownloadError              a result image that could not be saved (`transient`)
    └── JournalError               a run's journal cannot be used (another input, a newer schema)

No error carries the API key: not in its message, its attributes or its cause's message.
"""

from __future__ import annotations

import copyreg
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decimal import Decimal

    from evolink._models import GenerationRequest, Task


class EvolinkError(Exception):
    """The root of every error this SDK raises.

    Every error pickles (for process pools and task queues) with its message and its
    attributes; it is rebuilt without calling `__init__`, so an error whose arguments are
    keyword-only, or whose message is made from its arguments, comes back equal.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # `Exception.__reduce__` rebuilds with `cls(*self.args)`: the formatted message
        # alone, which our `__init__`s do not take. Instead: `cls.__new__(cls)`, then the
        # state, set attribute by attribute (`BaseException.__setstate__`), `args` with
        # them (`OSError.__new__`, behind `WaitTimeoutError`, leaves `args` to `__init__`).
        # (`copyreg.__newobj__` is what `object.__reduce_ex__` uses; typeshed omits it.)
        rebuild = copyreg.__newobj__  # type: ignore[attr-defined]
        return (rebuild, (type(self),), {**self.__dict__, "args": self.args})


class ValidationError(EvolinkError, ValueError):
    """Input the API would refuse, caught before any request is sent.

    Attributes:
        field: the request field at fault (`"prompt"`, `"size"`, ...).
        rule: a short name for the rule broken (`"not_empty"`, `"one_of"`, ...).
    """

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(f"{field}: {message} [{rule}]")
        self.field = field
        self.rule = rule
        self.message = message


class ConfigurationError(EvolinkError):
    """The client is set up or used in a way that cannot work."""


class APIError(EvolinkError):
    """The server answered with an error status.

    Attributes:
        status_code: the HTTP status.
        code: the error code (a string since March 2026, an integer before).
        message: the server's message.
        type: the error type (`"invalid_request_error"`, ...).
        param: the parameter at fault, where the server names it.
        request_id: the server's request id, for support.
        body: the parsed JSON body (or the raw text when it was not JSON).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | int | None = None,
        type: str | None = None,  # noqa: A002 - the API's own name
        param: str | None = None,
        request_id: str | None = None,
        body: object = None,
    ) -> None:
        detail = (
            f"{status_code} {code}: {message}" if code is not None else f"{status_code}: {message}"
        )
        if request_id:
            detail += f" (request id {request_id})"
        super().__init__(detail)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.type = type
        self.param = param
        self.request_id = request_id
        self.body = body


class BadRequestError(APIError):
    """400: the server refused the request's content."""


class AuthenticationError(APIError):
    """401: the API key is missing, invalid or expired."""


class InsufficientCreditsError(APIError):
    """402: the account or key cannot cover the reservation."""


class PermissionDeniedError(APIError):
    """403: the key may not use this model or read this task."""


class NotFoundError(APIError):
    """404: no such task (or it expired), or no such endpoint."""


class ConflictError(APIError):
    """409: an Idempotency-Key was reused with a different body."""


class RateLimitError(APIError):
    """429: too many requests or too many unfinished tasks.

    Attributes:
        retry_after: seconds the server asked us to wait, if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the server failed."""


class ResponseDecodeError(APIError):
    """A success status whose body is not valid JSON or not the documented shape."""


class APIConnectionError(EvolinkError):
    """No answer: the connection failed or dropped."""


class APITimeoutError(APIConnectionError):
    """No answer in time."""


class OutcomeUnknownError(EvolinkError):
    """A paid request (a create, an upload) that may or may not have taken effect.

    Attributes:
        idempotency_key: the key it was sent with; sending it again with that key is safe.
    """

    idempotency_key: str


class UploadUncertainError(OutcomeUnknownError):
    """A file upload whose answer was lost: the file may or may not be stored.

    Attributes:
        idempotency_key: the key the upload was sent with.
        source: what was uploaded (a file name or URL; never its content).
    """

    def __init__(self, message: str, *, idempotency_key: str, source: str) -> None:
        super().__init__(f"upload of {source}: {message} (idempotency key {idempotency_key})")
        self.idempotency_key = idempotency_key
        self.source = source


class ModelRetiredError(EvolinkError):
    """A model the platform's catalog marks retired: refused before anything is sent.

    Attributes:
        model: the model asked for.
        retired_at: when it was (or is) retired, an ISO date, where the catalog says.
        replacement: the model to use instead, where the catalog names one.
    """

    def __init__(self, model: str, *, retired_at: str | None, replacement: str | None) -> None:
        when = f" on {retired_at}" if retired_at else ""
        instead = f"; use {replacement!r} instead" if replacement else ""
        super().__init__(f"model {model!r} was retired{when}{instead}")
        self.model = model
        self.retired_at = retired_at
        self.replacement = replacement


class BalanceTooLowError(EvolinkError):
    """The account's credits cannot cover what a batch is estimated to reserve.

    Attributes:
        needed: the estimated credits (the estimate's minimum).
        available: the credits the account has.
    """

    def __init__(self, *, needed: Decimal, available: Decimal) -> None:
        super().__init__(
            f"the account has {available} credits; the batch is estimated at {needed} at least"
        )
        self.needed = needed
        self.available = available


class SubmissionUncertainError(OutcomeUnknownError):
    """A create whose outcome is unknown: the server may or may not have made the task.

    Sending the same request again with `idempotency_key` either returns the task the
    server made or makes it once; sending it without that key may pay twice.

    Attributes:
        idempotency_key: the key the create was sent with.
        request: the generation request.
    """

    def __init__(self, message: str, *, idempotency_key: str, request: GenerationRequest) -> None:
        super().__init__(f"{message} (idempotency key {idempotency_key})")
        self.idempotency_key = idempotency_key
        self.request = request


class TaskFailedError(EvolinkError):
    """A task ended `failed` or `cancelled`.

    Attributes:
        task: the terminal task.
        code: the task's error code, if any.
        retryable: whether the same request may succeed as a new task later.
    """

    def __init__(self, task: Task) -> None:
        error = task.error
        code = error.code if error is not None else None
        text = error.message if error is not None else task.status.value
        detail = " ".join(part for part in (code, text) if part)
        super().__init__(f"task {task.id} {task.status.value}: {detail}")
        self.task = task
        self.code = code
        self.retryable = error.is_retryable if error is not None else False


class WaitTimeoutError(EvolinkError, TimeoutError):
    """A task was still unfinished when the wait's deadline passed.

    Attributes:
        task: the task as last read.
    """

    def __init__(self, task: Task, timeout: float) -> None:
        super().__init__(f"task {task.id} still {task.status.value} after {timeout:g} s")
        self.task = task
        self.timeout = timeout


class DownloadError(EvolinkError):
    """A result image could not be fetched or written.

    Attributes:
        transient: whether trying again later may work (a dropped connection, a 5xx), as
            opposed to an answer that will not change (not an image, too large, a 404).
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


_BY_STATUS: Mapping[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_class_for(status_code: int) -> type[APIError]:
    """The `APIError` subclass for an HTTP status."""
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIError)


class UnknownModelWarning(UserWarning):
    """A model the SDK's catalog does not know: it is sent as asked, without checks.

    The platform adds models every month; update the SDK for their checks, or silence this
    with `warnings.filterwarnings("ignore", category=evolink.UnknownModelWarning)`.
    """


class ModelDeprecatedWarning(UserWarning):
    """A model the platform's catalog marks deprecated: it works until its retirement date."""


class JournalError(EvolinkError):
    """A run's journal cannot be used: not a journal, a newer schema, or another input's."""
