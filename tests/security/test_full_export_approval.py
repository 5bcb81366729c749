"""Installs without the admission policy (the chart's namespaced mode) still keep `full` exports
admin-only for ExportJobs made with kubectl: the operator runs a full export only as the API server
approved it. On the real stack: apiserver, operator process, node agent, PostgreSQL, MinIO."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from agentcore.api.labels import CREATED_BY, FULL_EXPORT_APPROVAL
from agentcore.exports.approval import REFUSED
from tests.conftest import get_json, wait_for
from tests.integration.controllers.test_trainingjob import _migrate
from tests.integration.exports.test_exports import RestServer, Scenario, _namespace, token
from tests.operator_support import OperatorProcess
from tests.security.test_export_namespace import _seed

pytestmark = pytest.mark.integration
KEY = uuid.uuid4().hex * 2


@pytest.fixture(scope="module")
def stack(control_plane, node_agent, crds_installed, postgres, s3, tmp_path_factory) -> Iterator[Scenario]:
    asyncio.run(_migrate(postgres.dsn))
    tenant = _namespace(control_plane, "approval")
    asyncio.run(_seed(postgres.dsn, tenant.namespace))
    op = OperatorProcess(control_plane, postgres, s3, tmp_path_factory.mktemp("operator"))
    op.env |= {"AGENTCORE_EXPORT_APPROVAL_KEY": KEY, "AGENTCORE_EXPORT_REQUIRE_APPROVAL": "true"}
    op.start()
    os.environ["AGENTCORE_EXPORT_APPROVAL_KEY"] = KEY  # the REST API signs with it
    try:
        rest = RestServer(control_plane, postgres, s3, op.bucket)
    finally:
        os.environ.pop("AGENTCORE_EXPORT_APPROVAL_KEY")
    sc = Scenario(control_plane, rest, op)
    sc.tenant = tenant  # type: ignore[attr-defined]
    sc.headers = token("admin@corp", [tenant.namespace], admin=True)  # type: ignore[attr-defined]
    yield sc
    rest.stop()
    op.stop()
    control_plane.kubectl("delete", "namespace", tenant.namespace, "--wait=false", check=False)


def _exportjob(sc: Scenario, label: str) -> dict[str, Any]:
    return get_json(sc.cp, "-n", sc.tenant.namespace, "get", "exportjob", f"export-{sc.requested[label].id}")  # type: ignore[attr-defined]


def _apply(sc: Scenario, obj: dict[str, Any]) -> dict[str, Any]:
    ns = sc.tenant.namespace  # type: ignore[attr-defined]
    sc.cp.kubectl("-n", ns, "apply", "-f", "-", input=yaml.safe_dump(obj))

    def failed() -> dict[str, Any] | None:
        got = get_json(sc.cp, "-n", ns, "get", "exportjob", obj["metadata"]["name"])
        return got if (got.get("status") or {}).get("phase") in ("Failed", "Completed") else None

    return wait_for(failed, 60, what=f"{obj['metadata']['name']} to finish")


def _like(approved: dict[str, Any], name: str) -> dict[str, Any]:
    """A new ExportJob with the approved one's metadata and spec (what a tenant can copy)."""
    meta = approved["metadata"]
    return {
        "apiVersion": approved["apiVersion"],
        "kind": "ExportJob",
        "metadata": {"name": name, "labels": meta.get("labels", {}), "annotations": meta["annotations"]},
        "spec": copy.deepcopy(approved["spec"]),
    }


def test_the_api_servers_full_export_runs_and_a_kubectl_one_fails(stack):
    sc = stack
    sc.create("approved", sc.tenant, "trajectories", "json", "full", sc.headers)
    assert sc.finished("approved")["status"] == "completed"
    approved = _exportjob(sc, "approved")
    assert approved["metadata"]["annotations"][FULL_EXPORT_APPROVAL]

    forged = _like(approved, "export-forged")  # its name is not the one approved
    forged["metadata"]["labels"] = {}
    unsigned = _like(approved, "export-unsigned")
    unsigned["metadata"]["annotations"] = {CREATED_BY: "admin@corp"}
    unsigned["metadata"]["labels"] = {}
    for obj in (forged, unsigned):
        done = _apply(sc, obj)
        assert done["status"]["phase"] == "Failed", done["status"]
        assert done["status"]["error"] == REFUSED
        jobs = get_json(
            sc.cp, "get", "jobs", "-A", "-l", f"training.agentcore.io/exportjob-uid={done['metadata']['uid']}"
        )
        assert jobs["items"] == [], "an export pod was started for an unapproved full export"


def test_below_full_kubectl_exports_need_no_approval(stack):
    sc = stack
    obj = {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "ExportJob",
        # Whoever wrote it says an admin made it (issue 12: created-by came from this annotation).
        "metadata": {
            "name": "export-plain",
            "annotations": {CREATED_BY: "admin@corp"},
        },
        "spec": {"exportType": "trajectories", "config": {"format": "csv", "privacyLevel": "anonymized"}},
    }
    done = _apply(sc, obj)
    assert done["status"]["phase"] == "Completed", json.dumps(done["status"])
    assert "createdBy" not in done["status"], "an unsigned annotation was taken as the creator"
    # The API server's own export names its requester (it signs every export it makes).
    sc.create("signed-anonymized", sc.tenant, "trajectories", "csv", "anonymized", sc.headers)
    assert sc.finished("signed-anonymized")["status"] == "completed"
    assert _exportjob(sc, "signed-anonymized")["status"]["createdBy"] == "admin@corp"
