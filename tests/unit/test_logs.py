"""The one log schema of the operator, the API server and the trainer."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from agentcore import logs
from agentcore.logs import JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("kopf.objects", logging.WARNING, __file__, 1, "Patching %s", ("status",), None)
    rec.__dict__.update(extra)
    return rec


def test_schema_keys_and_kopf_object_reference() -> None:
    ref = {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "name": "a",
        "namespace": "n",
    }
    line = json.loads(JsonFormatter().format(record(k8s_ref=ref, k8s_skip=False, settings=object())))
    assert list(line)[:4] == ["timestamp", "severity", "logger", "message"]
    assert line["severity"] == "warning" and line["message"] == "Patching status"
    assert line["object"] == ref
    assert not any(key.startswith("k8s_") or key == "settings" for key in line)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level, direct = root.handlers[:], root.level, logs._handler
    yield
    root.handlers[:], logs._handler = handlers, direct
    root.setLevel(level)


FIELDS = {"request_id": "r1", "status": 200, "duration_ms": 1.5, "rpc": ["training.get_status"], "sub": None}


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_access_lines_written_directly_match_the_formatter() -> None:
    stream = io.StringIO()
    logs.configure("INFO", stream=stream)
    logger = logging.getLogger(f"agentcore.test.direct{id(stream)}")
    assert logs._direct(logger) is not None  # only configure's handler: the fast path is taken
    logs.write_fields(logger, "POST /api/v1/jsonrpc", FIELDS)
    logger.info("%s", "POST /api/v1/jsonrpc", extra=FIELDS)
    direct, formatted = _lines(stream)
    assert direct.pop("timestamp") and formatted.pop("timestamp")
    assert direct == formatted
    assert list(direct) == ["severity", "logger", "message", *FIELDS]


def test_access_lines_reach_other_handlers_and_respect_levels() -> None:
    stream = io.StringIO()
    logs.configure("INFO", stream=stream)
    logger = logging.getLogger(f"agentcore.test.other{id(stream)}")
    seen: list[logging.LogRecord] = []
    extra = logging.Handler()
    extra.emit = seen.append  # type: ignore[method-assign]
    logger.addHandler(extra)
    try:
        assert logs._direct(logger) is None
        logs.write_fields(logger, "GET /healthz", {"status": 200})
        assert len(seen) == 1 and seen[0].status == 200  # type: ignore[attr-defined]
        assert _lines(stream)[0]["status"] == 200  # and still to the configured stream
        logger.setLevel(logging.WARNING)
        logs.write_fields(logger, "GET /healthz", {"status": 200})
        assert len(seen) == 1 and len(_lines(stream)) == 1
    finally:
        logger.removeHandler(extra)


def _direct_logger(stream: io.StringIO) -> logging.Logger:
    logs.configure("INFO", stream=stream)
    logger = logging.getLogger(f"agentcore.test.buffered{id(stream)}")
    assert logs._direct(logger) is not None
    return logger


def test_buffered_lines_wait_for_a_flush_and_keep_their_order() -> None:
    stream = io.StringIO()
    logger = _direct_logger(stream)
    logs.write_fields(logger, "first", {"n": 1}, buffered=True)
    logs.write_fields(logger, "second", {"n": 2}, buffered=True)
    assert stream.getvalue() == ""  # held back
    logger.warning("a normal record")  # writes the held lines first
    assert [line["message"] for line in _lines(stream)] == ["first", "second", "a normal record"]
    logs.write_fields(logger, "third", {"n": 3}, buffered=True)
    logs.flush_pending()  # what the API server does every FLUSH_SECONDS
    assert _lines(stream)[-1]["message"] == "third"
    logs.write_fields(logger, "unbuffered", {"n": 4})
    assert _lines(stream)[-1]["message"] == "unbuffered"  # written at once


def test_buffered_lines_are_written_when_too_many_or_too_old() -> None:
    stream = io.StringIO()
    logger = _direct_logger(stream)
    for i in range(logs.MAX_PENDING):
        logs.write_fields(logger, "line", {"n": i}, buffered=True)
    assert len(_lines(stream)) == logs.MAX_PENDING  # the last one filled the buffer
    logs.write_fields(logger, "old", {}, buffered=True)
    assert logs._handler is not None
    logs._handler.oldest -= logs.FLUSH_SECONDS  # the held line has waited long enough
    logs.write_fields(logger, "new", {}, buffered=True)
    assert [line["message"] for line in _lines(stream)[-2:]] == ["old", "new"]


def test_held_lines_are_written_at_exit() -> None:
    stream = io.StringIO()
    logger = _direct_logger(stream)
    logs.write_fields(logger, "last words", {}, buffered=True)
    # logging.shutdown, the interpreter's exit hook, flushes every handler of this list.
    handler = logs._handler
    assert handler is not None and any(ref() is handler for ref in logging._handlerList)  # type: ignore[attr-defined]
    handler.flush()
    assert _lines(stream)[-1]["message"] == "last words"


@pytest.mark.parametrize(
    "value", ["plain", "ünï ☃ \x00 \"q\"", "\ud800 lone surrogate", 2**80, None, True, 1.5, float("nan"),
              ["a", 1], {"k": (1, "x")}, object()],
)  # fmt: skip
def test_every_value_makes_one_json_line(value: object) -> None:
    line = logs.dumps({"message": "m", "value": value})
    assert "\n" not in line and json.loads(line)["message"] == "m"
