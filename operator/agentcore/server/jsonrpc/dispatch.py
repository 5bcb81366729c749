"""JSON-RPC 2.0 dispatch: a body in, the response body out, with per-entry rate limiting,
permission checks, parameter validation and error containment.

Order of checks for each request object: well-formed (-32600) → rate limit of the caller for that
method (-32029) → method exists (-32601) → permission (-32004) → parameters (-32602 or the
method's own mapping) → handler. Batch entries are checked in order, then run concurrently;
responses keep the batch's order. Notifications are executed but never answered, not even with
an error; a body of only notifications gets HTTP 204 and no body.

Nothing escapes as a traceback: an unexpected exception becomes -32603 with a generic message and
is logged with the HTTP request id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from agentcore.auth.tokens import Principal
from agentcore.server.jsonrpc import errors
from agentcore.server.jsonrpc.errors import RpcError
from agentcore.server.jsonrpc.protocol import BadEntry, Call, dumps, failure, parse_json, success, to_entry
from agentcore.server.ratelimit import DEFAULT_BUCKET, Decision, RateLimiter

log = logging.getLogger(__name__)

# Bodies above this are parsed in a worker thread so a 16 MiB upload does not stall other callers.
THREADED_PARSE_BYTES = 256 << 10


class CallContext(NamedTuple):  # made for every request: cheaper than a frozen dataclass
    principal: Principal
    request_id: str


Handler = Callable[[CallContext, Any], Awaitable[Any]]
Observer = Callable[[str, str, float], None]


@dataclass(frozen=True)
class Method:
    name: str
    params: type[BaseModel]
    handler: Handler
    summary: str = ""
    permission: str | None = None
    result: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    # Maps a ValidationError to the method's own error (start_grpo: -32600 / -40002); default -32602.
    on_invalid: Callable[[ValidationError], RpcError] | None = None
    # Validate in a worker thread: for parameters that can be megabytes (training data).
    heavy_params: bool = False


class Outcome(NamedTuple):
    body: bytes | None  # None: nothing to answer (only notifications)
    status: int
    rate: Decision | None
    methods: list[str]


class Dispatcher:
    def __init__(
        self,
        methods: Iterable[Method],
        limiter: RateLimiter,
        max_batch: int = 100,
        max_depth: int = 64,
        observe: Observer | None = None,
    ) -> None:
        self.methods = {m.name: m for m in methods}
        self.limiter = limiter
        self.max_batch = max_batch
        self.max_depth = max_depth
        self._observe = observe or (lambda method, code, seconds: None)

    async def handle(self, body: bytes, principal: Principal, request_id: str) -> Outcome:
        try:
            if len(body) > THREADED_PARSE_BYTES:
                payload = await asyncio.to_thread(parse_json, body, self.max_depth, True)
            else:
                payload = parse_json(body, self.max_depth)
        except RpcError as err:
            return await self._whole_request_error(err, principal)
        if not isinstance(payload, list):
            return await self._run_one(to_entry(payload), principal, request_id)
        if not payload:
            return await self._whole_request_error(
                RpcError(errors.INVALID_REQUEST, data={"error": "empty batch"}), principal
            )
        if len(payload) > self.max_batch:
            too_many = RpcError(
                errors.INVALID_REQUEST, data={"error": f"batch larger than {self.max_batch} requests"}
            )
            return await self._whole_request_error(too_many, principal)
        return await self._run_batch([to_entry(item) for item in payload], principal, request_id)

    async def _whole_request_error(self, err: RpcError, principal: Principal) -> Outcome:
        decision = await self.limiter.hit(principal.sub, DEFAULT_BUCKET)
        if not decision.allowed:
            err = rate_limited(decision)
        self._observe("invalid", str(err.code), 0.0)
        return Outcome(dumps(failure(None, err)), err.http_status, decision, ["invalid"])

    async def _run_one(self, entry: Call | BadEntry, principal: Principal, request_id: str) -> Outcome:
        """A body that is one request object (not a batch): the common case, without the batch's
        bookkeeping."""
        method, decision = await self._admit(entry, principal)
        reply = await self._answer(entry, method, decision, CallContext(principal, request_id))
        status = 200 if decision.allowed else 429
        labels = [self._label(entry)]
        if reply is None:
            return Outcome(None, 204 if status == 200 else status, decision, labels)
        return Outcome(self._encode(reply, request_id), status, decision, labels)

    async def _admit(self, entry: Call | BadEntry, principal: Principal) -> tuple[Method | None, Decision]:
        """The entry's method (None: unknown or not a call) and the caller's rate-limit decision
        for that method's bucket."""
        method = self.methods.get(entry.method) if isinstance(entry, Call) else None
        return method, await self.limiter.hit(
            principal.sub, self.limiter.bucket(method.name if method else None)
        )

    def _encode(self, payload: Any, request_id: str) -> bytes:
        try:
            return dumps(payload)
        except (TypeError, ValueError):
            log.exception("request %s: result is not JSON-serialisable", request_id)
            return dumps(failure(None, RpcError(errors.INTERNAL_ERROR)))

    async def _run_batch(
        self, entries: list[Call | BadEntry], principal: Principal, request_id: str
    ) -> Outcome:
        ctx = CallContext(principal, request_id)
        work: list[Awaitable[dict[str, Any] | None]] = []
        decisions: list[Decision] = []
        for entry in entries:
            method, decision = await self._admit(entry, principal)
            decisions.append(decision)
            work.append(self._answer(entry, method, decision, ctx))
        # A batch of one is awaited directly: gather would wrap it in a task.
        answers = [await work[0]] if len(work) == 1 else await asyncio.gather(*work)
        replies = [a for a in answers if a is not None]
        labels = [self._label(e) for e in entries]
        limited = [d for d in decisions if not d.allowed]
        shown = limited[0] if limited else min(decisions, key=lambda d: d.remaining)
        # HTTP 429 when the request (every entry of a batch) was refused for its rate limit.
        status = 429 if len(limited) == len(decisions) else 200
        if not replies:
            return Outcome(None, 204 if status == 200 else status, shown, labels)
        return Outcome(self._encode(replies, request_id), status, shown, labels)

    def _label(self, entry: Call | BadEntry) -> str:
        # Metrics labels must stay bounded: unknown method names are not echoed into them.
        if isinstance(entry, BadEntry):
            return "invalid"
        return entry.method if entry.method in self.methods else "unknown"

    async def _answer(
        self, entry: Call | BadEntry, method: Method | None, decision: Decision, ctx: CallContext
    ) -> dict[str, Any] | None:
        started = time.perf_counter()
        label = self._label(entry)
        if isinstance(entry, BadEntry):
            self._observe(label, str(entry.error.code), 0.0)
            return failure(entry.id, entry.error)
        try:
            if not decision.allowed:
                raise rate_limited(decision)
            result = await self._call(entry, method, ctx)
            code = "ok"
            reply = success(entry.id, result)
        except RpcError as err:
            code = str(err.code)
            reply = failure(entry.id, err)
        except Exception:
            log.exception("request %s: %s failed", ctx.request_id, label)
            code = str(errors.INTERNAL_ERROR)
            reply = failure(entry.id, RpcError(errors.INTERNAL_ERROR, "Internal error"))
        self._observe(label, code, time.perf_counter() - started)
        return None if entry.notification else reply

    async def _call(self, call: Call, method: Method | None, ctx: CallContext) -> Any:
        if method is None:
            raise RpcError(errors.METHOD_NOT_FOUND, data={"method": call.method[:100]})
        if method.permission and not ctx.principal.has(method.permission):
            raise RpcError(
                errors.FORBIDDEN,
                f"Forbidden: this method needs the {method.permission} permission",
                {"permission": method.permission},
            )
        if method.heavy_params:
            params = await asyncio.to_thread(_params, method, call.params)
        else:
            params = _params(method, call.params)
        return await method.handler(ctx, params)


def _params(method: Method, raw: dict[str, Any] | list[Any] | None) -> BaseModel:
    if isinstance(raw, list):
        raise RpcError(errors.INVALID_PARAMS, data={"error": "params must be an object (named parameters)"})
    try:
        return method.params.model_validate(raw or {})
    except ValidationError as exc:
        if method.on_invalid is not None:
            raise method.on_invalid(exc) from None
        raise errors.from_validation_error(exc, method.params) from None


def rate_limited(decision: Decision) -> RpcError:
    retry_after = decision.retry_after_seconds
    return RpcError(
        errors.RATE_LIMITED,
        f"Rate limit exceeded: {decision.limit} requests per window; retry after {retry_after}s",
        {"retry_after": retry_after, "limit": decision.limit},
        http_status=429,
    )
