"""Manifest pieces every owned child shares, whatever owns it (TrainingJob or ExportJob)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from agentcore.api.common import ObjectMeta
from agentcore.controllers.common.config import OperatorConfig

Obj = dict[str, Any]


def controller_reference(api_version: str, kind: str, meta: ObjectMeta) -> Obj:
    """A controller reference: garbage collection deletes the child with its owner.

    Built here rather than with kopf.adopt: children are pure functions of the typed owner (unit
    tested without kopf), and adopt would also rewrite the child's name and namespace."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta.name,
        "uid": meta.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


MAX_NAME = 63  # a DNS-1123 label, and the longest label value
_DIGEST = 10


def bounded_name(base: str, suffix: str = "") -> str:
    """``base + suffix`` if it fits in 63 characters, else ``base`` cut short plus a hash of all
    of it. Cutting alone made two long owner names share one child (and one Job train for both)."""
    name = base + suffix
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:_DIGEST]
    keep = MAX_NAME - len(suffix) - _DIGEST - 1
    return f"{base[:keep].rstrip('-.')}-{digest}{suffix}"


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller (owner reference with controller: true), if any."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r.get("uid") for r in refs if r.get("controller")), None)


def role_binding(meta: Obj) -> Obj:
    """Binds the Role named like the child to the ServiceAccount named like the child."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": meta["name"]},
        "subjects": [{"kind": "ServiceAccount", "name": meta["name"], "namespace": meta["namespace"]}],
    }


def credentials_secret(meta: Obj, config: OperatorConfig) -> Obj:
    """Database and object-store access for a pod in the owner's namespace."""
    data = {k: base64.b64encode(v.encode()).decode() for k, v in config.trainer_secret_data().items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": data}
