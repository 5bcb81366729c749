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


def test_role_is_scoped_to_this_job_and_its_data():
    rules = children.role(trainingjob())["rules"]
    assert all(rule.get("resourceNames") for rule in rules)
    by_resource = {r["resources"][0]: r for r in rules}
    assert by_resource["trainingjobs"]["verbs"] == ["get"]
    assert by_resource["trainingjobs/status"]["resourceNames"] == ["tj"]
    assert by_resource["configmaps"]["resourceNames"] == ["data"]
    assert by_resource["secrets"]["resourceNames"] == ["held-out"]
    assert not any(v in r["verbs"] for r in rules for v in ("list", "watch", "create", "delete", "*"))


def test_defaults_come_from_the_model():
    job = children.job(trainingjob(), OperatorConfig())
    assert job["spec"]["backoffLimit"] == 3 and "activeDeadlineSeconds" not in job["spec"]
