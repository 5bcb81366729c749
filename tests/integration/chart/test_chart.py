"""The Helm chart against the real control plane.

- `helm template … | kubeconform -strict`, offline, with JSON schemas generated from this
  kube-apiserver's own OpenAPI document (built-in kinds), the chart's CRDs and prometheus-operator's
  ServiceMonitor and PrometheusRule CRDs.
- The chart installed the way Argo CD does it (`helm template`, hooks applied first, then the rest
  with `kubectl apply`): the node agent runs the migration hook Job and the operator and API server
  containers from the chart's own command/args/env/Secrets under the chart's service accounts (so
  its RBAC is enforced), the example TrainingJob runs to Completed through them, and the chart's
  API server answers JSON-RPC with a token signed by the chart's JWT secret.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentcore.api.labels import USABLE_BY_TRAININGJOBS
from agentcore.auth.tokens import EXPORT, VIEW, issue_token
from agentcore.devenv import tools
from agentcore.devenv.binaries import KUBERNETES_VERSION
from agentcore.devenv.procs import free_port
from agentcore.storage.staged import staged_key
from agentcore_trainer.datasets import generate
from tests.chartutil import CHART, CI_VALUES, MINIMAL, docs, helm, is_hook, template_text
from tests.conftest import REPO, get_json, wait_for

pytestmark = pytest.mark.integration

RELEASE = "ac"
FULLNAME = f"{RELEASE}-agentcore-training"
# The node agent runs */agentcore-training* images as the local `agentcore` console script.
IMAGE = {"repository": "ghcr.io/agentcore/agentcore-training", "tag": "0.1.0"}


# --- kubeconform ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_dir(control_plane, tmp_path_factory) -> Path:
    openapi = json.loads(control_plane.kubectl("get", "--raw", "/openapi/v2").stdout)
    schemas = tools.openapi_v2_kind_schemas(openapi)
    crds = tools.load_crds(sorted((CHART / "crds").glob("*.yaml")))
    schemas += tools.crd_kind_schemas([*crds, tools.servicemonitor_crd(), tools.prometheusrule_crd()])
    return tools.write_schema_dir(tmp_path_factory.mktemp("schemas"), KUBERNETES_VERSION, schemas)


def kubeconform(schema_dir: Path, manifests: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tools.kubeconform_command(schema_dir, KUBERNETES_VERSION),
        input=manifests,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_kubeconform_strict(schema_dir: Path, values: Path) -> None:
    manifests = template_text(files=[values], extra=["--include-crds"])
    proc = kubeconform(schema_dir, manifests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every object was validated against a schema: none skipped, none missing.
    summary = proc.stdout.strip().splitlines()[-1]
    count = len(docs(manifests))
    assert f"Summary: {count} resources found" in summary, summary
    assert f"Valid: {count}, Invalid: 0, Errors: 0, Skipped: 0" in summary, summary


def test_kubeconform_catches_mistakes(schema_dir: Path) -> None:
    """The schemas are real and strict: a typo, a wrong type and a bad CRD field all fail."""
    manifests = docs(template_text(MINIMAL))
    deployment = next(d for d in manifests if d["kind"] == "Deployment")
    deployment["spec"]["replica"] = 1  # typo of replicas
    service = next(d for d in manifests if d["kind"] == "Service")
    service["spec"]["ports"][0]["port"] = "eighty"
    example = yaml.safe_load_all((REPO / "examples" / "trainingjob.yaml").read_text())
    training = next(d for d in example if d["kind"] == "TrainingJob")
    training["spec"]["config"]["nIteration"] = 3  # typo of nIterations
    text = yaml.safe_dump_all([deployment, service, training])
    proc = kubeconform(schema_dir, text)
    assert proc.returncode != 0
    out = proc.stdout
    assert "additional properties 'replica' not allowed" in out, out
    assert "at '/spec/ports/0/port': got string, want integer" in out, out
    assert "additional properties 'nIteration' not allowed" in out, out
    assert "Invalid: 3" in proc.stdout, proc.stdout


def test_examples_validate(schema_dir: Path) -> None:
    text = "\n---\n".join(p.read_text() for p in sorted((REPO / "examples").glob("*job.yaml")))
    proc = kubeconform(schema_dir, text)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the chart running in the control plane -------------------------------------------------


@dataclass
class Install:
    namespace: str
    api_url: str
    objects: list[dict[str, Any]]
    values: dict[str, Any]


def _pod_logs(node_agent, namespace: str, chars: int = 3000) -> str:
    out = []
    for log in sorted((node_agent.state_dir / "pods" / namespace).glob("*/*.log")):
        out.append(f"--- {log.parent.name}/{log.name}\n{log.read_text(errors='replace')[-chars:]}")
    return "\n".join(out) or "(no pod logs)"


def _apply(cp, namespace: str, objs: list[dict[str, Any]]) -> None:
    cp.kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump_all(objs))


def _http(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _ready(url: str) -> bool:
    try:
        return _http(url)[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def installed(control_plane, node_agent, postgres, s3) -> Iterator[Install]:
    cp = control_plane
    namespace = f"chart-{uuid.uuid4().hex[:6]}"
    cp.kubectl("create", "namespace", namespace)
    wait_for(lambda: cp.kubectl("-n", namespace, "get", "sa", "default", check=False).returncode == 0, 30)
    bucket = f"chart-{uuid.uuid4().hex[:8]}"
    s3.client().create_bucket(Bucket=bucket)
    creds = s3.credentials
    api_port = free_port()
    values = {
        "image": IMAGE,
        # The node agent runs pods as host processes without cluster DNS: trainers reach the API
        # server's ingestion endpoint on the shared loopback (the real node uses its ClusterIP).
        "trainer": {"image": IMAGE, "ingestUrl": f"http://127.0.0.1:{api_port}"},
        # Namespaced mode: this release sees only its namespace, whatever other tests leave behind.
        "rbac": {"scope": "namespaced"},
        "database": {"url": postgres.dsn},
        "objectStore": {
            "url": f"s3://{bucket}/agentcore",
            "s3": {
                "endpoint": creds.endpoint_url,
                "accessKeyId": creds.access_key,
                "secretAccessKey": creds.secret_key,
            },
        },
        # Every pod shares the node agent's loopback: ports must not clash.
        # One replica: the node agent runs pods as local processes, so a second would clash on the
        # ports (the HA pair is tested with operator processes in tests/integration/controllers).
        "operator": {
            "replicas": 1,
            "livenessPort": free_port(),
            "metricsPort": free_port(),
            "resyncSeconds": 3,
        },
        "api": {"port": api_port, "metricsPort": free_port()},
    }
    # --skip-tests as Argo CD's skipTests: `helm test` objects are not part of an install.
    objs = docs(template_text(values, release=RELEASE, namespace=namespace, extra=["--skip-tests"]))
    started = time.monotonic()
    try:
        # CRDs from the chart (identical to crds/, which other tests may have applied already).
        cp.kubectl("apply", "-f", str(CHART / "crds"))
        cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CHART / "crds"))
        # As Helm and Argo CD do: pre-install hooks first (by weight), wait for them, then the rest.
        hooks = sorted(
            (o for o in objs if is_hook(o)),
            key=lambda o: int(o["metadata"]["annotations"].get("helm.sh/hook-weight", "0")),
        )
        _apply(cp, namespace, hooks)
        job = f"{FULLNAME}-migrations"
        wait_for(
            lambda: (get_json(cp, "-n", namespace, "get", "job", job).get("status") or {}).get("succeeded"),
            90,
            interval=0.5,
            what=f"migration hook Job; pod logs:\n{_pod_logs(node_agent, namespace)}",
        )
        _apply(cp, namespace, [o for o in objs if not is_hook(o)])
        api_url = f"http://127.0.0.1:{api_port}"
        try:
            wait_for(lambda: _ready(f"{api_url}/readyz"), 90, interval=0.5, what="API server /readyz")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_pod_logs(node_agent, namespace)}") from None
        print(f"chart installed and ready in {time.monotonic() - started:.1f}s")
        yield Install(namespace, api_url, objs, values)
    finally:
        cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _pods(cp, namespace: str, component: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
    items: list[dict[str, Any]] = get_json(cp, "-n", namespace, "get", "pods", "-l", selector)["items"]
    return items


def test_migration_hook_ran(control_plane, installed: Install, postgres) -> None:
    job = get_json(control_plane, "-n", installed.namespace, "get", "job", f"{FULLNAME}-migrations")
    assert job["status"]["succeeded"] == 1
    pod = _pods(control_plane, installed.namespace, "migrations")[0]
    assert pod["spec"]["serviceAccountName"] == f"{FULLNAME}-migrations"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_operator_and_api_run_from_the_chart(control_plane, installed: Install) -> None:
    for component, account in (("operator", f"{FULLNAME}-operator"), ("api", f"{FULLNAME}-api")):
        pods = _pods(control_plane, installed.namespace, component)
        assert len(pods) == 1, component
        assert pods[0]["status"]["phase"] == "Running", pods[0]["status"]
        assert pods[0]["spec"]["serviceAccountName"] == account
        container = pods[0]["spec"]["containers"][0]
        assert container["image"] == "ghcr.io/agentcore/agentcore-training:0.1.0"
    liveness = installed.values["operator"]["livenessPort"]
    assert _ready(f"http://127.0.0.1:{liveness}/healthz"), "operator liveness endpoint"
    # The one replica elected itself through the chart's Role; holderIdentity is pod name + suffix.
    operator_pod = _pods(control_plane, installed.namespace, "operator")[0]["metadata"]["name"]
    holder = wait_for(
        lambda: get_json(control_plane, "-n", installed.namespace, "get", "lease", f"{FULLNAME}-operator")[
            "spec"
        ].get("holderIdentity"),
        60,
        what="the operator's Lease",
    )
    assert holder.rpartition("_")[0] == operator_pod
    metrics = installed.values["operator"]["metricsPort"]
    status, body = _http(f"http://127.0.0.1:{metrics}/metrics")
    assert status == 200 and b"agentcore_" in body
    status, body = _http(f"{installed.api_url}/metrics")
    assert status == 401  # an admin token on the API port; Prometheus uses the metrics port
    status, body = _http(f"http://127.0.0.1:{installed.values['api']['metricsPort']}/metrics")
    assert status == 200 and b"agentcore_api_" in body


def _exported_series(exposition: str) -> set[str]:
    """Series names a scrape of this text holds, from its # TYPE lines (so a labelled metric with no
    sample yet counts too): a histogram family gives _bucket, _sum and _count."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if not line.startswith("# TYPE "):
            continue
        _, _, family, kind = line.split()
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        names.update(family + suffix for suffix in suffixes)
    return names


