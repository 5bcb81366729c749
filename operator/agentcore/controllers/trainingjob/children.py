"""The objects a TrainingJob owns: the trainer's ServiceAccount, Role, RoleBinding, Secret and
batch/v1 Job. Pure functions from the TrainingJob to manifests."""

from __future__ import annotations

from typing import Any

from agentcore.api import labels
from agentcore.api.common import GROUP
from agentcore.controllers.common import manifests
from agentcore.controllers.common.config import OperatorConfig

LABEL_TRAININGJOB = labels.TRAININGJOB
LABEL_JOB_ID = labels.JOB_ID
KUEUE_QUEUE_LABEL = labels.KUEUE_QUEUE_NAME
TRAINER_CONTAINER = "trainer"
# The trainer exits with this code when it stopped early on SIGTERM after a checkpoint
# (suspend, cancel, eviction): the Job's podFailurePolicy ignores it, so it costs no retry.
STOPPED_EXIT_CODE = 143

Obj = dict[str, Any]


def child_name(tj: Obj) -> str:
    return f"{tj['metadata']['name']}-trainer"[:63].rstrip("-")


def owner_reference(tj: Obj) -> Obj:
    return manifests.owner_reference(tj)


def _meta(tj: Obj, extra_labels: dict[str, str] | None = None) -> Obj:
    return {
        "name": child_name(tj),
        "namespace": tj["metadata"]["namespace"],
        "labels": {
            LABEL_TRAININGJOB: tj["metadata"]["name"],
            LABEL_JOB_ID: tj["metadata"]["uid"],
            labels.MANAGED_BY: labels.OPERATOR_NAME,
            labels.COMPONENT: "trainer",
            **(extra_labels or {}),
        },
        "ownerReferences": [owner_reference(tj)],
    }


def service_account(tj: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(tj)}


def role(tj: Obj) -> Obj:
    """Least privilege: read its own TrainingJob, write its status, read its data source."""
    name = tj["metadata"]["name"]
    rules: list[Obj] = [
        {"apiGroups": [GROUP], "resources": ["trainingjobs"], "resourceNames": [name], "verbs": ["get"]},
        {
            "apiGroups": [GROUP],
            "resources": ["trainingjobs/status"],
            "resourceNames": [name],
            "verbs": ["get", "patch", "update"],
        },
    ]
    for kind, names in _data_refs(tj).items():
        if names:
            rules.append(
                {"apiGroups": [""], "resources": [kind], "resourceNames": sorted(names), "verbs": ["get"]}
            )
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(tj),
        "rules": rules,
    }


def _data_refs(tj: Obj) -> dict[str, set[str]]:
    refs: dict[str, set[str]] = {"configmaps": set(), "secrets": set()}
    for key in ("trainingData", "evaluationData"):
        source = tj["spec"].get(key) or {}
        if "configMapKeyRef" in source:
            refs["configmaps"].add(source["configMapKeyRef"]["name"])
        if "secretKeyRef" in source:
            refs["secrets"].add(source["secretKeyRef"]["name"])
    return refs


def role_binding(tj: Obj) -> Obj:
    return manifests.role_binding(_meta(tj))


def secret(tj: Obj, config: OperatorConfig) -> Obj:
    return manifests.credentials_secret(_meta(tj), config)


def kueue_managed(tj: Obj) -> bool:
    return KUEUE_QUEUE_LABEL in (tj["spec"].get("labels") or {})


def job(tj: Obj, config: OperatorConfig) -> Obj:
    spec = tj["spec"]
    meta = tj["metadata"]
    labels = dict(spec.get("labels") or {})
    pod_labels = {**labels, LABEL_TRAININGJOB: meta["name"], LABEL_JOB_ID: meta["uid"]}
    container: Obj = {
        "name": TRAINER_CONTAINER,
        "image": spec.get("image") or config.trainer_image,
        "command": ["agentcore", "trainer"],
        "env": [
            {"name": "AGENTCORE_JOB_NAME", "value": meta["name"]},
            {
                "name": "AGENTCORE_JOB_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
            {"name": "AGENTCORE_JOB_UID", "value": meta["uid"]},
            {"name": "AGENTCORE_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "envFrom": [{"secretRef": {"name": child_name(tj)}}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
    }
    if spec.get("resources"):
        container["resources"] = spec["resources"]
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "serviceAccountName": child_name(tj),
        "terminationGracePeriodSeconds": config.trainer_grace_seconds,
        "containers": [container],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if spec.get("nodeSelector"):
        pod_spec["nodeSelector"] = spec["nodeSelector"]
    if spec.get("tolerations"):
        pod_spec["tolerations"] = spec["tolerations"]
    job_spec: Obj = {
        "backoffLimit": spec.get("backoffLimit", 3),
        # With Kueue the Job starts suspended and Kueue admits it; otherwise it follows spec.suspend.
        "suspend": bool(spec.get("suspend")) or kueue_managed(tj),
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "Ignore",
                    "onExitCodes": {
                        "containerName": TRAINER_CONTAINER,
                        "operator": "In",
                        "values": [STOPPED_EXIT_CODE],
                    },
                }
            ]
        },
        "template": {
            "metadata": {"labels": pod_labels, "annotations": dict(spec.get("annotations") or {})},
            "spec": pod_spec,
        },
    }
    for key in ("activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        if spec.get(key) is not None:
            job_spec[key] = spec[key]
    metadata = _meta(tj, labels)
    if spec.get("annotations"):
        metadata["annotations"] = dict(spec["annotations"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}
