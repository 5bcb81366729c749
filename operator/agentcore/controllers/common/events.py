"""Kubernetes Events about our resources, posted best-effort (an Event is never worth a failed
reconcile)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from agentcore.api import labels
from agentcore.kube.client import EVENTS, ApiError, KubeClient

log = logging.getLogger("agentcore.operator")
COMPONENT = labels.OPERATOR_NAME


async def post_event(
    kube: KubeClient, obj: dict[str, Any], kind: str, reason: str, message: str, now: dt.datetime
) -> None:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = obj["metadata"]
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "reason": reason[:128],
        "message": message[:1024],
        "type": kind,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
    try:
        await kube.create(EVENTS, event, meta["namespace"])
    except ApiError as exc:
        log.warning("could not post Event %s: %s", reason, exc)
