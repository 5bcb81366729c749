"""The objects a TrainingJob owns: the trainer's ServiceAccount, Role, RoleBinding and batch/v1
Job, plus, for more than one worker, the headless Service of the Job's pods. Pure functions from
the TrainingJob to manifests.

No credential goes to the tenant's namespace: the trainer reaches its datasets, trajectories and
checkpoints only through the API server's ingestion endpoint (``config.ingest_url``), proving who it
is with a projected service-account token bound to ``config.ingest_audience`` (expiring in an hour,
rotated by the kubelet). Its Role only reads its TrainingJob and writes that job's status.

Several workers (the Kubeflow Trainer torch pattern): an Indexed Job with completions =
parallelism = workers; each pod's completion index is its torch.distributed RANK, and the headless
Service plus the pods' ``subdomain`` give rank 0 the stable name
``<job>-0.<service>.<namespace>.svc`` that every rank rendezvouses at (MASTER_ADDR:MASTER_PORT).

Restarting the group cleanly: a rank that dies leaves the others inside (or before) a collective.
gloo/NCCL raise at once when a peer's connection closes, and every collective also has a timeout
(the trainer's, see runtime/distributed.py), so a survivor never hangs for ever; it exits with
PEER_LOST_EXIT_CODE, which the podFailurePolicy ignores (it is not that rank's fault), while the
rank that really failed is counted against backoffLimitPerIndex. maxFailedIndexes 0 fails the
whole Job as soon as one rank has used up its retries. Every replacement pod resumes from the
newest checkpoint that rank 0 wrote, so the whole group restarts together from the same state.
"""

from __future__ import annotations

from typing import Any

from agentcore.api import labels
from agentcore.api.common import GROUP, KeySelector
from agentcore.api.training import TrainingJob
from agentcore.controllers.common import manifests
from agentcore.controllers.common.config import OperatorConfig
from agentcore.storage.staged import DatasetKind

LABEL_TRAININGJOB = labels.TRAININGJOB
LABEL_JOB_ID = labels.JOB_ID
KUEUE_QUEUE_LABEL = labels.KUEUE_QUEUE_NAME
TRAINER_CONTAINER = "trainer"
# The trainer exits with this code when it stopped early on SIGTERM after a checkpoint
# (suspend, cancel, eviction): the Job's podFailurePolicy ignores it, so it costs no retry.
STOPPED_EXIT_CODE = 143
# A rank exits with this (EX_TEMPFAIL) when another rank of its group was lost: ignored by the
# podFailurePolicy, so only the rank that failed uses up its retries.
PEER_LOST_EXIT_CODE = 75
MASTER_PORT = 29500  # torch.distributed's default; each pod (or loopback address) has its own
RENDEZVOUS_PORT_NAME = "rendezvous"
INGEST_VOLUME = "ingest-token"
INGEST_TOKEN_DIR = "/var/run/secrets/agentcore.io/ingest"
INGEST_TOKEN_PATH = "token"
INGEST_TOKEN_SECONDS = 3600

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
        "labels": {  # the operator's own last: a user's label never replaces one
            **(extra_labels or {}),
            LABEL_TRAININGJOB: name_label(tj),
            LABEL_JOB_ID: tj.metadata.uid,
            labels.MANAGED_BY: labels.OPERATOR_NAME,
            labels.COMPONENT: "trainer",
        },
        "ownerReferences": [owner_reference(tj)],
    }


def reserved_label(tj: TrainingJob) -> str | None:
    """Why spec.labels may not be used as given: a key the operator sets or selects children by
    (its group's, and the managed-by and component labels), naming it; None if none is."""
    for key in sorted(tj.spec.labels or {}):
        if key.startswith(f"{GROUP}/") or key in (labels.MANAGED_BY, labels.COMPONENT):
            return f"spec.labels[{key!r}]: the operator sets this label (and every {GROUP}/ one) itself"
    return None


def distributed(tj: TrainingJob) -> bool:
    return tj.spec.workers > 1


def master_addr(tj: TrainingJob) -> str:
    """Rank 0's DNS name: the Indexed Job names pod i's host ``<job>-<i>``."""
    return f"{child_name(tj)}-0.{child_name(tj)}.{tj.metadata.namespace}.svc"


def headless_service(tj: TrainingJob) -> Obj:
    """The Service that gives each worker pod a DNS name (``<host>.<service>.<ns>.svc``).

    publishNotReadyAddresses: the names must resolve while the ranks rendezvous, before any of
    them is Ready."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(tj),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {LABEL_JOB_ID: tj.metadata.uid},
            "ports": [{"name": RENDEZVOUS_PORT_NAME, "port": MASTER_PORT, "protocol": "TCP"}],
        },
    }


def service_account(tj: TrainingJob) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(tj)}


def role(tj: TrainingJob) -> Obj:
    """Least privilege: read its own TrainingJob and write its status. Data sources are read by the
    API server for it (GET /ingest/v1/datasets/...), so no ConfigMap or Secret is readable."""
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
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(tj),
        "rules": rules,
    }


def secret_sources(tj: TrainingJob) -> list[tuple[DatasetKind, KeySelector]]:
    """The job's data sources that name a Secret key, by dataset kind (staged for the trainer)."""
    sources: list[tuple[DatasetKind, KeySelector]] = []
    if tj.spec.training_data.secret_key_ref is not None:
        sources.append(("training", tj.spec.training_data.secret_key_ref))
    if tj.spec.evaluation_data is not None and tj.spec.evaluation_data.secret_key_ref is not None:
        sources.append(("evaluation", tj.spec.evaluation_data.secret_key_ref))
    return sources


