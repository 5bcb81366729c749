"""One structured log schema for the operator, the API server and the trainer: JSON lines with
``timestamp`` (RFC 3339, UTC, milliseconds), ``severity`` (lower case), ``logger``, ``message``,
then the record's extra fields (kopf's object reference as ``object``). The keys are kopf's own
JSON log keys, so the operator's lines and kopf's read the same. Access log records carry an
explicit allow-list of fields: never headers, so never a bearer token.

Lines are written synchronously, as aiohttp's own access logger does. A queue and a writer thread
would keep a stalled stderr pipe off the event loop, but measured with bench/rpc.py the thread's
contention for the GIL halved get_status throughput and multiplied its p50 latency; a container
runtime drains stderr continuously, so the synchronous write is the better trade.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

ACCESS_LOGGER = "agentcore.api.access"
# LogRecord attributes that are not user fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_ENCODER = json.JSONEncoder(default=str)
_KOPF = ("k8s_", "settings")  # kopf's record attributes: the reference is kept as `object`


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
            "timestamp": self._time(record.created),
            "severity": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = vars(record)
        if isinstance(extra.get("k8s_ref"), dict):  # kopf's per-object loggers
            out["object"] = extra["k8s_ref"]
        out.update({k: v for k, v in extra.items() if k not in _STANDARD and not k.startswith(_KOPF)})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(out)


def configure(level: str = "INFO", stream: Any = None) -> None:
    """JSON lines on ``stream`` (default stderr) for every logger of the process."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    # Per-record lookups the JSON lines do not use (the "Optimization" section of the logging HOWTO).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
