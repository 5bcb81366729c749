"""Red team (issue 12): ExportJobs created straight on the apiserver pass the checks the API server
makes — a `full` export needs the right to it, and `created-by` names its creator — because the
ValidatingAdmissionPolicy of agentcore.api.admission asks RBAC. Real apiserver, real RBAC."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from agentcore.api.admission import (
    VERB_EXPORT_FULL,
    VERB_SET_CREATOR,
    exportjob_policy,
    exportjob_policy_binding,
)
from agentcore.api.labels import CREATED_BY

pytestmark = pytest.mark.integration
TENANT = "tenant-user"


def exportjob(name: str, level: str, creator: str | None = None) -> dict:
    meta: dict = {"name": name}
    if creator is not None:
        meta["annotations"] = {CREATED_BY: creator}
    return {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "ExportJob",
        "metadata": meta,
        "spec": {
            "exportType": "trajectories",
            "name": name,
            "config": {"format": "csv", "privacyLevel": level},
        },
    }


def apply_as(cp, namespace: str, obj: dict, user: str = TENANT) -> subprocess.CompletedProcess[str]:
    return cp.kubectl("--as", user, "-n", namespace, "apply", "-f", "-", input=json.dumps(obj), check=False)


def grant(cp, namespace: str, name: str, verbs: list[str]) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name},
        "rules": [{"apiGroups": ["training.agentcore.io"], "resources": ["exportjobs"], "verbs": verbs}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": TENANT}],
    }
    for obj in (role, binding):
        cp.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(obj))


@pytest.fixture
def guarded(control_plane, crds_installed, namespace) -> Iterator[str]:
    """The policy installed, the tenant allowed to create, read and patch ExportJobs only."""
    for obj in (exportjob_policy(), exportjob_policy_binding()):
        control_plane.kubectl("apply", "-f", "-", input=json.dumps(obj))
    grant(control_plane, namespace, "tenant", ["get", "list", "create", "patch", "update"])
    deadline = time.monotonic() + 60  # the apiserver starts enforcing a new policy within seconds
    while apply_as(control_plane, namespace, exportjob("probe", "full")).returncode == 0:
        control_plane.kubectl("-n", namespace, "delete", "exportjob", "probe")
        assert time.monotonic() < deadline, "the policy was never enforced"
        time.sleep(0.5)
    yield namespace
    for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
        control_plane.kubectl("delete", kind, exportjob_policy()["metadata"]["name"], check=False)


def test_a_full_export_needs_the_export_full_verb(control_plane, guarded):
    refused = apply_as(control_plane, guarded, exportjob("mine", "full"))
    assert refused.returncode != 0
    assert "spec.config.privacyLevel" in refused.stderr and VERB_EXPORT_FULL in refused.stderr
    assert apply_as(control_plane, guarded, exportjob("mine", "anonymized")).returncode == 0
    # Raising an existing export to full is the same right.
    raised = apply_as(control_plane, guarded, exportjob("mine", "full"))
    assert raised.returncode != 0 and VERB_EXPORT_FULL in raised.stderr
    grant(control_plane, guarded, "full", [VERB_EXPORT_FULL])
    assert apply_as(control_plane, guarded, exportjob("other", "full")).returncode == 0


def test_created_by_names_the_creator_unless_set_creator_is_granted(control_plane, guarded):
    spoofed = apply_as(control_plane, guarded, exportjob("spoof", "summary", creator="admin@corp"))
    assert spoofed.returncode != 0
    assert CREATED_BY in spoofed.stderr and TENANT in spoofed.stderr
    assert apply_as(control_plane, guarded, exportjob("own", "summary", creator=TENANT)).returncode == 0
    grant(control_plane, guarded, "creator", [VERB_SET_CREATOR])  # what the API server's account holds
    assert apply_as(control_plane, guarded, exportjob("onbehalf", "summary", creator="alice")).returncode == 0


def test_updates_that_change_neither_are_not_refused(control_plane, guarded):
    """An admin's full export, then a metadata patch by a client without either verb (the
    operator's and kopf's patches are like that)."""
    assert (
        control_plane.kubectl(
            "-n", guarded, "apply", "-f", "-", input=json.dumps(exportjob("adm", "full", "root"))
        ).returncode
        == 0
    )
    patch = json.dumps({"metadata": {"labels": {"seen": "yes"}}})
    patched = control_plane.kubectl(
        "--as", TENANT, "-n", guarded, "patch", "exportjob", "adm", "--type=merge", "-p", patch, check=False
    )
    assert patched.returncode == 0, patched.stderr
