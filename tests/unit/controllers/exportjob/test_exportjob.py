"""The ExportJob state machine, the per-tenant queue and the export pod's manifests (pure functions)."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from typing import Any

import pytest

from agentcore.api.batchjob import BatchJob, JobConditionType
from agentcore.api.exports import ExportConditionType, ExportJob, ExportPhase, parse_exportjobs
from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.exportjob import children, reconciler
from agentcore.controllers.exportjob.decide import changed_fields, decide
from agentcore.exports.keys import KEY_SECRET
from agentcore.exports.queue import Slot, plan_queue
from agentcore.exports.settings import ANNOTATION_CREATED_BY, LABEL_EXPORT_ID, LABEL_EXPORTJOB, ExportSettings

NOW = dt.datetime(2026, 1, 2, 12, 0, tzinfo=dt.UTC)


def export_id(name: str) -> str:
    """The REST API's id of an export: a UUID, as the schema wants."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def ej(
    name: str,
    created: str = "2026-01-02T11:00:00Z",
    phase: str | None = None,
    cancel: bool = False,
    status: dict[str, Any] | None = None,
    **spec,
) -> ExportJob:
    obj: dict[str, Any] = {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "ExportJob",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": created,
            "labels": {LABEL_EXPORT_ID: export_id(name)},
            "annotations": {ANNOTATION_CREATED_BY: "alice"},
        },
        "spec": {
            "exportType": "trajectories",
            "config": {"format": "csv", "privacyLevel": "anonymized"},
            **spec,
        },
        "status": {**({"phase": phase} if phase else {}), **(status or {})},
    }
    if cancel:
        obj["spec"]["cancel"] = {"requested": True, "reason": "not needed"}
    return ExportJob.model_validate(obj)


def job(
    active: int = 1, suspended: bool = False, condition: str | None = None, message: str = ""
) -> BatchJob:
    status: dict = {"active": active}
    if condition:
        status["conditions"] = [
            {"type": condition, "status": "True", "reason": "BackoffLimitExceeded", "message": message}
        ]
    return BatchJob.parse(
        {"metadata": {"name": "x-export"}, "spec": {"suspend": suspended}, "status": status}
    )


def test_queue_admits_three_oldest_and_numbers_the_rest():
    jobs = [ej(f"e{i}", created=f"2026-01-02T11:00:0{i}Z") for i in range(6)]
    jobs[0] = ej("e0", created="2026-01-02T11:00:00Z", phase="Completed")  # finished: holds no slot
    jobs[1] = ej("e1", created="2026-01-02T11:00:01Z", cancel=True)  # cancelled before it ran: never admitted
    slots = plan_queue(jobs, has_job={"e2"}, max_concurrent=3)
    assert slots == {
        "e1": Slot(),
        "e2": Slot(),  # already running
        "e3": Slot(admit=True),
        "e4": Slot(admit=True),
        "e5": Slot(position=0),
    }


def test_queue_is_full_with_three_running():
    jobs = [ej(f"e{i}", created=f"2026-01-02T11:00:0{i}Z") for i in range(5)]
    slots = plan_queue(jobs, has_job={"e0", "e1", "e2"}, max_concurrent=3)
    assert slots["e3"] == Slot(position=0) and slots["e4"] == Slot(position=1)
    # A cancelled export keeps its slot until its pod is gone (it becomes Cancelled then).
    jobs[0] = ej("e0", created="2026-01-02T11:00:00Z", cancel=True)
    assert plan_queue(jobs, has_job={"e0", "e1", "e2"}, max_concurrent=3)["e3"] == Slot(position=0)


def test_new_export_admitted_creates_the_job_and_records_bookkeeping():
    d = decide(ej("a"), None, Slot(admit=True), NOW)
    assert d.create_job and not d.suspend_job
    s = d.status.to_resource()
    assert s["phase"] == "Pending" and s["positionInQueue"] == 0 and s["exportId"] == export_id("a")
    assert s["createdBy"] == "alice" and s["timing"] == {"requestedAt": "2026-01-02T11:00:00Z"}
    assert [(e.reason, e.type) for e in d.events] == [("Admitted", "Normal")]


