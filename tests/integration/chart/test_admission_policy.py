"""The chart's ExportJob admission policy is agentcore.api.admission's, and the API server's
account holds the policy's two verbs (it creates full exports and sets created-by for callers)."""

from __future__ import annotations

import pytest

from agentcore.api.admission import (
    VERB_EXPORT_FULL,
    VERB_SET_CREATOR,
    exportjob_policy,
    exportjob_policy_binding,
)
from tests.chartutil import MINIMAL, by_kind, one, render

pytestmark = pytest.mark.integration


def test_the_chart_renders_the_policy_of_the_code():
    objs = render(MINIMAL)
    policy = one(objs, "ValidatingAdmissionPolicy")
    assert policy["spec"] == exportjob_policy()["spec"]
    binding = one(objs, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert {k: v for k, v in binding["spec"].items() if k != "policyName"} == {
        k: v for k, v in exportjob_policy_binding()["spec"].items() if k != "policyName"
    }


def test_the_api_server_holds_the_policy_verbs():
    role = one(render(MINIMAL), "ClusterRole", "-api")
    verbs = {v for rule in role["rules"] if "exportjobs" in rule["resources"] for v in rule["verbs"]}
    assert {VERB_EXPORT_FULL, VERB_SET_CREATOR} <= verbs


def test_namespaced_installs_create_no_cluster_scoped_policy():
    objs = render({**MINIMAL, "rbac": {"scope": "namespaced"}})
    assert not by_kind(objs, "ValidatingAdmissionPolicy") and not by_kind(
        objs, "ValidatingAdmissionPolicyBinding"
    )
    off = render({**MINIMAL, "admissionPolicy": {"enabled": False}})
    assert not by_kind(off, "ValidatingAdmissionPolicy")
