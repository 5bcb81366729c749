"""Error codes of the Training API and the exception that method handlers raise.

The spec's table (``docs/spec/training-api-reference.md``) plus four server-defined codes, all within
JSON-RPC's range for implementation-defined server errors (-32000 … -32099):

=======  ======================  ===========================================================  ====
code     name                    when                                                         HTTP
=======  ======================  ===========================================================  ====
-32700   Parse error             the body is not JSON (also NaN/Infinity, numbers out of      200
                                 range, invalid UTF-8, nesting past the parser's limit)
-32600   Invalid Request         not a JSON-RPC 2.0 request object, empty or oversized        200
                                 batch, nesting deeper than the configured depth;
                                 ``training.start_grpo`` with an invalid ``config``
                                 ("Invalid training configuration", ``data.field`` relative
                                 to ``config`` as in the spec's example, e.g. n_iterations)
                                 body larger than the configured limit                        413
-32601   Method not found        unknown method                                               200
-32602   Invalid params          missing or wrongly typed parameter; ``data.field`` names      200
                                 the snake_case path (``job_id``, ``config.n_iterations``),
                                 ``data.error`` the rule that failed
-32603   Internal error          an unexpected failure; the message is generic and the        200
                                 traceback is only logged server-side
-32001   Not found               no such job in the caller's namespaces (another tenant's     200
                                 job is "not found" too, so existence does not leak)
-32003   Unauthorized            bearer token missing, malformed, badly signed, expired,      401
                                 wrong audience; no detail is returned
-32004   Forbidden               the token lacks the method's permission, or names a          200
                                 namespace it may not use
-32029   Rate limit exceeded     the caller's budget for the method is used up;               429
                                 ``data.retry_after`` (seconds) and a Retry-After header
-40001   Budget exceeded         ``max_budget_usd`` cannot cover one iteration's estimated    200
                                 cost
-40002   Validation failed       training / evaluation data invalid (fewer than 100           200
                                 queries, a query without ``query`` …), too large to store
-40003   Cannot cancel           the job is already completed, failed or cancelled            200
-40004   Evaluation failed       the evaluation backend failed or is not configured           200
-40005   Export limit exceeded   ``limit`` above 10,000                                       200
=======  ======================  ===========================================================  ====
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_snake
from pydantic_core import ErrorDetails

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = -32001
UNAUTHORIZED = -32003
FORBIDDEN = -32004
RATE_LIMITED = -32029
BUDGET_EXCEEDED = -40001
VALIDATION_FAILED = -40002
CANNOT_CANCEL = -40003
EVALUATION_FAILED = -40004
EXPORT_LIMIT_EXCEEDED = -40005

MESSAGES: dict[int, str] = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
    NOT_FOUND: "Not found",
    UNAUTHORIZED: "Unauthorized",
    FORBIDDEN: "Forbidden",
    RATE_LIMITED: "Rate limit exceeded",
    BUDGET_EXCEEDED: "Budget exceeded",
    VALIDATION_FAILED: "Validation failed",
    CANNOT_CANCEL: "Cannot cancel",
    EVALUATION_FAILED: "Evaluation failed",
    EXPORT_LIMIT_EXCEEDED: "Export limit exceeded",
}

# Enough to locate every problem in a typical request, bounded so a request with 10,000 bad
# queries does not produce a 10,000-entry error.
MAX_REPORTED_ERRORS = 20


class RpcError(Exception):
    """A JSON-RPC error object; ``http_status`` is only used when it answers a whole request."""

    def __init__(
        self,
        code: int,
        message: str | None = None,
        data: dict[str, Any] | None = None,
        http_status: int = 200,
    ) -> None:
        self.code = code
        self.message = message or MESSAGES.get(code, "Error")
        self.data = data
        self.http_status = http_status
        super().__init__(f"{code} {self.message}")

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def not_found(what: str = "Job") -> RpcError:
    return RpcError(NOT_FOUND, f"{what} not found")


def field_path(loc: Sequence[int | str]) -> str:
    """pydantic's error location as the API spells it: ``training_data[3].query``.

    Locations carry the key the caller used, which may be a camelCase alias; the API names fields
    in snake_case, so aliases are converted back.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + to_snake(part)
    return out


def from_validation_error(
    exc: ValidationError,
    model: type[BaseModel],
    code: int = INVALID_PARAMS,
    message: str | None = None,
    strip: int = 0,
) -> RpcError:
    """-32602 (or ``code``) for a failed validation of ``model``; see :func:`from_error_details`."""
    details = exc.errors(include_url=False, include_input=False)
    return from_error_details(details, model, code, message, strip)


def from_error_details(
    details: Sequence[ErrorDetails],
    model: type[BaseModel],
    code: int = INVALID_PARAMS,
    message: str | None = None,
    strip: int = 0,
) -> RpcError:
    """``data.field``/``data.error`` of the first problem, and all of them (bounded) under
    ``data.errors`` when there are several. ``strip`` drops leading location parts (the spec
    reports config errors relative to ``config``). Input values are never echoed: they can be
    large or sensitive."""
    # Bounded: field names can come from the caller (unknown keys), and are echoed back.
    problems = [
        {
            "field": (field_path(err["loc"][strip:]) or field_path(err["loc"]))[:200],
            "error": rule(err, model)[:500],
        }
        for err in details
    ]
    data: dict[str, Any] = dict(problems[0]) if problems else {}
    if len(problems) > 1:
        data["errors"] = problems[:MAX_REPORTED_ERRORS]
    return RpcError(code, message, data)


def rule(err: ErrorDetails, model: type[BaseModel]) -> str:
    """A short statement of the rule that failed; ranges read as in the spec ("Must be between 1
    and 10000") when the field declares both bounds."""
    ctx = err.get("ctx") or {}
    if err["type"] == "too_short" and "min_length" in ctx:
        return f"Must contain at least {ctx['min_length']} items (got {ctx.get('actual_length', 'fewer')})"
    if err["type"] in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        bounds = _bounds(model, err["loc"])
        if "ge" in bounds and "le" in bounds:
            return f"Must be between {bounds['ge']} and {bounds['le']}"
        for key, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if key in ctx:
                return f"Must be {symbol} {ctx[key]}"
    return err["msg"]


def _bounds(model: type[BaseModel], loc: Sequence[int | str]) -> dict[str, Any]:
    """The numeric bounds declared on the field at ``loc``, following nested models and lists."""
    current: Any = model
    bounds: dict[str, Any] = {}
    for part in loc:
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else None
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return {}
        field = current.model_fields.get(part) or current.model_fields.get(to_snake(part))
        if field is None:
            return {}
        bounds = {
            key: getattr(meta, key) for meta in field.metadata for key in ("ge", "le") if hasattr(meta, key)
        }
        current = _unwrap_optional(field.annotation)
    return bounds


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation
