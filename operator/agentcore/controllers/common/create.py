"""Creating a resource's children: idempotent, so a reconcile interrupted halfway can run again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentcore.controllers.common.manifests import controller_uid
from agentcore.kube.client import (
    JOBS,
    ROLEBINDINGS,
    ROLES,
    SECRETS,
    SERVICEACCOUNTS,
    ApiError,
    KubeClient,
    Resource,
)

Obj = dict[str, Any]


class ChildConflict(Exception):
    """A child's name is taken by an object this owner does not control; the owner must fail
    (adopting it would hand this job's work, or access, to someone else's object)."""


async def create_or_get(kube: KubeClient, res: Resource, manifest: Obj, ns: str) -> Obj:
    """Create the object; if it exists already (409), the existing one — only if it has the same
    controller (a retry of our own create), else ChildConflict."""
    try:
        return await kube.create(res, manifest, ns)
    except ApiError as exc:
        if exc.status != 409:
            raise
    name = manifest["metadata"]["name"]
    existing = await kube.get(res, name, ns)
    owner = controller_uid(manifest)
    if owner is None or controller_uid(existing) != owner:
        raise ChildConflict(
            f"{res.plural} {name!r} already exists and is not owned by this resource; "
            "delete or rename it, then recreate this resource"
        )
    return existing


ACCESS_KINDS = {
    "ServiceAccount": SERVICEACCOUNTS,
    "Role": ROLES,
    "RoleBinding": ROLEBINDINGS,
    "Secret": SECRETS,
}


async def create_workload(kube: KubeClient, ns: str, access: Iterable[Obj], job: Obj) -> Obj:
    """A pod's identity and access first (ServiceAccount, Role, RoleBinding and, for exporters, a
    Secret, in the order given), then its batch/v1 Job; returns the Job as the apiserver holds it."""
    for manifest in access:
        await create_or_get(kube, ACCESS_KINDS[manifest["kind"]], manifest, ns)
    return await create_or_get(kube, JOBS, job, ns)
