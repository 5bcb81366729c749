"""The Helm chart, rendered with the project's own helm build: lint, hardening, RBAC least
privilege, and wiring (every flag the chart passes parses with the real CLI; every Secret and
ConfigMap reference resolves)."""

from __future__ import annotations

import argparse
import base64
import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from agentcore.api.training import TrainingJob
from agentcore.cli import build_parser
from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.trainingjob import children
from tests.chartutil import CHART, CI_VALUES, MINIMAL, Obj, by_kind, helm, is_hook, one, render

WORKLOAD_KINDS = ("Deployment", "Job")
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace"}


def merged(*overrides: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in (MINIMAL, *overrides):
        _merge(out, layer)
    return out


def _merge(into: dict[str, Any], layer: dict[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def pod_specs(objs: list[Obj]) -> list[tuple[str, Obj]]:
    return [
        (f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"])
        for o in objs
        if o["kind"] in WORKLOAD_KINDS
    ]


@pytest.fixture(scope="module")
def default_objs() -> list[Obj]:
    return render(MINIMAL)


# --- lint and schema ------------------------------------------------------------------------


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_lint_strict(values: Path) -> None:
    out = helm("lint", "--strict", str(CHART), "-f", str(values)).stdout
    assert "0 chart(s) failed" in out


def test_required_values_are_enforced() -> None:
    proc = helm("template", "ac", str(CHART), check=False)
    assert proc.returncode != 0
    assert "database.url or database.existingSecret is required" in proc.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rbac": {"scope": "everywhere"}}, "value must be one of"),
        ({"unknownKey": 1}, "additional properties 'unknownKey' not allowed"),
        ({"objectStore": {"url": "gs://bucket"}}, "objectStore/url"),
        ({"api": {"port": 70000}}, "api/port"),
        ({"auth": {"jwt": {"secret": "short"}}}, "at least 32 bytes"),
        ({"rbac": {"scope": "namespaced", "namespaces": ["a", "b"]}}, "the API server watches a single"),
        (
            {"operator": {"leaderElection": {"leaseDurationSeconds": 10, "renewDeadlineSeconds": 10}}},
            "renewDeadlineSeconds must be less than leaseDurationSeconds",
        ),
        (
            {"operator": {"leaderElection": {"renewDeadlineSeconds": 2, "retryPeriodSeconds": 2}}},
            "greater than 1.2 x retryPeriodSeconds",
        ),
        ({"operator": {"replicas": 0}}, "operator/replicas"),
    ],
)
def test_bad_values_are_refused(values: dict[str, Any], message: str, tmp_path: Path) -> None:
    import yaml

    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump(merged(values)))
    proc = helm("template", "ac", str(CHART), "-f", str(f), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


# --- hardening ------------------------------------------------------------------------------


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_container_is_hardened(values: Path) -> None:
    objs = render(files=[values])
    specs = pod_specs(objs)
    assert len(specs) == 3  # operator, API server, migration hook
    for where, spec in specs:
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, where
        assert pod_sc["runAsUser"] != 0, where
        assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", where
        assert "hostNetwork" not in spec and "hostPID" not in spec, where
        mounts_tmp = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in sc["capabilities"], where
            assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"], where
            assert c["resources"]["requests"]["cpu"], where
            assert any(m["mountPath"] == "/tmp" and m["name"] in mounts_tmp for m in c["volumeMounts"]), where
            assert c["image"].startswith(("ghcr.io/agentcore/", "registry.example.com/")), where


def test_probes(default_objs: list[Obj]) -> None:
    operator = one(default_objs, "Deployment", "-operator")["spec"]["template"]["spec"]["containers"][0]
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert {p["name"]: p["containerPort"] for p in operator["ports"]} == {"healthz": 8081, "metrics": 8082}
    api = one(default_objs, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_operator_runs_two_replicas_that_elect_a_leader(default_objs: list[Obj]) -> None:
    deployment = one(default_objs, "Deployment", "-operator")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    # The new pod starts (as a standby) before an old one stops and releases the Lease.
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pdb = one(default_objs, "PodDisruptionBudget", "-operator")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    env = {e["name"]: e for e in spec["template"]["spec"]["containers"][0]["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    config = one(default_objs, "ConfigMap", "-config")["data"]
    lease = deployment["metadata"]["name"]
    election = ("LEASE", "RENEW_DEADLINE", "RETRY_PERIOD")
    assert {k: v for k, v in config.items() if any(word in k for word in election)} == {
        "AGENTCORE_LEASE_NAME": lease,
        "AGENTCORE_LEASE_NAMESPACE": "agentcore",
        "AGENTCORE_LEASE_DURATION_SECONDS": "15",
        "AGENTCORE_RENEW_DEADLINE_SECONDS": "10",
        "AGENTCORE_RETRY_PERIOD_SECONDS": "2",
    }
    for key in ("AGENTCORE_LEASE_NAME", "AGENTCORE_LEASE_DURATION_SECONDS", "AGENTCORE_RETRY_PERIOD_SECONDS"):
        assert env[key]["valueFrom"]["configMapKeyRef"]["key"] == key


@pytest.mark.parametrize("scope", ["cluster", "namespaced"])
def test_the_operator_may_touch_only_its_own_lease(scope: str) -> None:
    objs = render({**MINIMAL, "rbac": {"scope": scope}})
    role = one(objs, "Role", "-operator-leader")
    assert role["metadata"]["namespace"] == "agentcore"
    lease = one(objs, "Deployment", "-operator")["metadata"]["name"]
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [lease],
            "verbs": ["get", "update"],
        },
        # RBAC cannot restrict create by name.
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]
    binding = one(objs, "RoleBinding", "-operator-leader")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"].endswith("-operator")


def test_selectors_match_pod_labels(default_objs: list[Obj]) -> None:
    for dep in by_kind(default_objs, "Deployment"):
        selector = dep["spec"]["selector"]["matchLabels"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
    service = one(default_objs, "Service", "-api")
    api = one(default_objs, "Deployment", "-api")
    assert service["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


# --- wiring ---------------------------------------------------------------------------------


def _container(objs: list[Obj], suffix: str) -> Obj:
    container: Obj = one(objs, "Deployment", suffix)["spec"]["template"]["spec"]["containers"][0]
    return container


def _parse(container: Obj) -> argparse.Namespace:
    assert container["command"] == ["agentcore"]
    return build_parser().parse_args(container["args"])


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_flags_parse_with_the_real_cli(values: Path) -> None:
    objs = render(files=[values])
    operator = _parse(_container(objs, "-operator"))
    assert operator.command == "operator" and operator.liveness_port == 8081
    api = _parse(_container(objs, "-api"))
    assert api.command == "api" and api.port == 8080 and api.host == "0.0.0.0"
    migrate = one(objs, "Job", "-migrations")["spec"]["template"]["spec"]["containers"][0]
    assert migrate["command"][:2] == ["python", "-m"]
    assert importlib.util.find_spec(migrate["command"][2]) is not None


def test_namespaced_mode_scopes_operator_and_api() -> None:
    objs = render(files=[CHART / "ci" / "namespaced-values.yaml"])
    api = _parse(_container(objs, "-api"))
    assert api.namespace == "team-a" and api.default_namespace == "team-a"
    config = one(objs, "ConfigMap", "-config")["data"]
    assert config["AGENTCORE_WATCH_NAMESPACES"] == "team-a"


def _env(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container["env"]}


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_reference_resolves(values: Path) -> None:
    """Each secretKeyRef/configMapKeyRef names an object and key the chart renders, or a Secret
    the values say exists outside the chart."""
    import yaml

    objs = render(files=[values])
    given = yaml.safe_load(values.read_text())
    external = {
        given.get("database", {}).get("existingSecret"),
        given.get("objectStore", {}).get("s3", {}).get("existingSecret"),
        given.get("auth", {}).get("jwt", {}).get("existingSecret"),
        given.get("admissionPolicy", {}).get("approvalKey", {}).get("existingSecret"),
    } - {None, ""}
    data = {(o["kind"], o["metadata"]["name"]): o.get("data") or {} for o in objs}
    for where, spec in pod_specs(objs):
        hook = where.endswith("-migrations")
        for c in spec["containers"]:
            for env in c["env"]:
                source = env.get("valueFrom") or {}
                for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    if key not in source:
                        continue
                    ref = source[key]
                    if kind == "Secret" and ref["name"] in external:
                        continue
                    assert (kind, ref["name"]) in data, f"{where}: {env['name']} -> missing {kind}"
                    assert ref["key"] in data[(kind, ref["name"])], f"{where}: {env['name']} -> no key"
                    if not hook:  # ordinary objects never depend on hook objects (deleted after use)
                        target = next(o for o in objs if o["metadata"]["name"] == ref["name"])
                        assert not is_hook(target), f"{where} uses hook object {ref['name']}"


def test_operator_and_api_environment(default_objs: list[Obj]) -> None:
    operator = _env(_container(default_objs, "-operator"))
    assert set(operator) >= {
        "AGENTCORE_DATABASE_URL",
        "AGENTCORE_OBJECT_STORE",
        "AGENTCORE_TRAINER_IMAGE",
        "AGENTCORE_WATCH_NAMESPACES",
        "AGENTCORE_RESYNC_SECONDS",
        "AWS_REGION",
    }
    api = _env(_container(default_objs, "-api"))
    assert "AGENTCORE_JWT_SECRET" in api and "AGENTCORE_DATABASE_URL" in api
    assert "AGENTCORE_TRAINER_IMAGE" not in api
    config = one(default_objs, "ConfigMap", "-config")["data"]
    assert config["AGENTCORE_TRAINER_IMAGE"] == "ghcr.io/agentcore/agentcore-training:0.1.0"
    assert config["AGENTCORE_OBJECT_STORE"] == "s3://bucket/p"


def test_secret_contents() -> None:
    values = merged({"objectStore": {"s3": {"accessKeyId": "AK", "secretAccessKey": "SK"}}})
    secret = one(render(values), "Secret", "-secrets")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded["database-url"] == MINIMAL["database"]["url"]
    assert decoded["s3-access-key-id"] == "AK" and decoded["s3-secret-access-key"] == "SK"
    assert len(decoded["jwt-secret"]) >= 32  # generated
    given = "x" * 40
    secret = one(render(merged({"auth": {"jwt": {"secret": given}}})), "Secret", "-secrets")
    assert base64.b64decode(secret["data"]["jwt-secret"]).decode() == given


def test_without_the_admission_policy_the_operator_requires_approvals() -> None:
    """Cluster mode renders the policy; namespaced mode cannot, so there the operator requires the
    API server's approval of each full export. Both processes get the key; nothing else does."""
    cluster = render(merged())
    assert "AGENTCORE_EXPORT_REQUIRE_APPROVAL" not in _env(_container(cluster, "-operator"))
    for mode in (merged({"rbac": {"scope": "namespaced"}}), merged({"admissionPolicy": {"enabled": False}})):
        objs = render(mode)
        assert _env(_container(objs, "-operator"))["AGENTCORE_EXPORT_REQUIRE_APPROVAL"]["value"] == "true"
    for objs in (cluster, render(merged({"rbac": {"scope": "namespaced"}}))):
        secret = one(objs, "Secret", "-secrets")
        assert len(base64.b64decode(secret["data"]["export-approval-key"])) >= 32
        ref = {"name": secret["metadata"]["name"], "key": "export-approval-key"}
        for suffix in ("-operator", "-api"):
            env = _env(_container(objs, suffix))["AGENTCORE_EXPORT_APPROVAL_KEY"]
            assert env["valueFrom"]["secretKeyRef"] == ref
        others = [
            where
            for where, spec in pod_specs(objs)
            if not where.endswith(("-operator", "-api")) and "export-approval-key" in json.dumps(spec)
        ]
        assert others == []  # not the migration hook, not the helm test
    existing = render(files=[CHART / "ci" / "namespaced-values.yaml"])
    env = _env(_container(existing, "-operator"))["AGENTCORE_EXPORT_APPROVAL_KEY"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "agentcore-approval", "key": "key"}


def test_existing_secrets_replace_the_charts_own() -> None:
    objs = render(files=[CHART / "ci" / "namespaced-values.yaml"])
    assert not [s for s in by_kind(objs, "Secret") if not is_hook(s)]
    env = _env(_container(objs, "-api"))
    assert env["AGENTCORE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "agentcore-db",
        "key": "url",
    }
    assert env["AGENTCORE_JWT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "agentcore-jwt",
        "key": "hs256",
    }
    assert "AWS_ACCESS_KEY_ID" not in env  # IRSA: no static keys
    hook = one(objs, "Job", "-migrations")["spec"]["template"]["spec"]["containers"][0]
    assert _env(hook)["AGENTCORE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "agentcore-db"


def test_images_and_trainer_image() -> None:
    objs = render(files=[CHART / "ci" / "full-values.yaml"])
    digest = "sha256:" + "0123456789abcdef" * 4
    assert _container(objs, "-api")["image"] == f"ghcr.io/agentcore/agentcore-operator@{digest}"
    config = one(objs, "ConfigMap", "-config")["data"]
    assert config["AGENTCORE_TRAINER_IMAGE"] == "registry.example.com/agentcore/agentcore-training:0.1.0-cuda"
    assert config["AGENTCORE_RATE_LIMITS"] == "default=500,training.get_status=200/60"
    api = _parse(_container(objs, "-api"))
    assert api.jwt_public_key_file == "/etc/agentcore/jwt/public-key.pem"
    assert api.jwks_file == "/etc/agentcore/jwt/jwks.json"
    assert api.max_body_bytes == 33554432 and api.cancel_wait_seconds == 45


def test_optional_objects() -> None:
    default = {o["kind"] for o in render(MINIMAL)}
    assert "Ingress" not in default and "ServiceMonitor" not in default
    full = render(files=[CHART / "ci" / "full-values.yaml"])
    ingress = one(full, "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "ac-agentcore-training-api", "port": {"name": "http"}}
    monitors = {m["metadata"]["name"]: m for m in by_kind(full, "ServiceMonitor")}
    assert set(monitors) == {"ac-agentcore-training-api", "ac-agentcore-training-operator"}
    metrics_service = one(full, "Service", "-operator-metrics")
    assert monitors["ac-agentcore-training-operator"]["spec"]["selector"]["matchLabels"].items() <= (
        metrics_service["metadata"]["labels"].items()
    )
    api_metrics = one(full, "Service", "-api-metrics")
    assert api_metrics["spec"]["ports"][0]["name"] == "metrics"
    assert monitors["ac-agentcore-training-api"]["spec"]["endpoints"][0]["port"] == "metrics"
    api_service = one(full, "Service", "-api")
    assert [p["name"] for p in api_service["spec"]["ports"]] == ["http"]  # metrics stay off the api Service
    no_api = {o["kind"] + "/" + o["metadata"]["name"] for o in render(merged({"api": {"enabled": False}}))}
    assert not [n for n in no_api if n.endswith("-api")]


def test_migrations_hook() -> None:
    objs = render(MINIMAL)
    hooks = [o for o in objs if is_hook(o)]
    assert {o["kind"] for o in hooks} == {"Job", "Secret", "ServiceAccount"}
    weights = {o["kind"]: int(o["metadata"]["annotations"]["helm.sh/hook-weight"]) for o in hooks}
    assert weights["Secret"] < weights["Job"] and weights["ServiceAccount"] < weights["Job"]
    for o in hooks:
        annotations = o["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    job = one(objs, "Job", "-migrations")["spec"]
    assert job["template"]["spec"]["automountServiceAccountToken"] is False
    assert job["template"]["spec"]["serviceAccountName"] == one(hooks, "ServiceAccount")["metadata"]["name"]
    assert not [o for o in render(merged({"migrations": {"enabled": False}})) if is_hook(o)]


# --- RBAC -----------------------------------------------------------------------------------


def _rules(objs: list[Obj], suffix: str) -> list[Obj]:
    roles = [
        o for o in objs if o["kind"] in ("ClusterRole", "Role") and o["metadata"]["name"].endswith(suffix)
    ]
    assert roles, suffix
    rules: list[Obj] = roles[0]["rules"]
    return rules


def _allows(rules: list[Obj], group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)


def test_no_wildcards_and_no_secret_listing() -> None:
    for values in CI_VALUES:
        for role in [o for o in render(files=[values]) if o["kind"] in ("ClusterRole", "Role")]:
            for rule in role["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[field], role["metadata"]["name"]
                if "secrets" in rule["resources"]:
                    assert not {"list", "watch", "update", "patch", "delete"} & set(rule["verbs"])
                assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_api_server_never_reads_secrets_or_runs_workloads(default_objs: list[Obj]) -> None:
    rules = _rules(default_objs, "-api")
    for rule in rules:
        assert "secrets" not in rule["resources"]
        if rule["apiGroups"] == ["training.agentcore.io"]:
            continue
        if rule["resources"] == ["serviceaccounts"]:  # the ingestion endpoint: SA -> TrainingJob
            assert rule["verbs"] == ["get"], rule
        elif rule["resources"] == ["configmaps"]:  # rule ConfigMaps; a trainer's ConfigMap data
            assert rule["verbs"] == ["list", "get"], rule
        else:
            assert rule["verbs"] == ["list"], rule  # batch Jobs (queue position)
    assert not _allows(rules, "training.agentcore.io", "trainingjobs", "delete")
    assert not _allows(rules, "training.agentcore.io", "trainingjobs/status", "patch")


def _check_covers(operator: list[Obj], role: Obj) -> None:
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert _allows(operator, group, resource, verb), (group, resource, verb)


def _check_can_create(operator: list[Obj], manifests: list[Obj]) -> None:
    for manifest in manifests:
        group = manifest["apiVersion"].rpartition("/")[0]
        resource = manifest["kind"].lower() + "s"
        assert _allows(operator, group, resource, "create"), manifest["kind"]
        assert _allows(operator, group, resource, "get"), manifest["kind"]


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_operator_holds_what_it_grants_trainers(values: Path) -> None:
    """Kubernetes refuses to create a Role granting more than its creator holds: the operator's
    rules must cover the per-job Role it creates (agentcore.controllers.trainingjob.children.role)."""
    tj = TrainingJob.model_validate(
        {
            "apiVersion": "training.agentcore.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "tj", "namespace": "ns", "uid": "u"},
            "spec": {
                "agentId": "a",
                "config": {},
                "trainingData": {"configMapKeyRef": {"name": "q", "key": "k"}},
                "evaluationData": {"secretKeyRef": {"name": "s", "key": "k"}},
            },
        }
    )
    operator = _rules(render(files=[values]), "-operator")
    _check_covers(operator, children.role(tj))
    _check_can_create(
        operator,
        [
            children.service_account(tj),
            children.role(tj),
            children.role_binding(tj),
            children.job(tj, OperatorConfig()),
        ],
    )


@pytest.mark.parametrize(
    ("export_type", "config"),
    [
        ("trajectories", {"format": "csv", "privacyLevel": "anonymized", "redactionRule": "my-rule"}),
        (
            "reliability_report",
            {"format": "json", "privacyLevel": "aggregated", "filters": {"segments": ["a"]}},
        ),
        ("project_summary", {"format": "pdf", "privacyLevel": "full"}),
    ],
)
def test_operator_holds_what_it_grants_exporters(
    default_objs: list[Obj], export_type: str, config: dict[str, Any]
) -> None:
    from agentcore.api.exports import ExportJob
    from agentcore.controllers.exportjob import children as exportjob_children
    from agentcore.exports.keys import key_secret

    ej = ExportJob.model_validate(
        {
            "apiVersion": "training.agentcore.io/v1alpha1",
            "kind": "ExportJob",
            "metadata": {"name": "ej", "namespace": "ns", "uid": "u"},
            "spec": {"exportType": export_type, "name": "x", "config": config},
        }
    )
    operator = _rules(default_objs, "-operator")
    _check_covers(operator, exportjob_children.role(ej))
    _check_can_create(
        operator,
        [exportjob_children.role(ej), exportjob_children.role_binding(ej, "agentcore"), key_secret("ns")],
    )


@pytest.mark.parametrize("scope", ["cluster", "namespaced"])
def test_exports_run_in_the_release_namespace(scope: str) -> None:
    """Export pods and their credentials live in the platform (release) namespace: the operator may
    create, watch and delete them there, and both components are told where it is."""
    from agentcore.api.exports import ExportJob
    from agentcore.controllers.common.config import OperatorConfig as Config
    from agentcore.controllers.exportjob import children as exportjob_children
    from agentcore.exports.settings import ExportSettings

    objs = render({**MINIMAL, "rbac": {"scope": scope}}, namespace="platform")
    role = one(objs, "Role", "-operator-exports")
    assert role["metadata"]["namespace"] == "platform"
    binding = one(objs, "RoleBinding", "-operator-exports")
    assert (
        binding["metadata"]["namespace"] == "platform"
        and binding["roleRef"]["name"] == role["metadata"]["name"]
    )
    ej = ExportJob.model_validate(
        {
            "apiVersion": "training.agentcore.io/v1alpha1",
            "kind": "ExportJob",
            "metadata": {"name": "ej", "namespace": "tenant", "uid": "u"},
            "spec": {"exportType": "trajectories", "name": "x", "config": {"format": "csv"}},
        }
    )
    rules = role["rules"]
    platform = [
        exportjob_children.service_account(ej, "platform"),
        exportjob_children.secret(ej, Config(), "platform", "sa-uid"),
        exportjob_children.job(ej, ExportSettings(), "platform"),
    ]
    _check_can_create(rules, platform)
    for resource in ("jobs", "serviceaccounts"):  # the sweep lists and deletes them by label
        group = "batch" if resource == "jobs" else ""
        assert _allows(rules, group, resource, "list") and _allows(rules, group, resource, "delete")
    assert _allows(rules, "batch", "jobs", "watch")
    config = one(objs, "ConfigMap", "-config")
    assert config["data"]["AGENTCORE_PLATFORM_NAMESPACE"] == "platform"
    for deployment in by_kind(objs, "Deployment"):
        env = {
            e["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])
        }
        assert "AGENTCORE_PLATFORM_NAMESPACE" in env, deployment["metadata"]["name"]


def test_cluster_mode_binds_cluster_roles(default_objs: list[Obj]) -> None:
    bindings = by_kind(default_objs, "ClusterRoleBinding")
    assert len(bindings) == 3  # operator, API server, API server's TokenReviews (auth-delegator)
    accounts = {o["metadata"]["name"] for o in by_kind(default_objs, "ServiceAccount") if not is_hook(o)}
    for b in bindings:
        assert b["roleRef"]["kind"] == "ClusterRole"
        assert b["subjects"][0]["name"] in accounts and b["subjects"][0]["namespace"] == "agentcore"
    # The only Roles, in the release namespace: the leader-election Lease, and the export pods
    # (platform namespace) for the operator and the API server.
    assert sorted(r["metadata"]["name"] for r in by_kind(default_objs, "Role")) == [
        "ac-agentcore-training-api-exports",
        "ac-agentcore-training-operator-exports",
        "ac-agentcore-training-operator-leader",
    ]


def test_namespaced_mode_creates_nothing_cluster_scoped() -> None:
    objs = render(files=[CHART / "ci" / "namespaced-values.yaml"], namespace="agentcore-system")
    # The one exception: TokenReview (the ingestion endpoint's check of trainer tokens) is
    # cluster-scoped by nature, so only a ClusterRoleBinding to system:auth-delegator can grant it.
    cluster = [o for o in objs if o["kind"] in CLUSTER_SCOPED]
    assert [(o["kind"], o["roleRef"]["name"]) for o in cluster] == [
        ("ClusterRoleBinding", "system:auth-delegator")
    ]
    release = ("-leader", "-exports")  # the Lease and the export pods live with the release
    roles = [r for r in by_kind(objs, "Role") if not r["metadata"]["name"].endswith(release)]
    assert {r["metadata"]["namespace"] for r in roles} == {"team-a"}
    for b in by_kind(objs, "RoleBinding"):
        at_home = b["metadata"]["name"].endswith(release)
        assert b["metadata"]["namespace"] == ("agentcore-system" if at_home else "team-a")
        assert b["subjects"][0]["namespace"] == "agentcore-system"
    default_ns = render(merged({"rbac": {"scope": "namespaced"}}), namespace="solo")
    assert {r["metadata"]["namespace"] for r in by_kind(default_ns, "Role")} == {"solo"}


def test_helm_test_pod_probes_the_api_service_without_credentials() -> None:
    from tests.chartutil import is_test_hook

    objs = render(MINIMAL)
    tests = [o for o in objs if is_test_hook(o)]
    assert [o["kind"] for o in tests] == ["Pod"]
    pod = tests[0]
    assert "hook-succeeded" in pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    container = spec["containers"][0]
    assert container["command"] == ["agentcore"] and container["args"][0] == "check"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert not [e for e in container["env"] if "valueFrom" in e]  # no Secret reaches the probe
    service = one(objs, "Service", "-api")["metadata"]["name"].upper().replace("-", "_")
    url = next(e["value"] for e in container["env"] if e["name"] == "AGENTCORE_API_URL")
    assert url == f"http://$({service}_SERVICE_HOST):$({service}_SERVICE_PORT)"
    assert not [o for o in render(merged({"tests": {"enabled": False}})) if is_test_hook(o)]


def test_per_namespace_image_opt_in_reaches_the_operator(monkeypatch) -> None:
    values = {**MINIMAL, "trainer": {"allowedImagesByNamespace": {"team-a": ["reg.corp/team-a/*"]}}}
    objs = render(values)
    data = one(objs, "ConfigMap", "-config")["data"]
    operator = one(objs, "Deployment", "-operator")["spec"]["template"]["spec"]["containers"][0]
    assert "AGENTCORE_ALLOWED_IMAGES_BY_NAMESPACE" in _env(operator)
    monkeypatch.setenv("AGENTCORE_ALLOWED_IMAGES_BY_NAMESPACE", data["AGENTCORE_ALLOWED_IMAGES_BY_NAMESPACE"])
    config = OperatorConfig.from_env()
    assert config.image_refused("reg.corp/team-a/agent:1", "team-a") is None
    assert config.image_refused("reg.corp/team-a/agent:1", "team-b") is not None