def test_waiting_export_is_queued_with_its_position():
    d = decide(ej("a"), None, Slot(position=2), NOW)
    assert not d.create_job and d.status.to_resource()["positionInQueue"] == 2
    admitted = next(c for c in d.status.to_resource()["conditions"] if c["type"] == "Admitted")
    assert (
        admitted["status"] == "False"
        and admitted["reason"] == "Queued"
        and "2 export(s)" in admitted["message"]
    )
    assert [e.reason for e in d.events] == ["Queued"]
    # Same observation again: same status, no new events (level-triggered, idempotent).
    again = decide(ej("a").model_copy(update={"status": d.status}), None, Slot(position=2), NOW)
    assert changed_fields(d.status, again.status) == {} and again.events == []


def test_pod_reported_phases_are_kept_and_mirrored_in_conditions():
    running = ej("a", phase="Running")
    d = decide(running, job(), Slot(), NOW)
    assert d.status.phase == "Running" and "phase" not in changed_fields(running.observed_status, d.status)
    assert {e.reason for e in d.events} == {"Admitted", "Started"}
    output = {"rowCount": 5, "fileSizeBytes": 10, "fileRef": "s3://b/k", "expiresAt": "2026-01-09T12:00:00Z"}
    done = ej("a", phase="Completed", status={"output": output})
    d = decide(done, job(active=0, condition="Complete"), Slot(), NOW)
    assert d.status.phase == "Completed"
    assert any(e.reason == "Completed" and "5 rows" in e.message for e in d.events)


def test_failed_job_without_a_report_fails_the_export():
    pending = ej("a", phase="Running", status={"error": "OperationalError: database is down"})
    d = decide(
        pending,
        job(active=0, condition="Failed", message="Job has reached the specified backoff limit"),
        Slot(),
        NOW,
    )
    s = d.status.to_resource()
    assert s["phase"] == "Failed"
    assert s["error"] == "BackoffLimitExceeded: OperationalError: database is down"
    assert s["timing"]["completedAt"] == "2026-01-02T12:00:00Z"
    assert s["timing"]["durationSeconds"] == 3600
    assert any(e.type == "Warning" and e.reason == "Failed" for e in d.events)


def test_cancel_while_pending_is_immediate():
    d = decide(ej("a", cancel=True), None, Slot(), NOW)
    s = d.status.to_resource()
    assert s["phase"] == "Cancelled" and "positionInQueue" not in s
    assert s["error"] == "cancelled: not needed"
    assert [e.reason for e in d.events] == ["Cancelled"]


def test_cancel_while_running_suspends_then_finishes_when_pods_are_gone():
    running = ej("a", phase="Running", cancel=True)
    d = decide(running, job(active=1), Slot(), NOW)
    assert d.suspend_job and d.status.phase == "Running"
    d = decide(running, job(active=1, suspended=True), Slot(), NOW)
    assert d.suspend_job  # still stopping
    d = decide(running, job(active=0, suspended=True), Slot(), NOW)
    assert not d.suspend_job and d.status.phase == "Cancelled"


def test_terminal_exports_are_left_alone():
    for phase in ("Completed", "Failed", "Cancelled"):
        d = decide(ej("a", phase=phase, cancel=True), None, Slot(admit=True), NOW)
        assert not d.create_job and not d.suspend_job and d.status.phase == phase


def _rules(manifest: dict) -> list[dict]:
    return manifest["rules"]


