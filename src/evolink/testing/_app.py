"""The simulator's ASGI application: routes, auth, limits, injected faults, the record.

Written against bare ASGI (no framework): it is small, and it must run both under the
in-process transport and under uvicorn.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Collection
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs

from evolink._clock import Clock
from evolink.testing._engine import (
    Engine,
    InsufficientCredits,
    Remembered,
    TooManyTasks,
    fingerprint,
    task_view,
)
from evolink.testing._faults import Faults
from evolink.testing._http import (
    READ_TIMEOUT_EXTENSION,
    Receive,
    Reply,
    Request,
    Scope,
    Send,
    json_reply,
    read_body,
)
from evolink.testing._media import DEFAULT_MEDIA_SECONDS, Kind, render
from evolink.testing._platform import Platform
from evolink.testing._records import RecordedRequest, redact_key
from evolink.testing._schemas import Catalog, catalog
from evolink.testing._validation import (
    IDEMPOTENCY_KEY,
    Generation,
    Invalid,
    check_documented,
    check_generation,
)

MAX_BATCH_IDS = 50
MAX_PAGE_SIZE = 100
TASK_ID_PREFIX = "task-unified-"
KEY_PREFIX = "sk-evo-"
_READ_KINDS = frozenset({"read", "batch", "list"})
_PLATFORM_KINDS = frozenset({"catalog", "upload", "files"})
_SERVER_ERRORS = {
    500: ("internal_error", "Internal server error", "api_error"),
    502: ("upstream_error", "Upstream service error", "upstream_error"),
    503: ("service_unavailable", "Service temporarily unavailable", "service_unavailable_error"),
}


def error_reply(
    status: int,
    code: str,
    message: str,
    type_: str,
    *,
    param: str | None = None,
    legacy: bool = False,
) -> Reply:
    """The error envelope. `legacy` answers the pre-2026 form (integer `code`), as the
    OpenAPI file of `/v1/credits` still documents it."""
    error: dict[str, Any] = {"code": status if legacy else code, "message": message, "type": type_}
    if param is not None:
        error["param"] = param
    return json_reply(status, {"error": error})


@attrs.define
class _Bucket:
    tokens: float
    at: float


@attrs.define
class SimulatorApp:
    """The ASGI callable behind `Simulator.app`."""

    engine: Engine
    clock: Clock
    faults: Faults
    fault_rng: random.Random
    started_at: float
    lifespan: Callable[[], AbstractAsyncContextManager[object]]
    api_keys: Collection[str] | None = None
    batch_endpoint: bool = True
    idempotency: bool = True
    allow_local_callbacks: bool = False
    retry_after: float | None = None
    max_requests_per_second: float | None = None
    result_ttl: float = 86_400.0
    task_ttl: float = 259_200.0
    accept_retired: bool = True
    catalog: Catalog = attrs.field(factory=catalog, repr=False)
    platform: Platform | None = attrs.field(default=None, repr=False)
    records: list[RecordedRequest] = attrs.field(factory=list)
    #: Seconds asked of each video or audio task (its result file's length).
    _media_seconds: dict[str, float] = attrs.field(factory=dict)
    _buckets: dict[str, _Bucket] = attrs.field(factory=dict)
    _request_ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # pragma: no cover - websockets are not served
            return
        body = await read_body(receive)
        reply = self.handle(Request.from_scope(scope, body))
        if reply.delay > 0:
            timeout = scope.get("extensions", {}).get(READ_TIMEOUT_EXTENSION)
            if timeout is not None and reply.delay > timeout:
                # The in-process client gives up first: it gets no answer at all.
                await self.clock.sleep(timeout)
                return
            await self.clock.sleep(reply.delay)
        headers = [(b"content-type", reply.content_type.encode())]
        headers.append((b"content-length", str(len(reply.body)).encode()))
        headers.extend((name.encode(), value.encode()) for name, value in reply.headers)
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if reply.drop:
            # Half the body, then nothing: the connection dies mid-response.
            half = reply.body[: len(reply.body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            return
        await send({"type": "http.response.body", "body": reply.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        try:
            async with self.lifespan():
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
        except Exception as exc:  # noqa: BLE001  # pragma: no cover - the server reports it and stops
            await send({"type": "lifespan.startup.failed", "message": repr(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})

    # -- one request ----------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Answer one request (synchronously: no awaits while state changes)."""
        request_id = f"sim-req-{next(self._request_ids):08d}"
        with self.engine.lock:
            now = self.clock.time()
            self.engine.settle(now)
            token = request.bearer()
            state: dict[str, Any] = {"fault": None, "replayed": False}
            reply = self._dispatch(request, token, now, state)
            self.records.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=request.query,
                    time=now,
                    key=None if token is None else redact_key(token),
                    body=request.json(),
                    status=reply.status,
                    request_id=request_id,
                    idempotency_key=request.headers.get("idempotency-key"),
                    fault=state["fault"],
                    replayed=state["replayed"],
                )
            )
        return reply.with_headers(("x-request-id", request_id))

    def _route(self, request: Request) -> tuple[str, Reply | None]:
        method, path = request.method, request.path
        served = self.platform.handles(method, path) if self.platform is not None else None
        if served is not None:
            return served, None
        routes = {
            **{("POST", kind.endpoint): "create" for kind in Kind},
            ("GET", "/v1/credits"): "credits",
            ("GET", "/v1/models"): "models",
            ("GET", "/v1/tasks"): "list",
        }
        if self.batch_endpoint:
            routes["POST", "/v1/tasks/batch"] = "batch"
        kind = routes.get((method, path))
        if kind is None and method == "GET" and path.startswith("/v1/tasks/"):
            kind = "read"
        if kind is None and method == "GET" and path.startswith("/results/"):
            kind = "result"
        if kind is not None:
            return kind, None
        known = {p for _, p in routes}
        if path == "/v1/tasks/batch":  # switched off: as if the route did not exist
            return "", error_reply(404, "not_found", f"no route {path}", "invalid_request_error")
        if path in known or path.startswith(("/v1/tasks/", "/results/")):
            return "", error_reply(
                405, "method_not_allowed", f"{method} is not allowed here", "invalid_request_error"
            )
        return "", error_reply(404, "not_found", f"no route {path}", "invalid_request_error")

    def _dispatch(
        self, request: Request, token: str | None, now: float, state: dict[str, Any]
    ) -> Reply:
        kind, refusal = self._route(request)
        if refusal is not None:
            return refusal
        if kind == "result":
            return self._result(request, now)
        legacy = kind == "credits"
        if token is None or not self._key_ok(token):
            return error_reply(
                401,
                "unauthorized",
                "Invalid or expired token",
                "authentication_error",
                legacy=legacy,
            )
        key = redact_key(token)
        # The platform's routes have fault knobs of their own: the task faults' draws (and
        # so every seeded run that uses them) stay as they were.
        platform = kind in _PLATFORM_KINDS
        limited = not platform and self._rate_limited(key, now, state)
        if limited:
            return self._too_many(kind, legacy=legacy)
        server_error = None if platform else self._server_error(kind, legacy=legacy)
        if server_error is not None:
            state["fault"] = "server_error"
            return server_error
        reply = self._answer(kind, request, key, now, state)
        return reply if platform else self._damage(kind, reply, state)

    def _answer(
        self, kind: str, request: Request, key: str, now: float, state: dict[str, Any]
    ) -> Reply:
        if kind in _PLATFORM_KINDS:
            return self._platform_answer(kind, request, key, now, state)
        if kind == "create":
            return self._create(request, key, now, state)
        readers = {"read": self._read, "batch": self._batch, "list": self._list}
        if kind in readers:
            return readers[kind](request, key, now)
        if kind == "credits":
            return self._credits(key)
        return json_reply(
            200,
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "owned_by": "evolink"}
                    for name in self.engine.models
                    if self.accept_retired or not self._retired(name)
                ],
            },
        )

    def _platform_answer(
        self, kind: str, request: Request, key: str, now: float, state: dict[str, Any]
    ) -> Reply:
        assert self.platform is not None  # noqa: S101 - routed here only with a platform
        faults = self.faults
        failing = faults.catalog_errors if kind == "catalog" else 0.0
        failing = faults.upload_errors if kind == "upload" else failing
        if self._draw(failing):
            state["fault"] = "server_error"
            return error_reply(503, *_SERVER_ERRORS[503])
        reply, state["replayed"] = self.platform.answer(kind, request, key, now)
        fresh_upload = kind == "upload" and reply.status == 200 and not state["replayed"]
        if fresh_upload and self._draw(faults.lost_upload_response):
            state["fault"] = "lost_response"
            return attrs.evolve(reply, drop=True)
        return reply

    # -- gates and faults -----------------------------------------------------------------

    def _key_ok(self, token: str) -> bool:
        if self.api_keys is not None:
            return token in self.api_keys
        return token.startswith(KEY_PREFIX) and len(token) > len(KEY_PREFIX)

    def _draw(self, probability: float) -> bool:
        # No draw for a knob that is off: the fault stream depends only on active knobs.
        return probability > 0 and self.fault_rng.random() < probability

    def _rate_limited(self, key: str, now: float, state: dict[str, Any]) -> bool:
        rate = self.max_requests_per_second
        if rate is not None:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(tokens=max(1.0, rate), at=now)
            bucket.tokens = min(max(1.0, rate), bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens < 1.0:
                return True
            bucket.tokens -= 1.0
        window = self.faults.rate_limit_window
        in_window = window is None or window[0] <= now - self.started_at < window[1]
        if in_window and self._draw(self.faults.rate_limit):
            state["fault"] = "rate_limit"
            return True
        return False

    def _retry_after(self, reply: Reply) -> Reply:
        if self.retry_after is None:
            return reply
        seconds = self.retry_after
        value = str(int(seconds)) if seconds == int(seconds) else f"{seconds:g}"
        return reply.with_headers(("retry-after", value))

    def _too_many(self, kind: str, *, legacy: bool, message: str = "") -> Reply:
        error_type = "rate_limit_error" if kind == "create" or legacy else "evo_api_error"
        reply = error_reply(
            429,
            "rate_limit_exceeded",
            message or "Too many requests, please try again later",
            error_type,
            legacy=legacy,
        )
        return self._retry_after(reply)

    def _server_error(self, kind: str, *, legacy: bool) -> Reply | None:
        faults = self.faults
        probability = faults.create_errors if kind == "create" else 0.0
        if kind in _READ_KINDS:
            probability = faults.read_errors
        if not self._draw(probability):
            return None
        status = faults.error_statuses[self.fault_rng.randrange(len(faults.error_statuses))]
        code, message, error_type = _SERVER_ERRORS.get(status, _SERVER_ERRORS[500])
        reply = error_reply(status, code, message, error_type, legacy=legacy)
        return self._retry_after(reply) if status == 503 else reply

    def _damage(self, kind: str, reply: Reply, state: dict[str, Any]) -> Reply:
        if reply.status != 200:
            return reply
        faults = self.faults
        if kind == "create" and not state["replayed"] and self._draw(faults.lost_create_response):
            state["fault"] = "lost_response"
            return attrs.evolve(reply, drop=True)
        if self._draw(faults.malformed_json):
            state["fault"] = "malformed_json"
            reply = attrs.evolve(reply, body=reply.body[: max(1, len(reply.body) // 2)])
        if self._draw(faults.slow_response):
            state["fault"] = state["fault"] or "slow"
            reply = attrs.evolve(reply, delay=faults.slow_delay)
        return reply

    # -- endpoints ------------------------------------------------------------------------

    def _create(self, request: Request, key: str, now: float, state: dict[str, Any]) -> Reply:
        idempotency_key = request.headers.get("idempotency-key") if self.idempotency else None
        body = request.json()
        try:
            body = _checked_body(body, idempotency_key)
            remembered = (
                None if idempotency_key is None else self.engine.remembered(key, idempotency_key)
            )
            if remembered is not None:
                return self._replay(remembered, body, state)
            generation = self._generation(body, request.path)
            task = self.engine.create(
                generation,
                key=key,
                now=now,
                origin=request.origin,
                idempotency_key=idempotency_key,
            )
        except _Refused as refused:
            return refused.reply
        except TooManyTasks:
            return self._too_many(
                "create", legacy=False, message="Too many concurrent tasks for this key"
            )
        except InsufficientCredits:
            return error_reply(
                402,
                "insufficient_quota",
                "Insufficient quota. Please top up your account.",
                "insufficient_quota",
            )
        if generation.seconds is not None:
            self._media_seconds[task.id] = generation.seconds
        reply = json_reply(200, task_view(task, now, request.origin))
        if idempotency_key is not None:
            self.engine.remember(
                key, idempotency_key, Remembered(fingerprint(body), task.id, reply.body)
            )
        return reply

    @staticmethod
    def _replay(remembered: Remembered, body: Any, state: dict[str, Any]) -> Reply:
        if remembered.fingerprint != fingerprint(body):
            return error_reply(
                409,
                "idempotency_conflict",
                "Idempotency-Key was already used with a different request body",
                "invalid_request_error",
                param="Idempotency-Key",
            )
        state["replayed"] = True
        return Reply(200, remembered.response, headers=(("idempotency-replayed", "true"),))

    def _retired(self, name: str) -> bool:
        doc = self.catalog.get(name)
        return doc is not None and doc.archived

    def _generation(self, body: dict[str, Any], path: str) -> Generation:
        """The valid request in `body` sent to `path`, or `_Refused`: 403 for a model not
        offered (or retired), 400 for the wrong route or a body its schema refuses."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _Refused(_invalid("model", "model is required"))
        spec = self.engine.models.get(model)
        doc = self.catalog.get(model)
        retired = self.platform is not None and self.platform.retired(model)
        if (
            spec is None
            or retired
            or (doc is not None and doc.archived and not self.accept_retired)
        ):
            message = f"Token does not have access to model: {model}"
            if spec is not None and doc is not None:
                message += f" (retired: {doc.name} was taken off Evolink's docs)"
            raise _Refused(
                error_reply(
                    403, "model_access_denied", message, "invalid_request_error", param="model"
                )
            )
        kind = spec.kind if doc is None else doc.kind
        if path != kind.endpoint:
            raise _Refused(
                _invalid("model", f"{model} is a {kind.value} model: POST it to {kind.endpoint}")
            )
        allow_local = self.allow_local_callbacks
        try:
            if doc is None:
                return check_generation(body, spec, allow_local_callbacks=allow_local)
            return check_documented(body, doc, spec, allow_local_callbacks=allow_local)
        except Invalid as exc:
            raise _Refused(_invalid(exc.param, exc.message)) from None

    def _visible(self, task_id: str, key: str, now: float) -> Reply | None:
        task = self.engine.tasks.get(task_id)
        if task is None or now >= task.created + self.task_ttl:
            return error_reply(
                404,
                "task_not_found",
                "The requested task could not be found",
                "invalid_request_error",
            )
        if task.key != key:
            return error_reply(
                403,
                "permission_denied",
                "You don't have permission to access this task",
                "invalid_request_error",
            )
        return None

    def _read(self, request: Request, key: str, now: float) -> Reply:
        task_id = request.path.removeprefix("/v1/tasks/")
        if not task_id.startswith(TASK_ID_PREFIX):
            return error_reply(
                400,
                "invalid_task_id",
                f"Invalid task ID format, must start with '{TASK_ID_PREFIX}'",
                "invalid_request_error",
                param="task_id",
            )
        refusal = self._visible(task_id, key, now)
        if refusal is not None:
            return refusal
        return json_reply(200, task_view(self.engine.tasks[task_id], now, request.origin))

    def _batch(self, request: Request, key: str, now: float) -> Reply:
        body = request.json()
        ids = body.get("task_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return _invalid("task_ids", "task_ids must be a list of task ids")
        if len(ids) > MAX_BATCH_IDS:
            return _invalid("task_ids", f"at most {MAX_BATCH_IDS} task_ids per request")
        data = [
            task_view(self.engine.tasks[task_id], now, request.origin)
            for task_id in dict.fromkeys(ids)
            if self._visible(task_id, key, now) is None
        ]
        return json_reply(200, {"data": data})

    def _list(self, request: Request, key: str, now: float) -> Reply:
        params = request.params()
        try:
            page = int(params.get("page", "1"))
            page_size = int(params.get("page_size", "20"))
        except ValueError:
            return _invalid("page", "page and page_size must be integers")
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            return _invalid("page", f"page >= 1 and 1 <= page_size <= {MAX_PAGE_SIZE}")
        wanted = {name: params[name] for name in ("status", "model", "type") if name in params}
        matches = []
        for task in reversed(self.engine.tasks.values()):
            if task.key != key or now >= task.created + self.task_ttl:
                continue
            view = task_view(task, now, request.origin)
            if all(view[name] == value for name, value in wanted.items()):
                matches.append(view)
        start = (page - 1) * page_size
        return json_reply(
            200,
            {
                "data": matches[start : start + page_size],
                "total": len(matches),
                "page": page,
                "page_size": page_size,
            },
        )

    def _credits(self, key: str) -> Reply:
        ledger = self.engine.ledger
        remaining = float(ledger.available)
        return json_reply(
            200,
            {
                "success": True,
                "message": "",
                "data": {
                    "token": {
                        "remaining_credits": remaining,
                        "unlimited_credits": False,
                        "used_credits": float(ledger.charged_by(key)),
                    },
                    "user": {
                        "remaining_credits": remaining,
                        "used_credits": float(ledger.charged),
                    },
                },
            },
        )

    def _result(self, request: Request, now: float) -> Reply:
        task_id, _, name = request.path.removeprefix("/results/").partition("/")
        index_text, _, extension = name.partition(".")
        task = self.engine.tasks.get(task_id)
        if (
            task is None
            or extension != task.kind.extension
            or not index_text.isdigit()
            or int(index_text) >= task.images
            or not task.is_finished(now)
        ):
            return error_reply(404, "not_found", "No such file", "invalid_request_error")
        if now >= task.ends_at + self.result_ttl:
            return error_reply(
                410, "expired", f"This {task.kind.value} link has expired", "invalid_request_error"
            )
        seconds = self._media_seconds.get(task.id, DEFAULT_MEDIA_SECONDS)
        content = render(task.kind, task.prompt, int(index_text), size=task.size, seconds=seconds)
        return Reply(200, content, content_type=task.kind.content_type)


def _checked_body(body: Any, idempotency_key: str | None) -> dict[str, Any]:
    if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
        raise _Refused(
            _invalid(
                "Idempotency-Key", "Idempotency-Key must be 16-96 characters of [A-Za-z0-9._-]"
            )
        )
    if not isinstance(body, dict):
        raise _Refused(_invalid("body", "the request body must be a JSON object"))
    return body


class _Refused(Exception):  # noqa: N818 - carries the answer out of a helper
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _invalid(param: str, message: str) -> Reply:
    return error_reply(400, "invalid_request", message, "invalid_request_error", param=param)
