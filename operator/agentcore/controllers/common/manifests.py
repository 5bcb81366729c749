"""Manifest pieces every owned child shares, whatever owns it (TrainingJob or ExportJob)."""

from __future__ import annotations

import base64
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
