"""The objects a TrainingJob owns: the trainer's ServiceAccount, Role, RoleBinding, Secret and
batch/v1 Job. Pure functions from the TrainingJob to manifests."""

from __future__ import annotations

from typing import Any

from agentcore.api import labels
from agentcore.api.common import GROUP, KeySelector
from agentcore.api.training import TrainingJob
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


def child_name(tj: TrainingJob) -> str:
    return manifests.bounded_name(tj.metadata.name or "", "-trainer")


def name_label(tj: TrainingJob) -> str:
    """The TrainingJob's name as a label value (at most 63 characters, unique per name)."""
    return manifests.bounded_name(tj.metadata.name or "")


def owner_reference(tj: TrainingJob) -> Obj:
    return manifests.controller_reference(tj.api_version, tj.kind, tj.metadata)


def _meta(tj: TrainingJob, extra_labels: dict[str, str] | None = None) -> Obj:
    return {
        "name": child_name(tj),
        "namespace": tj.metadata.namespace,
        "labels": {
            LABEL_TRAININGJOB: name_label(tj),
            LABEL_JOB_ID: tj.metadata.uid,
            labels.MANAGED_BY: labels.OPERATOR_NAME,
            labels.COMPONENT: "trainer",
            **(extra_labels or {}),
        },
        "ownerReferences": [owner_reference(tj)],
    }


def service_account(tj: TrainingJob) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(tj)}


def role(tj: TrainingJob) -> Obj:
    """Least privilege: read its own TrainingJob, write its status, read its data source."""
    name = tj.metadata.name
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


def _data_refs(tj: TrainingJob) -> dict[str, set[str]]:
    refs: dict[str, set[str]] = {"configmaps": set(), "secrets": set()}
    for source in (tj.spec.training_data, tj.spec.evaluation_data):
        if source is not None and source.config_map_key_ref is not None:
            refs["configmaps"].add(source.config_map_key_ref.name)
        if source is not None and source.secret_key_ref is not None:
            refs["secrets"].add(source.secret_key_ref.name)
    return refs


def secret_refs(tj: TrainingJob) -> list[tuple[str, KeySelector]]:
    """Every Secret the TrainingJob names, with the field that names it (for error messages).

    The operator checks each carries labels.USABLE_BY_TRAININGJOBS before it creates the Role:
    RBAC cannot select Secrets by label, so the Role's resourceNames are only safe once checked."""
    refs: list[tuple[str, KeySelector]] = []
    for field, source in (
        ("trainingData", tj.spec.training_data),
        ("evaluationData", tj.spec.evaluation_data),
    ):
        if source is not None and source.secret_key_ref is not None:
            refs.append((f"{field}.secretKeyRef", source.secret_key_ref))
    for index, hook in enumerate(tj.spec.webhooks or []):
        refs.append((f"webhooks[{index}].secretRef", hook.secret_ref))
    return refs


def role_binding(tj: TrainingJob) -> Obj:
    return manifests.role_binding(_meta(tj))


def secret(tj: TrainingJob, config: OperatorConfig) -> Obj:
    return manifests.credentials_secret(_meta(tj), config)


def kueue_managed(tj: TrainingJob) -> bool:
    return KUEUE_QUEUE_LABEL in (tj.spec.labels or {})


def _container(tj: TrainingJob, config: OperatorConfig) -> Obj:
    meta = tj.metadata
    container: Obj = {
        "name": TRAINER_CONTAINER,
        "image": tj.spec.image or config.trainer_image,
        "command": ["agentcore", "trainer"],
        "env": [
            {"name": "AGENTCORE_JOB_NAME", "value": meta.name},
            {
                "name": "AGENTCORE_JOB_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
            {"name": "AGENTCORE_JOB_UID", "value": meta.uid},
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
    if tj.spec.resources:
        container["resources"] = tj.spec.resources
    return container


def _pod_spec(tj: TrainingJob, config: OperatorConfig) -> Obj:
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "serviceAccountName": child_name(tj),
        "terminationGracePeriodSeconds": config.trainer_grace_seconds,
        "containers": [_container(tj, config)],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if tj.spec.node_selector:
        pod_spec["nodeSelector"] = tj.spec.node_selector
    if tj.spec.tolerations:
        pod_spec["tolerations"] = tj.spec.tolerations
    return pod_spec


def job(tj: TrainingJob, config: OperatorConfig) -> Obj:
    spec, meta = tj.spec, tj.metadata
    user_labels = dict(spec.labels or {})
    pod_labels = {**user_labels, LABEL_TRAININGJOB: name_label(tj), LABEL_JOB_ID: meta.uid}
    job_spec: Obj = {
        "backoffLimit": spec.backoff_limit,
        # With Kueue the Job starts suspended and Kueue admits it; otherwise it follows spec.suspend.
        "suspend": spec.suspend or kueue_managed(tj),
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
            "metadata": {"labels": pod_labels, "annotations": dict(spec.annotations or {})},
            "spec": _pod_spec(tj, config),
        },
    }
    if spec.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    if spec.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    metadata = _meta(tj, user_labels)
    if spec.annotations:
        metadata["annotations"] = dict(spec.annotations)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}
