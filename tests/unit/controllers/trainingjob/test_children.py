"""The trainer Job and its RBAC, as manifests."""

from __future__ import annotations

from agentcore.api.training import TrainingJob
from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.trainingjob import children


def trainingjob(**spec) -> TrainingJob:
    return TrainingJob.model_validate(
        {
            "apiVersion": "training.agentcore.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "tj", "namespace": "team-a", "uid": "uid-1"},
            "spec": {
                "agentId": "a",
                "config": {},
                "trainingData": {"configMapKeyRef": {"name": "data", "key": "q.json"}},
                "evaluationData": {"secretKeyRef": {"name": "held-out", "key": "e.json"}},
                **spec,
            },
        }
    )


def test_job_passes_through_scheduling_and_limits():
    tj = trainingjob(
        nodeSelector={"gpu": "none"},
        tolerations=[{"key": "k", "operator": "Exists"}],
        resources={"limits": {"cpu": "2"}},
        backoffLimit=5,
        activeDeadlineSeconds=600,
        ttlSecondsAfterFinished=60,
        labels={"team": "a"},
        annotations={"note": "x"},
    )
    job = children.job(tj, OperatorConfig(trainer_image="img:1"))
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["backoffLimit"] == 5 and job["spec"]["activeDeadlineSeconds"] == 600
    assert job["spec"]["ttlSecondsAfterFinished"] == 60 and job["spec"]["suspend"] is False
    assert pod["nodeSelector"] == {"gpu": "none"} and pod["tolerations"][0]["key"] == "k"
    assert pod["containers"][0]["resources"] == {"limits": {"cpu": "2"}}
    assert pod["containers"][0]["image"] == "img:1"
    assert pod["serviceAccountName"] == "tj-trainer"
    assert job["metadata"]["labels"]["team"] == "a" and job["metadata"]["annotations"] == {"note": "x"}
    assert job["spec"]["template"]["metadata"]["labels"]["team"] == "a"
    assert job["metadata"]["ownerReferences"][0] == {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "name": "tj",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    rule = job["spec"]["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "Ignore" and rule["onExitCodes"]["values"] == [children.STOPPED_EXIT_CODE]


def test_kueue_managed_jobs_start_suspended():
    job = children.job(trainingjob(labels={children.KUEUE_QUEUE_LABEL: "team-queue"}), OperatorConfig())
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"][children.KUEUE_QUEUE_LABEL] == "team-queue"


def test_role_reads_only_this_job_and_writes_its_status():
    """Data sources are read by the API server for the trainer: no ConfigMap or Secret is readable."""
    rules = children.role(trainingjob())["rules"]
    assert all(rule.get("resourceNames") == ["tj"] for rule in rules)
    assert {r["resources"][0] for r in rules} == {"trainingjobs", "trainingjobs/status"}
    by_resource = {r["resources"][0]: r for r in rules}
    assert by_resource["trainingjobs"]["verbs"] == ["get"]
    assert not any(v in r["verbs"] for r in rules for v in ("list", "watch", "create", "delete", "*"))


def test_trainer_pod_gets_an_ingest_token_and_no_credentials():
    config = OperatorConfig(
        ingest_url="http://api.example:8080", database_url="postgresql://u:pw@db/x", s3_secret_key="sk"
    )
    spec = children.job(trainingjob(), config)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert "envFrom" not in container
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AGENTCORE_INGEST_URL"] == "http://api.example:8080"
    assert env["AGENTCORE_INGEST_TOKEN_FILE"] == "/var/run/secrets/agentcore.io/ingest/token"
    assert "pw" not in str(spec) and "sk" not in str(spec)
    assert spec["volumes"] == [
        {
            "name": "ingest-token",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": "agentcore.io/ingest",
                            "expirationSeconds": 3600,
                            "path": "token",
                        }
                    }
                ]
            },
        }
    ]
    mount = container["volumeMounts"][0]
    assert mount == {
        "name": "ingest-token",
        "mountPath": "/var/run/secrets/agentcore.io/ingest",
        "readOnly": True,
    }


