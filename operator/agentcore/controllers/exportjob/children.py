"""The objects of an ExportJob's export pod. Pure functions from the ExportJob to manifests.

The pod, its ServiceAccount, its credentials Secret and its batch/v1 Job live in the platform
namespace: a tenant with kubectl in its own namespace could otherwise read the Secret (the platform's
database password and object-store keys) or exec into or replace the pod. No owner reference can
cross namespaces, so they carry the ExportJob's namespace, name and uid as labels, and the operator
deletes them (reconciler.py). Only the Role and RoleBinding stay in the tenant namespace, owned by
the ExportJob: they let the platform ServiceAccount reach what this one export needs there.

The Role is cut to what this one export needs: read its ExportJob and write its status (by name),
list the namespace's TrainingJobs read-only (only for the types built from them), list batch Jobs
(only reliability_report: retries), read the pseudonymisation key Secret and the custom redaction
rule ConfigMap by name (only below the full level).
"""

from __future__ import annotations

import hashlib
from typing import Any

from agentcore.api import labels
from agentcore.api.common import GROUP
from agentcore.api.exports import NEEDS_TRAINER_JOBS, NEEDS_TRAININGJOBS, ExportJob, PrivacyLevel
from agentcore.controllers.common import manifests
from agentcore.controllers.common.config import OperatorConfig
from agentcore.exports.keys import KEY_SECRET
from agentcore.exports.rules import BUILTIN_RULES
from agentcore.exports.settings import LABEL_EXPORT_ID, LABEL_EXPORTJOB, ExportSettings

EXPORTER_CONTAINER = "exporter"
INVALID_EXIT_CODE = 2  # a failure the exporter reported; retrying cannot help
STOPPED_EXIT_CODE = 143  # SIGTERM (cancel, eviction): not the export's fault

Obj = dict[str, Any]


def child_name(ej: ExportJob) -> str:
    return manifests.bounded_name(ej.name, "-export")


def platform_name(ej: ExportJob) -> str:
    """The pod's objects' name in the platform namespace: unique per (namespace, name) — the digest
    keeps "a-b"/"c" and "a"/"b-c" apart — and bounded."""
    digest = hashlib.sha256(f"{ej.namespace}/{ej.name}".encode()).hexdigest()[:8]
    return manifests.bounded_name(f"{ej.namespace}-{ej.name}-{digest}", "-export")


def platform_selector(namespace: str | None = None) -> str:
    """Selects the exporter objects in the platform namespace (of one tenant namespace)."""
    if namespace is None:
        return f"{LABEL_EXPORTJOB},{labels.EXPORTJOB_UID}"
    return f"{LABEL_EXPORTJOB},{labels.EXPORTJOB_UID},{labels.EXPORTJOB_NAMESPACE}={namespace}"


def name_label(ej: ExportJob) -> str:
    """The ExportJob's name as a label value (at most 63 characters, unique per name); Jobs are
    matched to their ExportJob by controller reference, the label is for people and selectors."""
    return manifests.bounded_name(ej.name)


def owner_reference(ej: ExportJob) -> Obj:
    return manifests.controller_reference(ej.api_version, ej.kind, ej.metadata)


def _labels(ej: ExportJob) -> dict[str, str]:
    return {
        LABEL_EXPORTJOB: name_label(ej),
        LABEL_EXPORT_ID: ej.export_id,
        labels.EXPORTJOB_NAMESPACE: ej.namespace,
        labels.EXPORTJOB_UID: ej.metadata.uid or "",
        labels.MANAGED_BY: labels.OPERATOR_NAME,
        labels.COMPONENT: "exporter",
    }


def _meta(ej: ExportJob) -> Obj:
    """In the tenant namespace, owned by the ExportJob (the Role and RoleBinding)."""
    return {
        "name": child_name(ej),
        "namespace": ej.namespace,
        "labels": _labels(ej),
        "ownerReferences": [owner_reference(ej)],
    }


def _platform_meta(ej: ExportJob, platform: str) -> Obj:
    """In the platform namespace: no owner reference (it cannot cross namespaces), the labels say
    whose they are."""
    return {"name": platform_name(ej), "namespace": platform, "labels": _labels(ej)}


