"""Kubernetes Events about our resources.

`post_event` is best-effort (an Event is never worth a failed reconcile). `post_event_once` is for
Events that must exist exactly once: its name is derived from (object uid, event key), so posting
it again, e.g. after a crash between the post and recording it, is a 409 that changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

from agentcore.api import labels
from agentcore.kube.client import EVENTS, ApiError, KubeClient

log = logging.getLogger("agentcore.operator")
COMPONENT = labels.OPERATOR_NAME
Obj = dict[str, Any]


def involved_object(api_version: str, kind: str, name: str, namespace: str, uid: str) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "name": name, "namespace": namespace, "uid": uid}


def event_name(involved: Obj, key: str) -> str:
    """Deterministic Event name: <object>.<16 hex digits of sha256(uid|key)> (a DNS subdomain)."""
    digest = hashlib.sha256(f"{involved['uid']}|{key}".encode()).hexdigest()[:16]
    return f"{involved['name'][:200]}.{digest}"


def _event(involved: Obj, metadata: Obj, kind: str, reason: str, message: str, now: dt.datetime) -> Obj:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {**metadata, "namespace": involved["namespace"]},
        "involvedObject": involved,
        "reason": reason[:128],
        "message": message[:1024],
        "type": kind,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def post_event(
    kube: KubeClient, obj: dict[str, Any], kind: str, reason: str, message: str, now: dt.datetime
) -> None:
    meta = obj["metadata"]
    involved = involved_object(obj["apiVersion"], obj["kind"], meta["name"], meta["namespace"], meta["uid"])
    event = _event(involved, {"generateName": f"{meta['name']}."}, kind, reason, message, now)
    try:
        await kube.create(EVENTS, event, meta["namespace"])
    except ApiError as exc:
        log.warning("could not post Event %s: %s", reason, exc)


async def post_event_once(
    kube: KubeClient, involved: Obj, key: str, kind: str, reason: str, message: str, now: dt.datetime
) -> None:
    """Post the Event named after (uid, key) unless it exists; other API errors are raised, so the
    caller does not record as posted an Event that is not there."""
    event = _event(involved, {"name": event_name(involved, key)}, kind, reason, message, now)
    try:
        await kube.create(EVENTS, event, involved["namespace"])
    except ApiError as exc:
        if exc.status != 409:
            raise