def test_defaults_come_from_the_model():
    job = children.job(trainingjob(), OperatorConfig())
    assert job["spec"]["backoffLimit"] == 3 and "activeDeadlineSeconds" not in job["spec"]


def _env(job: dict) -> dict[str, dict]:
    return {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_one_worker_keeps_the_plain_job():
    job = children.job(trainingjob(), OperatorConfig())
    spec = job["spec"]
    assert "completionMode" not in spec and "parallelism" not in spec and "backoffLimitPerIndex" not in spec
    assert spec["backoffLimit"] == 3
    assert "subdomain" not in spec["template"]["spec"]
    assert not {"MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK"} & set(_env(job))


def test_workers_make_an_indexed_job_with_torch_distributed_env():
    tj = trainingjob(workers=4, backoffLimit=2, resources={"limits": {"nvidia.com/gpu": 1}})
    job = children.job(tj, OperatorConfig())
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 4
    assert spec["backoffLimitPerIndex"] == 2 and spec["maxFailedIndexes"] == 0
    assert "backoffLimit" not in spec  # defaults to unlimited: retries are counted per rank
    assert pod["subdomain"] == "tj-trainer"
    assert pod["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": 1}}  # per worker
    env = _env(job)
    assert env["MASTER_ADDR"]["value"] == "tj-trainer-0.tj-trainer.team-a.svc"
    assert env["MASTER_PORT"]["value"] == str(children.MASTER_PORT)
    assert env["WORLD_SIZE"]["value"] == "4"
    assert env["RANK"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    codes = spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"]
    assert codes == [children.PEER_LOST_EXIT_CODE, children.STOPPED_EXIT_CODE]  # ascending, as required


def test_kueue_label_stays_on_the_indexed_job():
    job = children.job(trainingjob(workers=2, labels={"kueue.x-k8s.io/queue-name": "q"}), OperatorConfig())
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "q"
    assert job["spec"]["suspend"] is True  # Kueue admits all ranks at once


def test_headless_service_selects_this_jobs_pods():
    tj = trainingjob(workers=2)
    svc = children.headless_service(tj)
    assert svc["metadata"]["name"] == "tj-trainer"
    assert svc["metadata"]["ownerReferences"][0]["uid"] == "uid-1"  # deleted with the TrainingJob
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    pod_labels = children.job(tj, OperatorConfig())["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()


def test_the_trainer_and_the_job_agree_on_the_peer_lost_exit_code():
    from agentcore_trainer import distributed

    assert distributed.PEER_LOST_EXIT_CODE == children.PEER_LOST_EXIT_CODE


def test_a_users_labels_never_replace_the_operators():
    # Issue 12: spec.labels came after the operator's own keys on the Job's metadata.
    own = {
        "training.agentcore.io/job-id": "forged",
        "training.agentcore.io/trainingjob": "someone-else",
        "app.kubernetes.io/managed-by": "me",
        "app.kubernetes.io/component": "x",
    }
    tj = trainingjob(labels={**own, "team": "a", "app.kubernetes.io/name": "agent"})
    job = children.job(tj, OperatorConfig())
    for meta in (job["metadata"], job["spec"]["template"]["metadata"]):
        assert meta["labels"]["training.agentcore.io/job-id"] == "uid-1"
        assert meta["labels"]["training.agentcore.io/trainingjob"] == "tj"
        assert meta["labels"]["team"] == "a"
    assert job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "agentcore-operator"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "trainer"
    # ...and such a job fails validation naming the key, rather than running with them dropped.
    message = children.reserved_label(tj) or ""
    assert "spec.labels['app.kubernetes.io/component']" in message
    assert children.reserved_label(trainingjob(labels={"team": "a", "app.kubernetes.io/name": "x"})) is None
