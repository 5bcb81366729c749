"""Production chart features (issue 14, item 4): the API server's PodDisruptionBudget, the
NetworkPolicies and the tenants' aggregated ClusterRoles, rendered and checked against the real
kube-apiserver (and its controller-manager, which does the aggregation)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.chartutil import MINIMAL, Obj, by_kind, one, render
from tests.conftest import wait_for

GROUP = "training.agentcore.io"
NP_ON: dict[str, Any] = {**MINIMAL, "networkPolicy": {"enabled": True}}


def _pod_labels(objs: list[Obj], suffix: str) -> dict[str, str]:
    labels: dict[str, str] = one(objs, "Deployment", suffix)["spec"]["template"]["metadata"]["labels"]
    return labels


def _ports(objs: list[Obj], suffix: str) -> set[int]:
    pod = one(objs, "Deployment", suffix)["spec"]["template"]["spec"]
    return {p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}


# --- PodDisruptionBudget --------------------------------------------------------------------


def test_api_pdb_only_with_more_than_one_replica() -> None:
    assert not [
        p for p in by_kind(render(MINIMAL), "PodDisruptionBudget") if p["metadata"]["name"].endswith("-api")
    ]
    objs = render({**MINIMAL, "api": {"replicas": 2}})
    pdb = one(objs, "PodDisruptionBudget", "-api")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= _pod_labels(objs, "-api").items()
    operator_labels = _pod_labels(objs, "-operator")
    assert not pdb["spec"]["selector"]["matchLabels"].items() <= operator_labels.items()


# --- NetworkPolicy --------------------------------------------------------------------------


def test_network_policies_are_off_by_default() -> None:
    assert by_kind(render(MINIMAL), "NetworkPolicy") == []


@pytest.mark.parametrize("component", ["operator", "api"])
def test_network_policy_selects_its_component_and_its_ports(component: str) -> None:
    objs = render(NP_ON)
    policy = one(objs, "NetworkPolicy", f"-{component}")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= _pod_labels(objs, f"-{component}").items()
    other = "api" if component == "operator" else "operator"
    assert not selector.items() <= _pod_labels(objs, f"-{other}").items()
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    # Only ports the pod really listens on, and for the operator only metrics.
    assert ingress_ports <= _ports(objs, f"-{component}")
    if component == "operator":
        assert ingress_ports == {8082}
    else:
        assert ingress_ports == {8080, 8083}
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_network_policy_egress_and_peers() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    db = {"ipBlock": {"cidr": "10.1.2.0/24"}}
    objs = render(
        {
            **MINIMAL,
            "networkPolicy": {
                "enabled": True,
                "api": {"metricsFrom": [peer]},
                "operator": {"metricsFrom": [peer]},
                "egress": {"database": [db], "databasePort": 5433},
            },
        }
    )
    api = one(objs, "NetworkPolicy", "-api")["spec"]
    metrics = next(r for r in api["ingress"] if r["ports"][0]["port"] == 8083)
    assert metrics["from"] == [peer]
    http = next(r for r in api["ingress"] if r["ports"][0]["port"] == 8080)
    assert "from" not in http  # the API is public by default
    egress_ports = {p["port"]: r.get("to") for r in api["egress"] for p in r["ports"]}
    assert egress_ports[5433] == [db]
    assert {443, 6443, 53, 9000} <= egress_ports.keys()
    operator = one(objs, "NetworkPolicy", "-operator")["spec"]
    assert operator["ingress"][0]["from"] == [peer]
    operator_ports = {p["port"] for r in operator["egress"] for p in r["ports"]}
    assert 5433 not in operator_ports and {443, 6443, 53, 80} <= operator_ports


@pytest.fixture
def ns(control_plane) -> Iterator[str]:
    name = f"prod-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_policies_and_pdbs_are_accepted_by_the_apiserver(control_plane, ns: str) -> None:
    values = {**NP_ON, "api": {"replicas": 2}}
    objs = [o for o in render(values, namespace=ns) if o["kind"] in ("NetworkPolicy", "PodDisruptionBudget")]
    assert len(objs) == 4
    proc = control_plane.kubectl(
        "-n", ns, "create", "--dry-run=server", "-o", "name", "-f", "-", input=yaml.safe_dump_all(objs)
    )
    assert len(proc.stdout.split()) == 4, proc.stdout


def test_the_apiserver_refuses_a_broken_policy(control_plane, ns: str) -> None:
    """The dry-run above can fail: a bad port is refused."""
    policy = one(render(NP_ON, namespace=ns), "NetworkPolicy", "-api")
    policy["spec"]["ingress"][0]["ports"][0]["port"] = 70000
    proc = control_plane.kubectl(
        "-n", ns, "create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(policy), check=False
    )
    assert proc.returncode != 0 and "port" in proc.stderr


# --- tenant ClusterRoles --------------------------------------------------------------------


def test_tenant_roles_labels_and_verbs() -> None:
    objs = render(MINIMAL)
    view = one(objs, "ClusterRole", "-view")
    edit = one(objs, "ClusterRole", "-edit")
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-view" not in edit["metadata"]["labels"]
    for role, verbs in (
        (view, {"get", "list", "watch"}),
        (edit, {"get", "list", "watch", "create", "update", "patch", "delete"}),
    ):
        assert [r["apiGroups"] for r in role["rules"]] == [[GROUP]]
        assert set(role["rules"][0]["resources"]) == {"trainingjobs", "exportjobs"}
        assert set(role["rules"][0]["verbs"]) == verbs


def test_tenant_roles_are_cluster_mode_only_and_optional() -> None:
    namespaced = render({**MINIMAL, "rbac": {"scope": "namespaced", "namespaces": ["a"]}})
    off = render({**MINIMAL, "rbac": {"tenantRoles": {"enabled": False}}})
    for objs in (namespaced, off):
        names = [o["metadata"]["name"] for o in by_kind(objs, "ClusterRole")]
        assert not [n for n in names if n.endswith(("-view", "-edit"))]


@pytest.fixture
def tenant_roles(control_plane) -> Iterator[str]:
    """The chart's tenant roles, applied under a release name of their own."""
    release = f"t{uuid.uuid4().hex[:6]}"
    roles = [
        o
        for o in by_kind(render(MINIMAL, release=release), "ClusterRole")
        if o["metadata"]["name"].endswith(("-view", "-edit"))
    ]
    text = yaml.safe_dump_all(roles)
    control_plane.kubectl("apply", "-f", "-", input=text)
    yield roles[0]["metadata"]["name"].removesuffix("-view").removesuffix("-edit")
    control_plane.kubectl("delete", "-f", "-", "--wait=false", input=text, check=False)


