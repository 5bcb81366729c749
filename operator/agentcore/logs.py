"""One structured log schema for the operator, the API server and the trainer: JSON lines with
``timestamp`` (RFC 3339, UTC, milliseconds), ``severity`` (lower case), ``logger``, ``message``,
then the record's extra fields (kopf's object reference as ``object``). The keys are kopf's own
JSON log keys, so the operator's lines and kopf's read the same. Access log records carry an
explicit allow-list of fields: never headers, so never a bearer token.

Lines are written synchronously, as aiohttp's own access logger does. A queue and a writer thread
would keep a stalled stderr pipe off the event loop, but measured with bench/rpc.py the thread's
contention for the GIL halved get_status throughput and multiplied its p50 latency; a container
runtime drains stderr continuously, so the synchronous write is the better trade.

Access lines (one per HTTP request) skip the logging machinery when nothing but `configure`'s own
handler would see them (`write_fields`): measured with bench/rpc.py, ``Logger.info`` with its
LogRecord, formatter and handler chain cost about 50 us per request in the API server — a fifth
of a ``get_status`` — against a few for building and writing the same line directly. The line is
byte-for-byte what the formatter writes, and any other handler or filter gets the normal path.

`write_fields(..., buffered=True)` (the API server's access lines) may hold a line back for at most
`FLUSH_SECONDS` or `MAX_PENDING` lines, so one write system call carries many lines: measured with
bench/rpc.py, the write of every line (stderr is line-buffered) was a tenth of a ``get_status``'s
CPU. Any other record, a flush or a close writes the held lines first, so lines keep their order;
the API server calls `flush_pending` every `FLUSH_SECONDS` for an idle period, and logging's exit
hook flushes at shutdown. A SIGKILL loses at most those lines, as nginx's buffered access log does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from typing import Any, cast

import pydantic_core

ACCESS_LOGGER = "agentcore.api.access"
# LogRecord attributes that are not user fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_ENCODER = json.JSONEncoder(default=str)


def dumps(value: Any) -> str:
    """One compact JSON line: pydantic-core's serializer (Rust, a quarter of the json module's time
    for an access line, measured), anything else str(); what it refuses (a lone surrogate) goes
    through the json module, whose output is JSON too."""
    try:
        return pydantic_core.to_json(value, fallback=str).decode()
    except (ValueError, TypeError):  # PydanticSerializationError is a ValueError
        return _ENCODER.encode(value)


_KOPF = ("k8s_", "settings")  # kopf's record attributes: the reference is kept as `object`


FLUSH_SECONDS = 0.25
MAX_PENDING = 256


class _Handler(logging.StreamHandler):
    """`configure`'s handler: it also writes the lines `write_fields` holds back (`pending`)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.pending: list[str] = []
        self.oldest = 0.0  # time.monotonic() of pending[0]

    def write_pending(self) -> None:
        """Called with the lock held."""
        if not self.pending:
            return
        text = self.terminator.join(self.pending) + self.terminator
        self.pending.clear()
        try:
            self.stream.write(text)
            super().flush()
        except (OSError, ValueError):  # as logging does: a broken log stream never fails the request
            if logging.raiseExceptions:
                print("agentcore: cannot write access log lines", file=sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        if self.pending:  # (handle() holds the lock)
            self.write_pending()
        super().emit(record)

    def flush(self) -> None:
        with self.lock or contextlib.nullcontext():
            self.write_pending()
            super().flush()


_handler: _Handler | None = None  # the one `configure` installed


class JsonFormatter(logging.Formatter):
    _second = -1
    _stamp = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # strftime once per second, not once per line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"

    def head(self, created: float, level: str, logger: str, message: str) -> dict[str, Any]:
        return {"timestamp": self._time(created), "severity": level, "logger": logger, "message": message}

    def format(self, record: logging.LogRecord) -> str:
        out = self.head(record.created, record.levelname.lower(), record.name, record.getMessage())
        extra = vars(record)
        if isinstance(extra.get("k8s_ref"), dict):  # kopf's per-object loggers
            out["object"] = extra["k8s_ref"]
        out.update({k: v for k, v in extra.items() if k not in _STANDARD and not k.startswith(_KOPF)})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return dumps(out)


def configure(level: str = "INFO", stream: Any = None) -> None:
    """JSON lines on ``stream`` (default stderr) for every logger of the process."""
    global _handler
    handler = _handler = _Handler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    # Per-record lookups the JSON lines do not use (the "Optimization" section of the logging HOWTO).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _direct(logger: logging.Logger) -> _Handler | None:
    """`configure`'s handler, if it alone (unfiltered) would receive the logger's INFO records."""
    handler = _handler
    if handler is None or handler.filters or handler.level > logging.INFO:
        return None
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters or node.disabled or (node.handlers and node.handlers != [handler]):
            return None
        if node.handlers or not node.propagate:
            return handler if node.handlers == [handler] else None
        node = node.parent if isinstance(node.parent, logging.Logger) else None
    return None


def write_fields(
    logger: logging.Logger, message: str, fields: dict[str, Any], *, buffered: bool = False
) -> None:
    """``logger.info(message, extra=fields)``, written as the same JSON line without a LogRecord
    when only `configure`'s handler would see it. ``fields`` must be JSON-able or str()-able.
    `buffered`: the line may wait (see the module docstring)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _direct(logger)
    if handler is None:
        logger.info("%s", message, extra=fields)
        return
    formatter = cast(JsonFormatter, handler.formatter)
    line = dumps({**formatter.head(time.time(), "info", logger.name, message), **fields})
    with handler.lock or contextlib.nullcontext():
        handler.pending.append(line)
        now = time.monotonic()
        if len(handler.pending) == 1:
            handler.oldest = now
        if not buffered or len(handler.pending) >= MAX_PENDING or now - handler.oldest >= FLUSH_SECONDS:
            handler.write_pending()


def flush_pending() -> None:
    """Write the lines `write_fields` holds back (the API server calls it every FLUSH_SECONDS)."""
    handler = _handler
    if handler is not None and handler.pending:
        handler.flush()