def test_role_is_least_privilege_per_export():
    role = children.role(ej("a"))
    assert _rules(role) == [
        {
            "apiGroups": ["training.agentcore.io"],
            "resources": ["exportjobs"],
            "resourceNames": ["a"],
            "verbs": ["get"],
        },
        {
            "apiGroups": ["training.agentcore.io"],
            "resources": ["exportjobs/status"],
            "resourceNames": ["a"],
            "verbs": ["get", "patch"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [KEY_SECRET], "verbs": ["get"]},
    ]
    full_report = ej("r", exportType="reliability_report", config={"format": "pdf", "privacyLevel": "full"})
    kinds = [(r["apiGroups"][0], r["resources"][0], r["verbs"]) for r in _rules(children.role(full_report))]
    assert ("training.agentcore.io", "trainingjobs", ["list"]) in kinds
    assert ("batch", "jobs", ["list"]) in kinds
    assert all(r["resources"] != ["secrets"] for r in _rules(children.role(full_report)))
    custom = ej("c", config={"format": "csv", "privacyLevel": "anonymized", "redactionRule": "strict"})
    assert {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["strict"],
        "verbs": ["get"],
    } in _rules(children.role(custom))


def test_export_job_manifest():
    a = ej("a")
    manifest = children.job(
        a, ExportSettings(image="ghcr.io/agentcore/agentcore-training:9", backoff_limit=1), "platform"
    )
    spec = manifest["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["agentcore", "exporter"]
    assert container["image"] == "ghcr.io/agentcore/agentcore-training:9"
    assert {"name": "AGENTCORE_EXPORT_NAME", "value": "a"} in container["env"]
    assert {"name": "AGENTCORE_EXPORT_NAMESPACE", "value": "team-a"} in container["env"]
    platform_name = children.platform_name(a)
    assert platform_name.startswith("team-a-a-") and platform_name.endswith("-export")
    assert container["envFrom"] == [{"secretRef": {"name": platform_name}}]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["serviceAccountName"] == platform_name and pod["restartPolicy"] == "Never"
    assert spec["backoffLimit"] == 1
    actions = {r["action"]: r["onExitCodes"]["values"] for r in spec["podFailurePolicy"]["rules"]}
    assert actions == {"FailJob": [2], "Ignore": [143]}
    # In the platform namespace: no owner reference (none crosses namespaces), labels say whose.
    meta = manifest["metadata"]
    assert meta["namespace"] == "platform" and "ownerReferences" not in meta
    assert meta["labels"]["training.agentcore.io/exportjob-uid"] == "uid-a"
    assert meta["labels"]["training.agentcore.io/exportjob-namespace"] == "team-a"


def test_tenant_role_binding_names_the_platform_service_account():
    a = ej("a")
    binding = children.role_binding(a, "platform")
    assert binding["metadata"]["namespace"] == "team-a"
    assert binding["metadata"]["ownerReferences"][0]["uid"] == "uid-a"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": children.platform_name(a), "namespace": "platform"}
    ]


def test_platform_names_keep_namespace_name_pairs_apart():
    one = ej("c").model_copy(update={"metadata": ej("c").metadata.model_copy(update={"namespace": "a-b"})})
    two = ej("b-c").model_copy(update={"metadata": ej("b-c").metadata.model_copy(update={"namespace": "a"})})
    assert children.platform_name(one) != children.platform_name(two)
    long = ej("x" * 250)
    assert len(children.platform_name(long)) <= 63


def test_export_secret_carries_storage_settings():
    config = OperatorConfig(database_url="postgresql://db", object_store="s3://b/p", s3_access_key="ak")
    secret = children.secret(ej("a"), config, "platform", "sa-uid")
    assert secret["metadata"]["namespace"] == "platform"
    # Goes with the ServiceAccount (same namespace): the operator never deletes Secrets itself.
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "sa-uid"
    data = secret["data"]
    assert set(data) >= {"AGENTCORE_DATABASE_URL", "AGENTCORE_OBJECT_STORE", "AWS_ACCESS_KEY_ID"}


@pytest.mark.parametrize("name", ["x" * 70, "ab-" * 20 + "-c"])
def test_child_names_fit_kubernetes_limits(name):
    assert len(children.child_name(ej(name))) <= 63 and not children.child_name(ej(name)).endswith("-")


def test_child_job_view_reads_what_the_controller_needs():
    failed = job(active=0, condition="Failed", message="deadline")
    assert failed.finished == JobConditionType.FAILED and failed.pods_gone
    assert failed.condition(JobConditionType.FAILED).message == "deadline"
    running = job(active=1, suspended=True)
    assert running.finished is None and running.suspended and not running.pods_gone
    assert BatchJob.parse({"metadata": {"name": "j"}}).name == "j"  # no spec or status yet


def test_exportjob_model_derives_id_and_phase():
    a = ej("a")
    assert a.export_id == export_id("a") and a.phase == ExportPhase.PENDING and not a.cancel_requested
    kubectl = a.model_copy(update={"metadata": a.metadata.model_copy(update={"labels": None})})
    assert kubectl.export_id == "uid-a"  # created with kubectl: the uid is the id


def test_unparseable_exportjobs_are_skipped():
    good = ej("a").to_resource()
    bad = {**good, "metadata": {"name": "b", "namespace": "team-a"}, "spec": {"exportType": "nope"}}
    assert [e.name for e in parse_exportjobs([good, bad])] == ["a"]


def test_conditions_use_the_api_constants():
    d = decide(ej("a"), None, Slot(admit=True), NOW)
    kinds = {c.type for c in d.status.conditions or []}
    assert kinds == {ExportConditionType.ADMITTED, ExportConditionType.RUNNING}


class FakeKube:
    """Just enough of the Kubernetes API for one namespace's reconcile."""

    def __init__(self, *exportjobs: ExportJob) -> None:
        self.items = {e.name: e.to_resource() for e in exportjobs}
        self.children: list[dict[str, Any]] = []  # what the controller created, in order
        self.status_patches: list[dict[str, Any]] = []

    async def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        if res.plural == "exportjobs":
            return {"items": [copy.deepcopy(o) for o in self.items.values()]}
        return {"items": [o for o in self.children if o["kind"] == "Job"] if res.plural == "jobs" else []}

    async def create(self, res: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        self.children.append(body)
        return body

    async def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str, sub: str = "") -> None:
        self.status_patches.append(body["status"])
        self.items[name]["status"] = {**self.items[name].get("status", {}), **body["status"]}


async def test_reconcile_writes_the_status_only_when_it_changed(monkeypatch):
    async def no_key(kube: Any, ns: str) -> bool:
        return False

    monkeypatch.setattr(reconciler, "ensure_key_secret", no_key)
    kube = FakeKube(ej("a"))
    r = reconciler.ExportJobReconciler(kube, OperatorConfig(), ExportSettings(), None, clock=lambda: NOW)  # type: ignore[arg-type]
    monkeypatch.setattr(r, "post_event", _no_event)
    await r.reconcile_namespace("team-a")
    assert [c["kind"] for c in kube.children][-1] == "Job" and len(kube.status_patches) == 1
    assert kube.status_patches[0]["phase"] == "Pending"
    await r.reconcile_namespace("team-a")  # nothing new observed: no write
    assert len(kube.status_patches) == 1 and [c["kind"] for c in kube.children].count("Job") == 1


async def _no_event(ej: Any, event: Any) -> None:
    return None


def test_expiry_reads_the_typed_status():
    r = reconciler.ExportJobReconciler(None, OperatorConfig(), ExportSettings(retention_seconds=60), None)  # type: ignore[arg-type]
    done = ej("a", phase="Completed", status={"output": {"expiresAt": "2026-01-02T11:59:00Z"}})
    failed = ej("b", phase="Failed", status={"timing": {"completedAt": "2026-01-02T11:58:00Z"}})
    recent = ej("c", phase="Cancelled", status={"timing": {"completedAt": "2026-01-02T11:59:30Z"}})
    assert r._expired(done, NOW) and r._expired(failed, NOW)
    assert not r._expired(recent, NOW) and not r._expired(ej("d"), NOW)


def test_platform_jobs_match_their_exportjob_by_uid_label():
    def platform_job(name: str, uid: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": {"training.agentcore.io/exportjob-uid": uid}}}

    items = [platform_job("mine", "uid-a"), platform_job("namesake", "uid-old"), {"metadata": {"name": "x"}}]
    found = reconciler.jobs_by_exportjob(items, {"a": "uid-a", "b": None})
    assert {name: j.name for name, j in found.items()} == {"a": "mine"}  # not a deleted namesake's


async def test_a_completed_export_counts_its_rows_and_bytes_once(monkeypatch):
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"format": "csv", **labels}) or 0.0

    output = {"rowCount": 5, "fileSizeBytes": 10, "fileRef": "s3://b/k", "expiresAt": "2026-01-09T12:00:00Z"}
    done = ej("a", phase="Completed", status={"output": output})
    r = reconciler.ExportJobReconciler(None, OperatorConfig(), ExportSettings(), None, clock=lambda: NOW)  # type: ignore[arg-type]
    monkeypatch.setattr(r, "kube", FakeKube(done))
    monkeypatch.setattr(r, "post_event", _no_event)
    before = (sample("agentcore_export_rows_total"), sample("agentcore_export_bytes_total"))
    finished = sample("agentcore_exports_finished_total", reason="Completed")
    await r._reconcile_one(done, job(active=0, condition="Complete"), Slot())
    assert sample("agentcore_exports_finished_total", reason="Completed") - finished == 1
    after = (sample("agentcore_export_rows_total"), sample("agentcore_export_bytes_total"))
    assert (after[0] - before[0], after[1] - before[1]) == (5, 10)