def test_tenant_roles_aggregate_into_view_edit_admin(
    control_plane, crds_installed, tenant_roles: str, ns: str
) -> None:
    """Through the built-in roles: the controller-manager's clusterrole-aggregation controller
    copies our rules into view/edit/admin; a user bound to them gets exactly the tenant verbs."""
    for builtin in ("view", "edit", "admin"):
        control_plane.kubectl(
            "-n",
            ns,
            "create",
            "rolebinding",
            f"u-{builtin}",
            f"--clusterrole={builtin}",
            f"--user=u-{builtin}",
        )

    def can(user: str, verb: str, resource: str) -> bool:
        proc = control_plane.kubectl(
            "auth", "can-i", verb, f"{resource}.{GROUP}", "-n", ns, f"--as={user}", check=False
        )
        return proc.stdout.strip() == "yes"

    wait_for(
        lambda: (
            can("u-view", "list", "exportjobs")
            and can("u-edit", "create", "trainingjobs")
            and can("u-admin", "delete", "exportjobs")
        ),
        60,
        what="aggregation into view/edit/admin",
    )
    for resource in ("trainingjobs", "exportjobs"):
        assert can("u-view", "watch", resource) and not can("u-view", "create", resource)
        assert can("u-edit", "patch", resource) and can("u-edit", "update", resource)
    # Full exports and creator impersonation stay admin-only: no aggregated role carries them.
    for user in ("u-view", "u-edit", "u-admin"):
        assert not can(user, "export-full", "exportjobs")
        assert not can(user, "set-creator", "exportjobs")
    assert not can("u-nobody", "list", "trainingjobs")
