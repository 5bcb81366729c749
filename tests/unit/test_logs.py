"""The one log schema of the operator, the API server and the trainer."""

from __future__ import annotations

import json
import logging

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
