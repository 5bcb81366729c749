"""Structured (JSON lines) logging. Access log records carry an explicit allow-list of fields:
never headers, so never a bearer token.

Records are handed to a queue and formatted and written by a background thread: writing to a
pipe or a slow terminal must not block the event loop, and formatting is the costliest part of
logging a request.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any

ACCESS_LOGGER = "agentcore.api.access"
# LogRecord attributes that are not user fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


_ENCODER = json.JSONEncoder(default=str)


class JsonFormatter(logging.Formatter):
    _second = -1
    _stamp = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # strftime once per second, not once per line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return _ENCODER.encode(out)


class _DeferredQueueHandler(logging.handlers.QueueHandler):
    """Enqueues the record itself; the listener's handler formats it (off the event loop)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.exc_info:  # tracebacks reference frames: render them now, while they exist
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


def configure(level: str = "INFO", stream: Any = None) -> logging.handlers.QueueListener:
    """JSON lines on ``stream`` (default stderr) through a background writer thread."""
    target = logging.StreamHandler(stream or sys.stderr)
    target.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, target)
    listener.start()
    atexit.register(_stop, listener)  # flush what is queued on exit
    # Per-record lookups the JSON lines do not use (the "Optimization" section of the logging HOWTO).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [_DeferredQueueHandler(records)]
    root.setLevel(level.upper())
    return listener


def _stop(listener: logging.handlers.QueueListener) -> None:
    if getattr(listener, "_thread", None) is not None:
        listener.stop()
