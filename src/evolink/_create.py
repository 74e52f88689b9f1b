"""The one create path, whatever a model makes: validate, then send under the create's rules.

A create is an endpoint, a model and a JSON body (a `GenerationRequest`); the resources,
batches and resumed runs all create through `create_task`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evolink._converter import parse_task
from evolink._idempotency import check_idempotency_key, new_idempotency_key
from evolink._models import GenerationRequest, Task
from evolink._retry import RequestKind
from evolink._validation import validate

if TYPE_CHECKING:
    from evolink._transport import Pacer, Transport


async def create_task(
    transport: Transport,
    request: GenerationRequest,
    *,
    allow_local_callbacks: bool,
    idempotency_key: str | None = None,
    max_retries: int | None = None,
    pacer: Pacer | None = None,
    check_model: Callable[[str], None] | None = None,
    **sending: Any,
) -> Task:
    """Validate `request`, then send its create under the create's retry rules.

    `check_model` refuses a model before anything is sent (the catalog's retired models:
    `client.models.check_cached`). `sending` passes a batch's own limits and hooks on to
    `Transport.send`.
    """
    validate(request, allow_local_callbacks=allow_local_callbacks)
    check_idempotency_key(idempotency_key)
    if check_model is not None:
        check_model(request.model)  # retired per the catalog already read: refused
    sent = transport.clock.time()
    task: Task = await transport.send(
        RequestKind.CREATE,
        "POST",
        request.endpoint,
        body=request.to_body(),
        # A 2xx whose task cannot be read: a task exists, and its key finds it again.
        parse=parse_task,
        idempotency_key=idempotency_key or new_idempotency_key(),
        subject=request,
        retries=max_retries,
        pacer=pacer,
        **sending,
    )
    if task.created is not None:
        # Stamped while the create was out: how the server's clock stands to ours.
        transport.server_clock.saw_created(task.created.timestamp(), sent, transport.clock.time())
    return task
