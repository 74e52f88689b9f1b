"""What the API sends and receives, as frozen attrs classes.

Parsing lives in `_converter`; these classes only hold data and answer questions about it
(and, through `Serializable`, dump to and load from JSON-ready dicts).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import attrs

from evolink._serialization import Serializable

_EMPTY: Mapping[str, Any] = {}


class _OpenEnum(str, enum.Enum):
    """A string enum that takes any value: an unknown one becomes a pseudo-member.

    The server may add a status or a type any day; parsing must not crash on it, and the
    value must stay readable (`TaskStatus("paused").value == "paused"`).
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = "UNKNOWN"
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        """Whether this value is one the SDK knows."""
        return self._name_ != "UNKNOWN"

    def __str__(self) -> str:
        return str(self.value)


class TaskStatus(_OpenEnum):
    """Where a task is in its life. `cancelled` is undocumented but real."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the task will never change again."""
        return self in _TERMINAL


_TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class TaskType(_OpenEnum):
    """What a task produces."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    TEXT = "text"


class BillingRule(_OpenEnum):
    """How a task is billed."""

    PER_CALL = "per_call"
    PER_TOKEN = "per_token"
    PER_SECOND = "per_second"


# Task error codes after which the same request may succeed as a new task (SPEC.md).
RETRYABLE_TASK_ERRORS = frozenset(
    {
        "generation_failed_no_content",
        "service_error",
        "generation_timeout",
        "resource_exhausted",
        "quota_exceeded",
        "service_unavailable",
        "resource_not_found",
        "unknown_error",
    }
)


@attrs.frozen
class TaskError(Serializable):
    """Why a task failed.

    Attributes:
        code: the business error code (`"content_policy_violation"`, ...).
        message: a human explanation.
        type: always `"task_error"` today.
        suggestion: the server's hint, where it gives one (undocumented).
    """

    code: str
    message: str = ""
    type: str | None = None
    suggestion: str | None = None
    extra: Mapping[str, Any] = attrs.field(default=_EMPTY, repr=False)

    @property
    def is_retryable(self) -> bool:
        """Whether the same request may succeed as a new task later."""
        return self.code in RETRYABLE_TASK_ERRORS


@attrs.frozen
class TaskInfo(Serializable):
    """Scheduling hints for a task."""

    can_cancel: bool | None = None
    estimated_time: float | None = None
    extra: Mapping[str, Any] = attrs.field(default=_EMPTY, repr=False)


@attrs.frozen
class Usage(Serializable):
    """Billing for a task.

    Attributes:
        credits_reserved: credits held when the task was created (an estimate).
        credits_used: credits actually charged, where the server reports it (undocumented).
    """

    billing_rule: BillingRule | None = None
    credits_reserved: Decimal | None = None
    user_group: str | None = None
    credits_used: Decimal | None = None
    cost: Decimal | None = None
    extra: Mapping[str, Any] = attrs.field(default=_EMPTY, repr=False)


#: The `result_data` fields that name a result file, in the order `Task.media_urls` lists them.
RESULT_MEDIA_FIELDS = ("image_url", "video_url", "audio_url")


@attrs.frozen
class ResultData(Serializable):
    """A completed task's `result_data`: its media URLs, typed, and the rest as sent.

    Some models put their output here besides (or instead of) `results`; others put what
    they made that is not a file (Suno's `songs`, a voice name, a Kling `element_id`),
    which stays in `extra`.

    Attributes:
        image_url: the image made, where the server names it here.
        video_url: the video made, likewise.
        audio_url: the audio made, likewise.
        extra: every other field, as the server sent it.
    """

    image_url: str | None = None
    video_url: str | None = None
    audio_url: str | None = None
    extra: Mapping[str, Any] = attrs.field(default=_EMPTY, repr=False)

    @property
    def media_urls(self) -> tuple[str, ...]:
        """The URLs of the files it names: image, video, then audio."""
        found = (getattr(self, name) for name in RESULT_MEDIA_FIELDS)
        return tuple(url for url in found if url)


def read_result_data(data: object) -> ResultData | None:
    """A `result_data` object, typed; None unless it is an object (it never raises).

    A media field that is not a URL string (a list, an object, a number) is no URL to
    hand out: it stays in `extra` as sent, and the rest still reads.
    """
    if not isinstance(data, Mapping):
        return None
    urls: dict[str, str] = {}
    extra: dict[str, Any] = {}
    for name, value in data.items():
        if name in RESULT_MEDIA_FIELDS and isinstance(value, str):
            urls[name] = value
        elif name not in RESULT_MEDIA_FIELDS or value is not None:
            extra[name] = value
    found = ResultData(
        image_url=urls.get("image_url"),
        video_url=urls.get("video_url"),
        audio_url=urls.get("audio_url"),
    )
    return attrs.evolve(found, extra=extra) if extra else found


@attrs.frozen
class Task(Serializable):
    """An image-generation task, as the server last described it.

    Attributes:
        id: the task id (`task-unified-...`).
        status: where the task is; see `is_terminal` and `is_success`.
        progress: 0-100.
        created: when the server created it (aware, UTC).
        results: result URLs once completed (valid for 24 hours).
        error: why it failed, once failed.
        extra: fields the SDK does not know yet, as the server sent them (`result_data`
            among them: read it typed through `result_data` and `media_urls`).
    """

    id: str
    status: TaskStatus
    progress: int = 0
    created: datetime | None = None
    model: str | None = None
    object: str | None = None
    type: TaskType | None = None
    task_info: TaskInfo | None = None
    usage: Usage | None = None
    results: tuple[str, ...] = ()
    error: TaskError | None = None
    extra: Mapping[str, Any] = attrs.field(default=_EMPTY, repr=False)

    @property
    def is_terminal(self) -> bool:
        """Whether the task is completed, failed or cancelled."""
        return self.status.is_terminal

    @property
    def is_success(self) -> bool:
        """Whether the task completed."""
        return self.status is TaskStatus.COMPLETED

    @property
    def estimated_time(self) -> float | None:
        """The server's estimate of the task's total duration, in seconds."""
        return self.task_info.estimated_time if self.task_info is not None else None

    @property
    def credits_reserved(self) -> Decimal | None:
        """Credits held for this task."""
        return self.usage.credits_reserved if self.usage is not None else None

    @property
    def result_data(self) -> ResultData | None:
        """The task's `result_data` object, typed; None when absent or not an object.

        Read from `extra["result_data"]`, which keeps it as sent (so `to_dict()` and old
        code reading `extra` see no change). A list (Seedream's layers) is left there.
        """
        return read_result_data(self.extra.get("result_data"))

    @property
    def media_urls(self) -> tuple[str, ...]:
        """Every result file's URL: `results`, then any `result_data` names, each once."""
        result_data = self.result_data
        extra = result_data.media_urls if result_data is not None else ()
        return tuple(dict.fromkeys((*self.results, *extra)))

    def raise_for_status(self) -> Task:
        """Return the task, or raise `TaskFailedError` if it failed or was cancelled."""
        from evolink._errors import TaskFailedError  # noqa: PLC0415 - errors import models

        if self.status in {TaskStatus.FAILED, TaskStatus.CANCELLED}:
            raise TaskFailedError(self)
        return self


@attrs.frozen
class Balance(Serializable):
    """Credits of a key or a user."""

    remaining_credits: Decimal
    used_credits: Decimal
    unlimited_credits: bool | None = None


@attrs.frozen
class Credits(Serializable):
    """The answer of `GET /v1/credits`: the key's and the user's balances."""

    token: Balance | None = None
    user: Balance | None = None
    extra: Mapping[str, Any] = attrs.field(default=_EMPTY, repr=False)

    @property
    def remaining_credits(self) -> Decimal | None:
        """What the key can still spend: the least of its own cap and the user's balance
        (a key with credits left spends the account's, which may have fewer)."""
        limits = [self.user.remaining_credits] if self.user is not None else []
        if self.token is not None and not self.token.unlimited_credits:
            limits.append(self.token.remaining_credits)
        return min(limits, default=None)


#: A reference input (`image_urls`, `mask_url`): an http(s) URL, or a local file (a
#: `pathlib.Path`) that is uploaded with the files API when the request is sent.
Reference = str | os.PathLike[str]


def _optional_tuple(value: Iterable[Reference] | None) -> tuple[Reference, ...] | None:
    if isinstance(value, str):
        # One URL given where a list goes: not to be read as a list of its letters.
        from evolink._errors import ValidationError  # noqa: PLC0415 - _errors imports us

        raise ValidationError("image_urls", "type", "a list of URLs, not one string")
    return None if value is None else tuple(value)


#: What a model makes; it names the create endpoint (`POST /v1/{kind}s/generations`).
MediaKind = Literal["image", "video", "audio"]
#: The image model used when none is named: the current successor of the retired
#: `gpt-4o-image` (same fields: size, n, image_urls, mask_url).
DEFAULT_IMAGE_MODEL = "gpt-image-2"


@attrs.frozen(kw_only=True)
class GenerationRequest(Serializable):
    """One generation request (an image, a video or audio), as it will be sent.

    Build it directly for batches (`GenerationRequest(prompt="...", n=2)`). A model's own
    parameters go in `params` and are checked against the model catalog before sending;
    fields newer than the catalog go in `extra_body` and are sent as they are. A local
    file (`pathlib.Path`) among `image_urls` or `mask_url` is uploaded (once per content)
    when the request is sent, and its URL sent in its place.
    """

    prompt: str | None = None
    model: str = DEFAULT_IMAGE_MODEL
    size: str | None = None
    n: int | None = None
    image_urls: tuple[Reference, ...] | None = attrs.field(default=None, converter=_optional_tuple)
    mask_url: Reference | None = None
    callback_url: str | None = None
    extra_body: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    kind: MediaKind = "image"

    @property
    def images(self) -> int:
        """How many outputs the request asks for (`n`, 1 when unset)."""
        return self.n if self.n is not None else 1

    @property
    def endpoint(self) -> str:
        """The path its create is sent to."""
        return f"/v1/{self.kind}s/generations"

    def to_body(self) -> dict[str, Any]:
        """The JSON body: set fields only, then `params`, then `extra_body` on top.

        A local file (a `Path`, uploaded when a batch sends the request) shows as its path.
        """
        body: dict[str, Any] = {"model": self.model}
        if self.prompt is not None:
            body["prompt"] = self.prompt
        for name in ("size", "n", "mask_url", "callback_url"):
            value = getattr(self, name)
            if value is not None:
                body[name] = os.fspath(value) if isinstance(value, os.PathLike) else value
        if self.image_urls is not None:
            body["image_urls"] = [os.fspath(url) for url in self.image_urls]
        if self.params:
            body.update(self.params)
        if self.extra_body:
            body.update(self.extra_body)
        return body