def service_account(ej: ExportJob, platform: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _platform_meta(ej, platform),
        "automountServiceAccountToken": True,
    }


def role(ej: ExportJob) -> Obj:
    name, spec = ej.name, ej.spec
    config = spec.config
    rules: list[Obj] = [
        {"apiGroups": [GROUP], "resources": ["exportjobs"], "resourceNames": [name], "verbs": ["get"]},
        {
            "apiGroups": [GROUP],
            "resources": ["exportjobs/status"],
            "resourceNames": [name],
            "verbs": ["get", "patch"],
        },
    ]
    filters = config.filters
    by_labels = filters is not None and bool(filters.segments or filters.regions)
    if spec.export_type in NEEDS_TRAININGJOBS or by_labels:
        rules.append({"apiGroups": [GROUP], "resources": ["trainingjobs"], "verbs": ["list"]})
    if spec.export_type in NEEDS_TRAINER_JOBS:
        rules.append({"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list"]})
    if config.privacy_level != PrivacyLevel.FULL:
        rules.append(
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [KEY_SECRET], "verbs": ["get"]}
        )
        rule_id = config.redaction_rule
        if rule_id not in BUILTIN_RULES:
            rules.append(
                {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [rule_id], "verbs": ["get"]}
            )
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(ej),
        "rules": rules,
    }


def role_binding(ej: ExportJob, platform: str) -> Obj:
    """The tenant-namespace Role, granted to the export pod's ServiceAccount in the platform namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(ej),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": child_name(ej)},
        "subjects": [{"kind": "ServiceAccount", "name": platform_name(ej), "namespace": platform}],
    }


def secret(ej: ExportJob, config: OperatorConfig, platform: str, account_uid: str = "") -> Obj:
    """Database and object store access, in the platform namespace only. Owned by the pod's
    ServiceAccount (same namespace), so it goes with it: the operator never lists or deletes
    Secrets."""
    meta = _platform_meta(ej, platform)
    if account_uid:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "ServiceAccount", "name": meta["name"], "uid": account_uid}
        ]
    return manifests.credentials_secret(meta, config)


def _container(ej: ExportJob, settings: ExportSettings) -> Obj:
    return {
        "name": EXPORTER_CONTAINER,
        "image": settings.image,
        "command": ["agentcore", "exporter"],
        "env": [
            {"name": "AGENTCORE_EXPORT_NAME", "value": ej.name},
            # The ExportJob's (tenant) namespace, not the pod's (the platform's).
            {"name": "AGENTCORE_EXPORT_NAMESPACE", "value": ej.namespace},
            {"name": "AGENTCORE_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "AGENTCORE_EXPORT_RETENTION_SECONDS", "value": str(settings.retention_seconds)},
            {"name": "TMPDIR", "value": "/tmp"},
        ],
        "envFrom": [{"secretRef": {"name": platform_name(ej)}}],
        "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
    }


def job(ej: ExportJob, settings: ExportSettings, platform: str) -> Obj:
    pod_labels = {k: v for k, v in _labels(ej).items() if k != labels.MANAGED_BY}
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "serviceAccountName": platform_name(ej),
        "terminationGracePeriodSeconds": settings.grace_seconds,
        "containers": [_container(ej, settings)],
        # The file is written to scratch space before upload: an emptyDir, not the image's disk.
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    exit_rule = {"containerName": EXPORTER_CONTAINER, "operator": "In"}
    job_spec: Obj = {
        "backoffLimit": settings.backoff_limit,
        "activeDeadlineSeconds": settings.active_deadline_seconds,
        # The ExportJob keeps the outcome; the finished pod need not linger until the file expires.
        "ttlSecondsAfterFinished": settings.job_ttl_seconds,
        "podFailurePolicy": {
            "rules": [
                {"action": "FailJob", "onExitCodes": {**exit_rule, "values": [INVALID_EXIT_CODE]}},
                {"action": "Ignore", "onExitCodes": {**exit_rule, "values": [STOPPED_EXIT_CODE]}},
            ]
        },
        "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _platform_meta(ej, platform),
        "spec": job_spec,
    }
