"""The API server's approval of full exports (installs without the admission policy): it verifies
for exactly the export the API server made, and for nothing changed or made with kubectl."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from agentcore.api.exports import ExportJob
from agentcore.api.labels import FULL_EXPORT_APPROVAL
from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.exportjob import reconciler
from agentcore.exports.approval import REFUSED, refusal, verified
from agentcore.exports.settings import ExportSettings
from agentcore.exports.views import CreateExportRequest, exportjob_manifest
from tests.unit.controllers.exportjob.test_exportjob import NOW, FakeKube

KEY = "k" * 48
EXPORT_ID = "0b6f6c1e-8a3e-4a59-9d0f-3f0f5b7a1c01"


def manifest(level: str = "full", key: str = KEY) -> dict[str, Any]:
    request = CreateExportRequest.model_validate(
        {"export_type": "trajectories", "config": {"format": "csv", "privacy_level": level}}
    )
    return exportjob_manifest(request, "team-a", EXPORT_ID, "admin@example.com", 10, key)


def parsed(obj: dict[str, Any]) -> ExportJob:
    stored = copy.deepcopy(obj)
    stored["metadata"].update({"uid": "u1", "generation": 1, "creationTimestamp": "2026-01-02T11:00:00Z"})
    return ExportJob.model_validate(stored)


def test_the_api_servers_full_export_is_approved_as_stored() -> None:
    obj = manifest()
    assert obj["metadata"]["annotations"][FULL_EXPORT_APPROVAL]
    assert refusal(KEY, parsed(obj)) is None
    cancelled = copy.deepcopy(obj)
    cancelled["spec"]["cancel"] = {"requested": True, "reason": "later"}
    assert refusal(KEY, parsed(cancelled)) is None  # cancelling is not a change to what was approved


def test_only_full_exports_need_an_approval() -> None:
    obj = manifest("anonymized")
    obj["metadata"]["annotations"].pop(FULL_EXPORT_APPROVAL)
    assert refusal(KEY, parsed(obj)) is None


def test_every_export_is_signed_so_its_creator_can_be_trusted() -> None:
    # Issue 12: below full, a namespaced install took created-by from a spoofable annotation.
    obj = manifest("anonymized")
    assert verified(KEY, parsed(obj))
    spoofed = copy.deepcopy(obj)
    spoofed["metadata"]["annotations"]["training.agentcore.io/created-by"] = "ceo@example.com"
    assert not verified(KEY, parsed(spoofed))


@pytest.mark.parametrize(
    "change",
    [
        lambda o: o["metadata"]["annotations"].pop(FULL_EXPORT_APPROVAL),  # made with kubectl
        lambda o: o["metadata"]["annotations"].update({"training.agentcore.io/created-by": "mallory"}),
        lambda o: o["metadata"].update({"name": "export-another"}),  # an approval copied over
        lambda o: o["metadata"].update({"namespace": "team-b"}),
        lambda o: o["spec"]["config"].update({"format": "json"}),
        lambda o: o["spec"].update({"exportType": "audit_log"}),
    ],
)
def test_anything_else_is_refused_naming_the_annotation(change) -> None:
    obj = manifest()
    change(obj)
    assert refusal(KEY, parsed(obj)) == REFUSED
    assert FULL_EXPORT_APPROVAL in REFUSED


def test_another_key_or_no_key_refuses() -> None:
    assert refusal("other" * 10, parsed(manifest())) == REFUSED
    assert refusal("", parsed(manifest())) == REFUSED
    assert refusal(KEY, parsed(manifest(key=""))) == REFUSED  # an API server without the key


def test_requiring_approval_needs_a_key() -> None:
    with pytest.raises(ValidationError, match="AGENTCORE_EXPORT_APPROVAL_KEY"):
        ExportSettings(require_approval=True)


async def _reconcile(obj: dict[str, Any], monkeypatch) -> FakeKube:
    async def no_key(kube: Any, ns: str) -> bool:
        return False

    async def no_event(ej: Any, event: Any) -> None:
        return None

    monkeypatch.setattr(reconciler, "ensure_key_secret", no_key)
    kube = FakeKube(parsed(obj))
    settings = ExportSettings(approval_key=KEY, require_approval=True)
    r = reconciler.ExportJobReconciler(kube, OperatorConfig(), settings, None, clock=lambda: NOW)  # type: ignore[arg-type]
    monkeypatch.setattr(r, "post_event", no_event)
    await r.reconcile_namespace("team-a")
    return kube


async def test_the_operator_starts_an_approved_full_export(monkeypatch) -> None:
    kube = await _reconcile(manifest(), monkeypatch)
    assert [c["kind"] for c in kube.children][-1] == "Job"


async def test_the_operator_fails_an_unapproved_full_export_without_starting_it(monkeypatch) -> None:
    obj = manifest()
    obj["metadata"]["annotations"].pop(FULL_EXPORT_APPROVAL)
    kube = await _reconcile(obj, monkeypatch)
    assert kube.children == []
    assert kube.status_patches[-1]["phase"] == "Failed"
    assert kube.status_patches[-1]["error"] == REFUSED


async def test_the_status_names_the_creator_only_when_signed(monkeypatch) -> None:
    signed = await _reconcile(manifest("anonymized"), monkeypatch)
    assert signed.status_patches[0]["createdBy"] == "admin@example.com"
    spoofed = manifest("anonymized")
    spoofed["metadata"]["annotations"].pop(FULL_EXPORT_APPROVAL)  # kubectl, any creator written
    kube = await _reconcile(spoofed, monkeypatch)
    assert "createdBy" not in kube.status_patches[0]
    assert [c["kind"] for c in kube.children][-1] == "Job"  # below full it still runs
