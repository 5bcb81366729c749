"""JSON-RPC 2.0 framing: parsing a body into calls and building response objects.

Stricter than ``json.loads`` where Python is lenient: NaN/Infinity and numbers that overflow a
double are parse errors (they are not JSON and cannot be echoed back as JSON), and nesting deeper
than a configured depth is an invalid request, so that no later step (validation, serialisation,
the apiserver) meets a structure it cannot handle.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from agentcore.server.jsonrpc.errors import INVALID_REQUEST, PARSE_ERROR, RpcError

JSONRPC = "2.0"
RequestId = str | int | float | None


class Call(NamedTuple):  # NamedTuples: made for every request, and cheaper than frozen dataclasses
    """One well-formed request object of a body."""

    method: str
    params: dict[str, Any] | list[Any] | None
    id: RequestId
    notification: bool


class BadEntry(NamedTuple):
    """A request object that is not valid JSON-RPC: answered with ``error`` (never a notification)."""

    error: RpcError
    id: RequestId = None


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:32]}")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _int(text: str) -> int:
    return int(text)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return dict(pairs)


_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_reject_constant)
# For bodies parsed in a worker thread: the C scanner holds the GIL between its calls into Python,
# so a thread alone froze the event loop for a whole 15 MiB body of integers (issue 12, the
# red-team suite). A Python callback for every number and object gives the interpreter a point
# to switch threads at; floats already had one.
_YIELDING_DECODER = json.JSONDecoder(
    parse_float=_finite_float, parse_int=_int, parse_constant=_reject_constant, object_pairs_hook=_object
)
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def parse_json(body: bytes, max_depth: int, threaded: bool = False) -> Any:
    """The decoded body (UTF-8, as RFC 8259 requires), or RpcError -32700 / -32600 (too deep).
    `threaded`: parsing in a worker thread, which must let the event loop's thread run."""
    try:
        value = (_YIELDING_DECODER if threaded else _DECODER).decode(body.decode("utf-8"))
    except RecursionError:  # valid JSON, only deeper than the parser goes: the same rule as below
        raise _too_deep(max_depth) from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise RpcError(PARSE_ERROR, "Parse error", {"error": _parse_reason(exc)}) from None
    # Nesting needs at least as many brackets as levels: most bodies skip the walk.
    if body.count(b"[") + body.count(b"{") > max_depth and nesting_exceeds(value, max_depth):
        raise _too_deep(max_depth)
    return value


def _too_deep(max_depth: int) -> RpcError:
    return RpcError(
        INVALID_REQUEST, "Invalid Request", {"error": f"JSON nested deeper than {max_depth} levels"}
    )


def _parse_reason(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "body is not valid UTF-8"
    return str(exc)[:200]


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Iterative (no recursion) check that no container sits deeper than ``limit``."""
    stack: list[tuple[dict[str, Any] | list[Any], int]] = []
    if isinstance(value, dict | list):
        stack.append((value, 1))
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _valid_id(value: Any) -> bool:
    # bool is an int subclass, but JSON-RPC ids are strings, numbers or null.
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def to_entry(obj: Any) -> Call | BadEntry:
    """Check one request object of a body against JSON-RPC 2.0."""
    if not isinstance(obj, dict):
        return BadEntry(
            RpcError(INVALID_REQUEST, "Invalid Request", {"error": "a request must be a JSON object"})
        )
    request_id = obj.get("id")
    reply_id = request_id if _valid_id(request_id) else None

    def bad(reason: str) -> BadEntry:
        return BadEntry(RpcError(INVALID_REQUEST, "Invalid Request", {"error": reason}), reply_id)

    if obj.get("jsonrpc") != JSONRPC:
        return bad('"jsonrpc" must be exactly "2.0"')
    method = obj.get("method")
    if not isinstance(method, str) or not method:
        return bad('"method" must be a non-empty string')
    params = obj.get("params")
    if params is not None and not isinstance(params, dict | list):
        return bad('"params" must be an object or an array')
    if not _valid_id(request_id):
        return bad('"id" must be a string, a number or null')
    return Call(method, params, request_id, notification="id" not in obj)


def success(request_id: RequestId, result: Any) -> dict[str, Any]:
    return {"jsonrpc": JSONRPC, "result": result, "id": request_id}


def failure(request_id: RequestId, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": JSONRPC, "error": error.to_json(), "id": request_id}


class Encoded:
    """A result whose JSON is already known: computed once per change, served many times."""

    __slots__ = ("json",)

    def __init__(self, json: bytes) -> None:
        self.json = json


def encode_json(value: Any) -> bytes:
    # ensure_ascii (the default) keeps lone surrogates from the input, legal in JSON strings, encodable.
    return _ENCODER.encode(value).encode()


def dumps(payload: Any) -> bytes:
    """A response (or a batch of them) as JSON, splicing in pre-encoded results."""
    if isinstance(payload, list):
        return b"[" + b",".join(map(dumps, payload)) + b"]"
    result = payload.get("result") if isinstance(payload, dict) else None
    if isinstance(result, Encoded):
        request_id = payload["id"]
        # An integer id (the usual kind) is its own JSON; the encoder's call costs more than the rest.
        text = int.__repr__(request_id).encode() if type(request_id) is int else encode_json(request_id)
        return b'{"jsonrpc":"2.0","result":' + result.json + b',"id":' + text + b"}"
    return encode_json(payload)
