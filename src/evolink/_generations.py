"""The one create path, whatever a model makes: an endpoint, a model and a JSON body.

`client.images`, `client.videos` and `client.audios` are thin doors onto it: each shapes
its own arguments into a `GenerationRequest`, and the create, its validation, its
idempotency key and batches are the same for all three.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from evolink._batch_run import BatchRun
from evolink._create import create_task
from evolink._models import GenerationRequest, MediaKind, Reference, Task
from evolink._uploads import has_local_files

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from evolink._batch import Batch
    from evolink._batch_options import BatchKwargs
    from evolink._client import AsyncEvolink
    from evolink._transport import Pacer, Transport

#: How long `run` waits for a task by default: real tasks take a minute or two (images),
#: or several (videos).
DEFAULT_RUN_TIMEOUT = 600.0

Requests = Iterable[str | GenerationRequest] | AsyncIterable[str | GenerationRequest]


class Generations:
    """What every media resource has: create from a request, batches, one kind."""

    kind: MediaKind = "image"

    def __init__(self, client: AsyncEvolink, transport: Transport) -> None:
        self._client = client
        self._transport = transport

    async def create(
        self,
        request: GenerationRequest,
        *,
        idempotency_key: str | None = None,
        max_retries: int | None = None,
        pacer: Pacer | None = None,
    ) -> Task:
        """Create a task from a prepared `GenerationRequest`; see `generate`.

        Args:
            request: the request, as `GenerationRequest(prompt=..., ...)` builds it (sent
                to this resource's endpoint); a local file among its reference inputs is
                uploaded first, through `client.files.uploads`.
            idempotency_key: the key of an earlier create to repeat it safely; one is
                generated per call when not given.
            max_retries: overrides the client's for this call.
            pacer: a shared brake for many requests (used by batches).

        Returns:
            The new task (or, for a repeated key, the task the first create made).

        Raises:
            ValidationError: the request or the key breaks a documented rule, or a local
                file is missing, over 10 MB or not an image (nothing was sent).
            SubmissionUncertainError: the server may have made the task.
            UploadUncertainError: a local file's upload lost its answer (no task made).
            APIError: the server refused the create (or a local file's upload).
        """
        if request.kind != self.kind:
            request = attrs.evolve(request, kind=self.kind)
        if has_local_files(request):  # uploaded (once per content) before the create
            request = await self._client.files.uploads.resolve(request)
        return await create_task(
            self._transport,
            request,
            allow_local_callbacks=self._client.allow_local_callbacks,
            idempotency_key=idempotency_key,
            max_retries=max_retries,
            pacer=pacer,
            check_model=self._client.models.check_cached,
        )

    def generate_many(self, requests: Requests, **options: Unpack[BatchKwargs]) -> BatchRun:
        """Generate every request as one batch; await it for its report.

        Every input ends in exactly one outcome: failures, refusals and skipped inputs
        are outcomes in the report, not exceptions. If the await is cut short (a timeout,
        a cancellation), the running tasks are abandoned, not lost: keep the returned
        handle and call its `report()` (abandoned outcomes carry their task) or
        `created()`.

        Args:
            requests: prompts or `GenerationRequest`s, as a list or an (async) iterable.
            **options: the options of `client.batch(...)` (`model`, `params`,
                `max_in_flight`, `max_credits`, `retry_failed`, `on_progress`, ...; see
                `BatchOptions`).

        Returns:
            A `BatchRun`: `await` it for the `BatchReport`, outcomes in input order.

        Raises:
            ValidationError: (when awaited) an option is out of range.
        """
        options["kind"] = self.kind
        return BatchRun(self._client, requests, options)

    def batch(self, **options: Unpack[BatchKwargs]) -> Batch:
        """A batch of this kind: `async with client.videos.batch(model=...) as batch:`.

        The options are `evolink.BatchOptions`'s; plain prompts submitted to it are
        made with its `model` and `params`.

        Raises:
            ValidationError: an option is out of range.
        """
        options["kind"] = self.kind
        return self._client.batch(**options)


class _Media(Generations):
    """Videos and audio: a model, an optional prompt, and the model's own parameters."""

    async def generate(
        self,
        /,
        prompt: str | None = None,
        *,
        model: str,
        image_urls: Sequence[Reference] | None = None,
        callback_url: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        max_retries: int | None = None,
        **params: Any,
    ) -> Task:
        """Create a task and return it at once (status `pending`); see `client.tasks.wait`.

        Args:
            prompt: what to make (some models take none).
            model: the model (see the model catalog for its parameters).
            image_urls: reference images, where the model takes them: http(s) URLs, or
                local files (`pathlib.Path`), uploaded once per content.
            callback_url: an HTTPS URL the server POSTs the finished task to.
            extra_body: fields newer than the SDK's catalog, sent unchecked.
            idempotency_key: a key making retries of this create safe.
            max_retries: overrides the client's for this call.
            **params: the model's own parameters (`duration=5`, `quality="720p"`, ...),
                checked against its schema before sending.

        Raises:
            ValidationError: the request breaks the model's documented rules (nothing
                was sent).
            InsufficientCreditsError: the balance cannot cover the reservation.
            SubmissionUncertainError: the server may have made the task.
            APIError: any other refusal.
        """
        request = GenerationRequest(
            prompt=prompt,
            model=model,
            image_urls=image_urls,
            callback_url=callback_url,
            extra_body=extra_body,
            params=params or None,
            kind=self.kind,
        )
        return await self.create(request, idempotency_key=idempotency_key, max_retries=max_retries)

    async def run(
        self,
        /,
        prompt: str | None = None,
        *,
        model: str,
        timeout: float | None = DEFAULT_RUN_TIMEOUT,
        **arguments: Any,
    ) -> Task:
        """Create a task, wait for it, and return it completed: one call to a result.

        The arguments are `generate`'s, plus `timeout` (seconds to wait once created).

        Raises:
            TaskFailedError: the task failed or was cancelled (it carries the task).
            WaitTimeoutError: still running after `timeout` (it carries the task).
            ValidationError, InsufficientCreditsError, SubmissionUncertainError, APIError:
                as `generate` raises them.
        """
        task = await self.generate(prompt, model=model, **arguments)
        return await self._client.tasks.wait(task, timeout=timeout, raise_on_failure=True)


class Videos(_Media):
    """Create video tasks (`POST /v1/videos/generations`). Reached as `client.videos`."""

    kind: MediaKind = "video"


class Audios(_Media):
    """Create audio tasks (`POST /v1/audios/generations`). Reached as `client.audios`."""

    kind: MediaKind = "audio"