def secret_refs(tj: TrainingJob) -> list[tuple[str, KeySelector]]:
    """Every Secret the TrainingJob names, with the field that names it (for error messages).

    The operator checks each carries labels.USABLE_BY_TRAININGJOBS before it reads one (the data
    sources, for its checks and through the API server for the trainer) or signs a webhook."""
    refs = [(f"{kind}Data.secretKeyRef", ref) for kind, ref in secret_sources(tj)]
    for index, hook in enumerate(tj.spec.webhooks or []):
        refs.append((f"webhooks[{index}].secretRef", hook.secret_ref))
    return refs


def role_binding(tj: TrainingJob) -> Obj:
    return manifests.role_binding(_meta(tj))


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
            {"name": "AGENTCORE_INGEST_URL", "value": config.ingest_url},
            {"name": "AGENTCORE_INGEST_TOKEN_FILE", "value": f"{INGEST_TOKEN_DIR}/{INGEST_TOKEN_PATH}"},
            *({"name": k, "value": v} for k, v in sorted(config.extra_trainer_env.items())),
        ],
        "volumeMounts": [{"name": INGEST_VOLUME, "mountPath": INGEST_TOKEN_DIR, "readOnly": True}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
    }
    if distributed(tj):
        container["env"] += _distributed_env(tj)
    if tj.spec.resources:
        container["resources"] = tj.spec.resources.manifest()
    return container


def _distributed_env(tj: TrainingJob) -> list[Obj]:
    """torch.distributed's env:// variables; RANK is the pod's completion index."""
    index_path = f"metadata.annotations['{labels.JOB_COMPLETION_INDEX}']"
    return [
        {"name": "MASTER_ADDR", "value": master_addr(tj)},
        {"name": "MASTER_PORT", "value": str(MASTER_PORT)},
        {"name": "WORLD_SIZE", "value": str(tj.spec.workers)},
        {"name": "RANK", "valueFrom": {"fieldRef": {"fieldPath": index_path}}},
    ]


def _pod_spec(tj: TrainingJob, config: OperatorConfig) -> Obj:
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "serviceAccountName": child_name(tj),
        "terminationGracePeriodSeconds": config.trainer_grace_seconds,
        "containers": [_container(tj, config)],
        "volumes": [ingest_token_volume(config)],
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
    if distributed(tj):
        pod_spec["subdomain"] = child_name(tj)  # the headless Service's name
    return pod_spec


def ingest_token_volume(config: OperatorConfig) -> Obj:
    """The trainer's identity towards the ingestion endpoint: a token for that audience only (the
    apiserver refuses it anywhere else), bound to the pod, rotated by the kubelet before expiry."""
    token = {
        "audience": config.ingest_audience,
        "expirationSeconds": INGEST_TOKEN_SECONDS,
        "path": INGEST_TOKEN_PATH,
    }
    return {"name": INGEST_VOLUME, "projected": {"sources": [{"serviceAccountToken": token}]}}


def _ignored_exit_codes(tj: TrainingJob) -> list[int]:
    # The apiserver wants the codes in ascending order.
    return sorted({STOPPED_EXIT_CODE, PEER_LOST_EXIT_CODE}) if distributed(tj) else [STOPPED_EXIT_CODE]


def _indexed(tj: TrainingJob) -> Obj:
    """One pod per rank, retried per rank; the first rank out of retries fails the Job."""
    workers = tj.spec.workers
    return {
        "completionMode": "Indexed",
        "completions": workers,
        "parallelism": workers,
        "backoffLimitPerIndex": tj.spec.backoff_limit,
        "maxFailedIndexes": 0,
    }


def job(tj: TrainingJob, config: OperatorConfig) -> Obj:
    spec, meta = tj.spec, tj.metadata
    user_labels = dict(spec.labels or {})
    pod_labels = {**user_labels, LABEL_TRAININGJOB: name_label(tj), LABEL_JOB_ID: meta.uid}
    job_spec: Obj = {
        # With Kueue the Job starts suspended and Kueue admits it; otherwise it follows spec.suspend.
        "suspend": spec.suspend or kueue_managed(tj),
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "Ignore",
                    "onExitCodes": {
                        "containerName": TRAINER_CONTAINER,
                        "operator": "In",
                        "values": _ignored_exit_codes(tj),
                    },
                }
            ]
        },
        "template": {
            "metadata": {"labels": pod_labels, "annotations": dict(spec.annotations or {})},
            "spec": _pod_spec(tj, config),
        },
    }
    # Several ranks: retries are counted per index (backoffLimit then defaults to unlimited).
    job_spec.update(_indexed(tj) if distributed(tj) else {"backoffLimit": spec.backoff_limit})
    if spec.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    if spec.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    metadata = _meta(tj, user_labels)
    if spec.annotations:
        metadata["annotations"] = dict(spec.annotations)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}