class UpgradedKube(FakeKube):
    """An export in flight when the operator was upgraded: its Job, made by an operator from
    before the platform namespace, runs in the tenant's namespace (owned by the ExportJob)."""

    def __init__(self, export: ExportJob, owner_uid: str) -> None:
        super().__init__(export)
        self.legacy = {
            "kind": "Job",
            "metadata": {
                "name": f"{export.name}-export",
                "namespace": "team-a",
                "labels": {LABEL_EXPORTJOB: export.name},
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ExportJob",
                        "name": export.name,
                        "uid": owner_uid,
                        "controller": True,
                    }
                ],
            },
            "spec": {},
            "status": {"active": 1},
        }
        self.job_patches: list[tuple[str, str, dict[str, Any]]] = []

    async def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        if res.plural == "jobs" and namespace == "team-a":
            return {"items": [copy.deepcopy(self.legacy)]}
        return await super().list(res, namespace)

    async def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str, sub: str = "") -> None:
        if res.plural == "jobs":
            self.job_patches.append((namespace, name, body))
            return
        await super().patch(res, name, body, namespace, sub)


async def test_an_export_in_flight_at_an_upgrade_keeps_its_tenant_namespace_job(monkeypatch):
    monkeypatch.setattr(reconciler, "ensure_key_secret", _no_key)
    running = ej("a", phase="Running")
    kube = UpgradedKube(running, owner_uid="uid-a")
    r = reconciler.ExportJobReconciler(kube, OperatorConfig(), ExportSettings(), None, clock=lambda: NOW)  # type: ignore[arg-type]
    monkeypatch.setattr(r, "post_event", _no_event)
    await r.reconcile_namespace("team-a")
    assert [c["kind"] for c in kube.children] == [], "a second export pod was started"
    kube.items["a"]["spec"]["cancel"] = {"requested": True, "reason": "stop"}
    await r.reconcile_namespace("team-a")
    assert kube.job_patches == [("team-a", "a-export", {"spec": {"suspend": True}})]


async def test_a_planted_job_owned_by_another_uid_is_not_adopted(monkeypatch):
    monkeypatch.setattr(reconciler, "ensure_key_secret", _no_key)
    kube = UpgradedKube(ej("a", phase="Running"), owner_uid="uid-of-a-deleted-namesake")
    r = reconciler.ExportJobReconciler(kube, OperatorConfig(), ExportSettings(), None, clock=lambda: NOW)  # type: ignore[arg-type]
    monkeypatch.setattr(r, "post_event", _no_event)
    await r.reconcile_namespace("team-a")
    assert [c["kind"] for c in kube.children][-1] == "Job"


async def _no_key(kube: Any, ns: str) -> bool:
    return False
