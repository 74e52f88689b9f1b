"""`client.images`: create image-generation tasks."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evolink._batch_run import BatchRun
from evolink._converter import parse_task
from evolink._errors import ResponseDecodeError, SubmissionUncertainError
from evolink._idempotency import check_idempotency_key, new_idempotency_key
from evolink._models import GenerationRequest, Task
from evolink._validation import validate

#: How long `run` waits for a task by default: real tasks take a minute or two.
DEFAULT_RUN_TIMEOUT = 600.0

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from evolink._batch_options import BatchKwargs
    from evolink._client import AsyncEvolink, Pacer


class Images:
    """Create image-generation tasks. Reached as `client.images`."""

    def __init__(self, client: AsyncEvolink) -> None:
        self._client = client

    async def generate(
        self,
        prompt: str,
        *,
        model: str = "gpt-4o-image",
        size: str | None = None,
        n: int | None = None,
        image_urls: Sequence[str] | None = None,
        mask_url: str | None = None,
        callback_url: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        max_retries: int | None = None,
    ) -> Task:
        """Create a task and return it at once (status `pending`); see `client.tasks.wait`.

        Args:
            prompt: what to draw (at most 2000 characters for gpt-4o-image).
            model: the model; fields only it knows go in `extra_body`.
            size: `1:1`, `2:3`, `3:2`, `1024x1024`, `1024x1536` or `1536x1024` (gpt-4o-image).
            n: images to make: 1, 2 or 4 (gpt-4o-image); reserved for `n`, charged for made.
            image_urls: reference images (http(s) URLs).
            mask_url: a PNG mask the size of the single reference image.
            callback_url: an HTTPS URL the server POSTs the finished task to.
            extra_body: model-specific fields, sent as they are.
            idempotency_key: a key making retries of this create safe (16-96 characters of
                `[A-Za-z0-9._-]`); one is generated per call when not given.
            max_retries: overrides the client's for this call.

        Raises:
            ValidationError: the request breaks a documented rule (nothing was sent).
            InsufficientCreditsError: the balance cannot cover the reservation.
            SubmissionUncertainError: the server may have made the task; resend with the
                error's `idempotency_key` to find out without paying twice.
            APIError: any other refusal.
        """
        request = GenerationRequest(
            prompt=prompt,
            model=model,
            size=size,
            n=n,
            image_urls=image_urls,
            mask_url=mask_url,
            callback_url=callback_url,
            extra_body=extra_body,
        )
        return await self.create(request, idempotency_key=idempotency_key, max_retries=max_retries)

    async def run(
        self,
        prompt: str,
        *,
        model: str = "gpt-4o-image",
        size: str | None = None,
        n: int | None = None,
        image_urls: Sequence[str] | None = None,
        mask_url: str | None = None,
        callback_url: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = DEFAULT_RUN_TIMEOUT,
    ) -> Task:
        """Create a task, wait for it, and return it completed: one call to a result.

        `generate` then `tasks.wait(..., raise_on_failure=True)`; the arguments are
        `generate`'s, plus `timeout`.

        Args:
            prompt: what to draw.
            timeout: seconds to wait for the task once created (600 by default); `None`
                waits as long as it runs.

        Returns:
            The completed task: its image URLs are in `results`.

        Raises:
            TaskFailedError: the task failed or was cancelled (it carries the task).
            WaitTimeoutError: the task was still running after `timeout` (it carries the
                task: `client.tasks.wait(error.task)` waits on).
            ValidationError, InsufficientCreditsError, SubmissionUncertainError, APIError:
                as `generate` raises them.
        """
        task = await self.generate(
            prompt,
            model=model,
            size=size,
            n=n,
            image_urls=image_urls,
            mask_url=mask_url,
            callback_url=callback_url,
            extra_body=extra_body,
            idempotency_key=idempotency_key,
        )
        return await self._client.tasks.wait(task, timeout=timeout, raise_on_failure=True)

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
            request: the request, as `GenerationRequest(prompt=..., ...)` builds it.
            idempotency_key: the key of an earlier create to repeat it safely; one is
                generated per call when not given.
            max_retries: overrides the client's for this call.
            pacer: a shared brake for many requests (used by batches).

        Returns:
            The new task (or, for a repeated key, the task the first create made).

        Raises:
            ValidationError: the request or the key breaks a documented rule.
            SubmissionUncertainError: the server may have made the task.
            APIError: the server refused the create.
        """
        validate(request, allow_local_callbacks=self._client.allow_local_callbacks)
        check_idempotency_key(idempotency_key)
        key = idempotency_key or new_idempotency_key()
        answer = await self._client._request(  # noqa: SLF001 - the resource's one way out
            "POST",
            "/v1/images/generations",
            body=request.to_body(),
            idempotency_key=key,
            max_retries=max_retries,
            pacer=pacer,
            generation=request,
        )
        try:
            return parse_task(answer.data)
        except ResponseDecodeError as exc:
            # The server answered 2xx: a task exists that we cannot read. Its key finds it.
            raise SubmissionUncertainError(
                f"the create succeeded but its task could not be read: {exc}",
                idempotency_key=key,
                request=request,
            ) from exc

    def generate_many(
        self,
        requests: Iterable[str | GenerationRequest] | AsyncIterable[str | GenerationRequest],
        **options: Unpack[BatchKwargs],
    ) -> BatchRun:
        """Generate every request as one batch; await it for its report.

        Every input ends in exactly one outcome: failures, refusals and skipped inputs
        are outcomes in the report, not exceptions. If the await is cut short (a timeout,
        a cancellation), the running tasks are abandoned, not lost: keep the returned
        handle and call its `report()` (abandoned outcomes carry their task) or
        `created()`.

        Args:
            requests: prompts or `GenerationRequest`s, as a list or an (async) iterable.
            **options: the options of `client.batch(...)` (`max_in_flight`,
                `max_credits`, `retry_failed`, `on_progress`, ...; see `BatchOptions`).

        Returns:
            A `BatchRun`: `await` it for the `BatchReport`, outcomes in input order.

        Raises:
            ValidationError: (when awaited) an option is out of range.
        """
        return BatchRun(self._client, requests, options)
