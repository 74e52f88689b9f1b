"""`client.images`: create image-generation tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evolink._generations import DEFAULT_RUN_TIMEOUT, Generations
from evolink._models import DEFAULT_IMAGE_MODEL, GenerationRequest, MediaKind, Reference, Task


class Images(Generations):
    """Create image tasks (`POST /v1/images/generations`). Reached as `client.images`."""

    kind: MediaKind = "image"

    async def generate(
        self,
        /,
        prompt: str | None,
        *,
        model: str = DEFAULT_IMAGE_MODEL,
        size: str | None = None,
        n: int | None = None,
        image_urls: Sequence[Reference] | None = None,
        mask_url: Reference | None = None,
        callback_url: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        max_retries: int | None = None,
        **params: Any,
    ) -> Task:
        """Create a task and return it at once (status `pending`); see `client.tasks.wait`.

        Args:
            prompt: what to draw (`None` for the few models that take none).
            model: the model (default `gpt-image-2`; see the model catalog).
            size: a ratio such as `1:1` or `16:9`, or pixels such as `1024x1024`, as the
                model takes them.
            n: images to make, where the model takes it; reserved for `n`, charged for
                what is made.
            image_urls: reference images: http(s) URLs, or local files (`pathlib.Path`),
                uploaded once per content with the files API (`client.files.uploads`).
            mask_url: a PNG mask the size of the single reference image (a URL or a
                local file, as `image_urls`).
            callback_url: an HTTPS URL the server POSTs the finished task to.
            extra_body: fields newer than the SDK's catalog, sent unchecked.
            idempotency_key: a key making retries of this create safe (16-96 characters of
                `[A-Za-z0-9._-]`); one is generated per call when not given.
            max_retries: overrides the client's for this call.
            **params: the model's own parameters (`quality="2K"`, `resolution="4K"`, ...),
                checked against its schema before sending.

        Raises:
            ValidationError: the request breaks a documented rule, or a local file is
                missing, over 10 MB or not an image (nothing was sent).
            InsufficientCreditsError: the balance cannot cover the reservation.
            SubmissionUncertainError: the server may have made the task; resend with the
                error's `idempotency_key` to find out without paying twice.
            UploadUncertainError: a local file's upload lost its answer (no task made).
            APIError: any other refusal (of the create, or of a local file's upload).
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
            params=params or None,
        )
        return await self.create(request, idempotency_key=idempotency_key, max_retries=max_retries)

    async def run(
        self,
        /,
        prompt: str | None,
        *,
        model: str = DEFAULT_IMAGE_MODEL,
        size: str | None = None,
        n: int | None = None,
        image_urls: Sequence[Reference] | None = None,
        mask_url: Reference | None = None,
        callback_url: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = DEFAULT_RUN_TIMEOUT,
        **params: Any,
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
            **params,
        )
        return await self._client.tasks.wait(task, timeout=timeout, raise_on_failure=True)
