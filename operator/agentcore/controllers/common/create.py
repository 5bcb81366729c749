"""Creating a resource's children: idempotent, so a reconcile interrupted halfway can run again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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


async def create_or_get(kube: KubeClient, res: Resource, manifest: Obj, ns: str) -> Obj:
    """Create the object; if it exists already (409), the existing one."""
    try:
        return await kube.create(res, manifest, ns)
    except ApiError as exc:
        if exc.status != 409:
            raise
        return await kube.get(res, manifest["metadata"]["name"], ns)


async def create_workload(kube: KubeClient, ns: str, access: Iterable[Obj], job: Obj) -> Obj:
    """A pod's identity and access first (ServiceAccount, Role, RoleBinding, Secret, in that
    order), then its batch/v1 Job; returns the Job as the apiserver holds it."""
    for res, manifest in zip((SERVICEACCOUNTS, ROLES, ROLEBINDINGS, SECRETS), access, strict=True):
        await create_or_get(kube, res, manifest, ns)
    return await create_or_get(kube, JOBS, job, ns)