def test_alerts_and_dashboard_query_what_the_chart_exports(installed: Install) -> None:
    from tests.integration.chart.test_monitoring import referenced_metrics

    scraped: set[str] = set()
    for port in (installed.values["operator"]["metricsPort"], installed.values["api"]["metricsPort"]):
        status, body = _http(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        scraped |= _exported_series(body.decode())
    referenced = referenced_metrics()
    assert len(referenced) >= 15
    assert referenced <= scraped, f"not exported: {sorted(referenced - scraped)}"


def test_agentcore_check_passes_against_the_chart_api_and_fails_elsewhere(installed: Install) -> None:
    """What the chart's `helm test` Pod runs (on the real node in tests/node), here from the host."""

    def check(url: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "agentcore.cli", "check", "--url", url]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    ok = check(installed.api_url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("ok  ") == 5, ok.stdout
    # The liveness port answers /healthz but is not the API: the other checks fail, by name.
    wrong = check(f"http://127.0.0.1:{installed.values['operator']['livenessPort']}")
    assert wrong.returncode == 1 and "FAIL Exports API OpenAPI document" in wrong.stdout, wrong.stdout


def test_chart_rbac_is_what_the_cluster_enforces(control_plane, installed: Install) -> None:
    ns = installed.namespace

    def can(account: str, *what: str, namespace: str = ns) -> bool:
        proc = control_plane.kubectl(
            "auth",
            "can-i",
            *what,
            "-n",
            namespace,
            f"--as=system:serviceaccount:{ns}:{FULLNAME}-{account}",
            check=False,
        )
        return proc.stdout.strip() == "yes"

    assert can("operator", "create", "roles.rbac.authorization.k8s.io")
    assert can("operator", "patch", "trainingjobs.training.agentcore.io/status")
    assert not can("operator", "list", "secrets")
    assert not can("operator", "create", "pods")
    assert not can("operator", "list", "trainingjobs.training.agentcore.io", namespace="default")
    lease = f"leases.coordination.k8s.io/{FULLNAME}-operator"
    assert can("operator", "update", lease) and can("operator", "create", "leases.coordination.k8s.io")
    assert not can("operator", "update", "leases.coordination.k8s.io/someone-elses")
    assert not can("operator", "update", lease, namespace="default")
    assert can("api", "create", "trainingjobs.training.agentcore.io")
    assert not can("api", "get", "secrets")
    assert not can("api", "create", "jobs.batch")


def _finished(cp, node_agent, ns: str, kind: str, name: str, timeout: float, what: str) -> dict[str, Any]:
    """The resource once its phase is Completed or Failed; on a timeout, the pods' logs say why."""

    def finished() -> dict[str, Any] | None:
        obj = get_json(cp, "-n", ns, "get", kind, name)
        return obj if (obj.get("status") or {}).get("phase") in ("Completed", "Failed") else None

    try:
        done: dict[str, Any] = wait_for(finished, timeout, interval=1, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_pod_logs(node_agent, ns)}") from None
    return done


@pytest.fixture(scope="module")
def example_done(control_plane, installed: Install, node_agent) -> dict[str, Any]:
    """examples/trainingjob.yaml applied into the release's namespace and run to its end."""
    cp, ns = control_plane, installed.namespace
    started = time.monotonic()
    cp.kubectl("-n", ns, "apply", "-f", str(REPO / "examples" / "trainingjob.yaml"))

    done = _finished(
        cp, node_agent, ns, "trainingjob", "tool-agent-example", 150, "the example TrainingJob to finish"
    )
    print(f"example TrainingJob {done['status']['phase']} in {time.monotonic() - started:.1f}s")
    return done


def _token(cp, installed: Install, *permissions: str) -> str:
    """A token signed with the JWT secret the chart generated (read back from its Secret)."""
    secret = get_json(cp, "-n", installed.namespace, "get", "secret", f"{FULLNAME}-secrets")
    key = base64.b64decode(secret["data"]["jwt-secret"]).decode()
    return issue_token(key, "chart-test", permissions=permissions, namespaces=[installed.namespace])


def _call(installed: Install, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{installed.api_url}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            code, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        code, raw = exc.code, exc.read()
    try:
        return code, json.loads(raw or b"null")
    except ValueError:
        return code, raw.decode(errors="replace")


def test_example_trainingjob_completes_and_answers_jsonrpc(
    control_plane, installed: Install, example_done: dict[str, Any], node_agent
) -> None:
    cp, ns = control_plane, installed.namespace
    status = example_done["status"]
    assert status["phase"] == "Completed", f"{status}\n{_pod_logs(node_agent, ns)}"
    assert status["currentIteration"] == status["totalIterations"] == 40
    trainer_pods = get_json(cp, "-n", ns, "get", "pods", "-l", "training.agentcore.io/trainingjob")["items"]
    assert trainer_pods and trainer_pods[0]["spec"]["containers"][0]["image"].endswith(
        "agentcore-training:0.1.0"
    )

    # JSON-RPC through the chart's API server, with a token signed by the chart's JWT secret.
    token = _token(cp, installed, VIEW)

    def rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        code, reply = _call(installed, token, "POST", "/api/v1/jsonrpc", body)
        assert code == 200 and "result" in reply, reply
        result: dict[str, Any] = reply["result"]
        return result

    uid = example_done["metadata"]["uid"]
    listed = wait_for(
        lambda: [j for j in rpc("training.list_jobs", {})["jobs"] if j["status"] == "completed"],
        30,
        what="the API's job cache to see the completed job",
    )
    assert [j["job_id"] for j in listed] == [uid]
    job = rpc("training.get_status", {"job_id": uid})
    assert job["status"] == "completed"
    assert job["current_iteration"] == job["total_iterations"] == 40
    assert job["name"] == "tool-agent-example" and job["namespace"] == ns
    # A token signed with any other key is refused.
    forged = issue_token("x" * 48, "intruder", permissions=[VIEW], namespaces=[ns])
    code, _ = _call(installed, forged, "POST", "/api/v1/jsonrpc", {"jsonrpc": "2.0", "id": 1, "method": "x"})
    assert code == 401


def test_example_exportjob_runs_under_the_charts_operator(
    control_plane, installed: Install, example_done: dict[str, Any], node_agent, s3
) -> None:
    """examples/exportjob.yaml (the GitOps path): the chart's operator, with the chart's RBAC,
    creates the export pod's RBAC and Job; the file lands in the chart's bucket."""
    cp, ns = control_plane, installed.namespace
    cp.kubectl("-n", ns, "apply", "-f", str(REPO / "examples" / "exportjob.yaml"))

    done = _finished(
        cp, node_agent, ns, "exportjob", "tool-agent-trajectories", 90, "the example ExportJob to finish"
    )
    status = done["status"]
    assert status["phase"] == "Completed", f"{status}\n{_pod_logs(node_agent, ns)}"
    bucket, _, prefix = installed.values["objectStore"]["url"].removeprefix("s3://").partition("/")
    ref = status["output"]["fileRef"]
    assert ref.startswith(f"s3://{bucket}/{prefix}/"), ref
    body = s3.client().get_object(Bucket=bucket, Key=ref.removeprefix(f"s3://{bucket}/"))["Body"].read()
    assert len(body) == status["output"]["fileSizeBytes"]


def test_export_through_the_chart_api(
    control_plane, installed: Install, example_done: dict[str, Any], node_agent
) -> None:
    """POST /api/v1/exports on the chart's API server; the chart's operator runs the export pod;
    the download URL it hands out (presigned, on the S3 server) serves the CSV."""
    assert example_done["status"]["phase"] == "Completed"
    token = _token(control_plane, installed, EXPORT, VIEW)
    body = {
        "project_id": installed.namespace,
        "name": "chart export",
        "export_type": "trajectories",
        "config": {
            "format": "csv",
            "privacy_level": "anonymized",
            "filters": {"job_ids": [example_done["metadata"]["uid"]]},
        },
    }
    code, created = _call(installed, token, "POST", "/api/v1/exports", body)
    assert code == 202, created

    def completed() -> dict[str, Any] | None:
        code, export = _call(installed, token, "GET", f"/api/v1/exports/{created['id']}")
        assert code == 200, export
        assert export["status"] != "failed", f"{export}\n{_pod_logs(node_agent, installed.namespace)}"
        return export if export["status"] == "completed" else None

    try:
        wait_for(completed, 90, interval=1, what="the export to complete")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_pod_logs(node_agent, installed.namespace)}") from None
    code, link = _call(installed, token, "GET", f"/api/v1/exports/{created['id']}/download")
    assert code == 200, link
    with urllib.request.urlopen(link["download_url"], timeout=10) as resp:
        csv = resp.read().decode()
    header, *rows = csv.strip().splitlines()
    assert rows and "," in header
    assert len(csv.encode()) == link["file_size_bytes"]


def test_render_against_the_cluster_keeps_the_jwt_secret(control_plane, installed: Install) -> None:
    """On upgrade Helm looks the generated JWT secret and approval key up instead of making new ones."""
    before = get_json(control_plane, "-n", installed.namespace, "get", "secret", f"{FULLNAME}-secrets")
    again = docs(
        template_text(
            installed.values,
            release=RELEASE,
            namespace=installed.namespace,
            extra=["--dry-run=server", "--kubeconfig", str(control_plane.kubeconfig)],
        )
    )
    secret = next(
        o for o in again if o["kind"] == "Secret" and o["metadata"]["name"] == f"{FULLNAME}-secrets"
    )
    assert secret["data"]["jwt-secret"] == before["data"]["jwt-secret"]
    # And the full-export approval key: approvals made before the upgrade still verify after it.
    assert secret["data"]["export-approval-key"] == before["data"]["export-approval-key"]


def test_notes(control_plane, installed: Install, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(installed.values))
    out = helm(
        "install",
        "notes-check",
        str(CHART),
        "-n",
        installed.namespace,
        "-f",
        str(values),
        "--dry-run=server",
        "--kubeconfig",
        str(control_plane.kubeconfig),
    ).stdout
    notes = out[out.index("NOTES:") :]
    assert f"kubectl -n {installed.namespace} get pods" in notes
    assert "training.list_jobs" in notes and "jwt-secret" in notes


def test_secret_data_reaches_the_trainer_under_the_charts_rbac(
    control_plane, installed: Install, node_agent, s3
) -> None:
    """Issue 12: the chart's API server may not read Secrets (it faces tenants), so a TrainingJob
    whose data was a labelled Secret's key failed (422 from the ingestion endpoint). The chart's
    operator stages the key into the platform store; the trainer gets it from there. The copy goes
    with the TrainingJob."""
    cp, ns = control_plane, installed.namespace
    queries = generate(120, seed=7)
    literal = f"--from-literal=queries.json={json.dumps(queries)}"
    cp.kubectl("-n", ns, "create", "secret", "generic", "secret-queries", literal)
    cp.kubectl("-n", ns, "label", "secret", "secret-queries", f"{USABLE_BY_TRAININGJOBS}=true")
    doc = {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "secret-data"},
        "spec": {
            "agentId": "secret-agent",
            "config": {"nIterations": 3, "batchSize": 2, "nTrajectoriesPerQuery": 2},
            "trainingData": {"secretKeyRef": {"name": "secret-queries", "key": "queries.json"}},
        },
    }
    cp.kubectl("-n", ns, "apply", "-f", "-", input=yaml.safe_dump(doc))

    done = _finished(
        cp, node_agent, ns, "trainingjob", "secret-data", 150, "the secretKeyRef TrainingJob to finish"
    )
    assert done["status"]["phase"] == "Completed", f"{done['status']}\n{_pod_logs(node_agent, ns)}"
    assert done["status"]["currentIteration"] == 3
    bucket, _, prefix = installed.values["objectStore"]["url"].removeprefix("s3://").partition("/")
    key = f"{prefix}/{staged_key(ns, done['metadata']['uid'], 'training')}"
    staged = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert [q["query"] for q in json.loads(staged)] == [q["query"] for q in queries]

    cp.kubectl("-n", ns, "delete", "trainingjob", "secret-data", "--wait=true")

    def copy_gone() -> bool:
        return "Contents" not in s3.client().list_objects_v2(Bucket=bucket, Prefix=key)

    wait_for(copy_gone, 30, interval=0.5, what="the staged copy to go with its TrainingJob")
