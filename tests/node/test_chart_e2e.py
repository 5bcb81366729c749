"""End to end on the real node: the chart with the real images, built here with buildah.

`helm install --wait` (the migration hook Job, then both Deployments Ready through their probes),
PostgreSQL and MinIO as host services on the node IP, the example TrainingJob to Completed in a
real trainer container, an export through the API server's Service downloaded through its
presigned URL, a trainer container killed mid-run that resumes, then `helm upgrade` and
`helm uninstall` leaving none of the release's objects behind.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentcore.api import labels
from agentcore.devenv import tools
from agentcore.devenv.node.images import OciArchive
from agentcore.devenv.node.products import product_image
from agentcore.devenv.services import MinioServer, PostgresServer
from tests.conftest import REPO, trajectory_counts
from tests.e2e_support import JOBS_NS, JWT_SECRET, RELEASE, call
from tests.node.conftest import Cluster

pytestmark = pytest.mark.timeout(1800)

CHART = REPO / "charts" / "agentcore-training"
SYSTEM_NS = "agentcore-system"
FULLNAME = f"{RELEASE}-agentcore-training"
BUCKET = "agentcore"


def wait(predicate: Any, timeout: float, what: str, interval: float = 2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (AssertionError, subprocess.SubprocessError, OSError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def helm(cluster: Cluster, *args: str, timeout: float = 660) -> str:
    argv = [str(tools.helm_binary()), "--kubeconfig", str(cluster.cp.kubeconfig), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def _helm_release(cluster: Cluster, verb: str, values_file: Path, *extra: str) -> str:
    """`helm install` or `helm upgrade` of this suite's release with its values, waiting for it."""
    return helm(
        cluster, verb, RELEASE, str(CHART), "-n", SYSTEM_NS, "-f", str(values_file), *extra,
        "--wait", "--timeout", "10m",
    )  # fmt: skip


def kjson(cluster: Cluster, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(cluster.cp.kubectl(*args, "-o", "json").stdout)
    return result


@dataclass
class Images:
    operator: OciArchive
    trainer: OciArchive

    @staticmethod
    def values(image: OciArchive) -> dict[str, str]:
        repository, tag = image.ref.rsplit(":", 1)
        return {"repository": repository, "tag": tag}


@pytest.fixture(scope="module")
def images(cluster: Cluster) -> Images:
    built = Images(product_image("operator"), product_image("trainer"))
    for image in (built.operator, built.trainer):
        cluster.node.import_image(image)
    return built


@pytest.fixture(scope="module")
def services(cluster: Cluster) -> Iterator[tuple[PostgresServer, MinioServer]]:
    # On the node IP: pods reach it through the bridge, the host (and the test) directly.
    with PostgresServer(host=cluster.node.node_ip) as pg, MinioServer(host=cluster.node.node_ip) as s3:
        s3.client().create_bucket(Bucket=BUCKET)
        yield pg, s3


def chart_values(images: Images, pg: PostgresServer, s3: MinioServer) -> dict[str, Any]:
    creds = s3.credentials
    return {
        "image": {**Images.values(images.operator), "pullPolicy": "Never"},
        "trainer": {"image": Images.values(images.trainer)},
        "database": {"url": f"postgresql://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.database}"},
        "objectStore": {
            "url": f"s3://{BUCKET}/e2e",
            "s3": {
                "endpoint": creds.endpoint_url,
                "accessKeyId": creds.access_key,
                "secretAccessKey": creds.secret_key,
            },
        },
        "auth": {"jwt": {"secret": JWT_SECRET}},
    }


@dataclass
class Install:
    values_file: Path
    api_url: str
    seconds: float


@pytest.fixture(scope="module")
def installed(
    cluster: Cluster, images: Images, services: tuple[PostgresServer, MinioServer], tmp_path_factory
) -> Install:
    values_file = tmp_path_factory.mktemp("chart") / "values.yaml"
    values_file.write_text(yaml.safe_dump(chart_values(images, *services)))
    for ns in (SYSTEM_NS, JOBS_NS):
        cluster.cp.kubectl("create", "namespace", ns)
    started = time.monotonic()
    _helm_release(cluster, "install", values_file)
    took = time.monotonic() - started
    service = kjson(cluster, "-n", SYSTEM_NS, "get", "service", f"{FULLNAME}-api")
    port = service["spec"]["ports"][0]["port"]
    # The host reaches the ClusterIP through kube-proxy's rules, as a pod would.
    api_url = f"http://{service['spec']['clusterIP']}:{port}"
    # Trainer pods reach their data only through the API's ingestion endpoint. This node has no
    # cluster DNS (pods use the host's resolv.conf), so they get the ClusterIP, not the default
    # <release>-api.<ns>.svc name; the operator rolls (its config checksum changes).
    values = {
        **chart_values(images, *services),
        "trainer": {"image": Images.values(images.trainer), "ingestUrl": api_url},
    }
    values_file.write_text(yaml.safe_dump(values))
    _helm_release(cluster, "upgrade", values_file)
    return Install(values_file, api_url, took)


def release_pods(cluster: Cluster) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={RELEASE}"
    items: list[dict[str, Any]] = kjson(cluster, "-n", SYSTEM_NS, "get", "pods", "-l", selector)["items"]
    return items


def finished_job(cluster: Cluster, name: str, timeout: float = 300) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        tj = kjson(cluster, "-n", JOBS_NS, "get", "trainingjob", name)
        return tj if (tj.get("status") or {}).get("phase") in ("Completed", "Failed") else None

    try:
        result: dict[str, Any] = wait(done, timeout, f"TrainingJob {name} to finish", interval=3)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnostics(cluster)}") from None
    return result


def diagnostics(cluster: Cluster) -> str:
    """What a failed wait leaves for the reader: resources, events and the logs of every pod."""
    kubectl = cluster.cp.kubectl
    parts = [
        kubectl("get", "tj,jobs,pods", "-A", "-o", "wide", check=False).stdout,
        kubectl("-n", JOBS_NS, "get", "tj", "-o", "yaml", check=False).stdout[-3000:],
        kubectl("get", "events", "-A", "--sort-by=.lastTimestamp", check=False).stdout[-4000:],
    ]
    for ns in (SYSTEM_NS, JOBS_NS):
        for pod in kubectl("-n", ns, "get", "pods", "-o", "name", check=False).stdout.split():
            logs = kubectl("-n", ns, "logs", pod, "--all-containers", "--tail=30", check=False)
            parts.append(f"--- {ns}/{pod}\n{logs.stdout}{logs.stderr}")
    return "\n".join(parts)


def trainer_logs(cluster: Cluster) -> str:
    selector = labels.TRAININGJOB
    return cluster.cp.kubectl("-n", JOBS_NS, "logs", "-l", selector, "--tail=40", check=False).stdout


@pytest.fixture(scope="module")
def completed_job(cluster: Cluster, installed: Install) -> dict[str, Any]:
    cluster.cp.kubectl("-n", JOBS_NS, "apply", "-f", str(REPO / "examples" / "trainingjob.yaml"))
    return finished_job(cluster, "tool-agent-example")


def _exec(cluster: Cluster, pod: str, script: str) -> list[str] | None:
    """The script's output lines in the pod, or None if the pod is gone (a rollout replaced it).
    kubectl exec through the kubelet's streaming server can fail transiently under load, so it is
    tried three times; the last failure is reported with its stderr."""
    for _ in range(3):
        proc = cluster.cp.kubectl("-n", SYSTEM_NS, "exec", pod, "--", "sh", "-c", script, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.splitlines()
        if "NotFound" in proc.stderr:
            return None
        time.sleep(2)
    raise AssertionError(f"kubectl exec {pod} failed ({proc.returncode}): {proc.stdout!r} {proc.stderr!r}")


def test_chart_runs_on_the_real_node(cluster: Cluster, installed: Install) -> None:
    probed: set[str] = set()
    for pod in release_pods(cluster):
        if pod["status"]["phase"] != "Running" or pod["metadata"].get("deletionTimestamp"):
            continue
        assert pod["spec"]["nodeName"] == cluster.node.name
        probe = "id -u; touch /probe 2>&1; touch /tmp/probe && echo tmp-ok"
        inside = _exec(cluster, pod["metadata"]["name"], probe)
        if inside is None:
            continue
        assert inside[0] == "65532", inside
        assert "Read-only file system" in inside[1], inside
        assert inside[2] == "tmp-ok", inside
        probed.add(pod["metadata"]["labels"]["app.kubernetes.io/component"])
    # A real UID and a really read-only root, seen inside a running operator and API server pod.
    assert {"operator", "api"} <= probed, probed
    print(f"helm install --wait took {installed.seconds:.0f} s")


def test_helm_test_probes_the_api_service_from_a_pod(cluster: Cluster, installed: Install) -> None:
    """The chart's `helm test` Pod: `agentcore check` in the chart's image, through the API
    Service's ClusterIP found by the Service environment variables the kubelet injects."""
    # No --logs: helm reads them after the hook-succeeded cleanup. The Pod succeeds only if every
    # check passed (agentcore check exits 1 otherwise; its output is checked in tests/integration).
    out = helm(cluster, "test", RELEASE, "-n", SYSTEM_NS, "--timeout", "5m")
    assert re.search(r"TEST SUITE:\s+ac-agentcore-training-test-api\s.*Phase:\s+Succeeded", out, re.S), out
    # hook-succeeded: the Pod is gone once it passed.
    selector = "app.kubernetes.io/component=test"
    left = cluster.cp.kubectl("-n", SYSTEM_NS, "get", "pods", "-l", selector, "-o", "name")
    assert not left.stdout.split(), left.stdout


def test_example_trainingjob_completes_in_a_trainer_container(
    cluster: Cluster, completed_job: dict[str, Any], installed: Install
) -> None:
    status = completed_job["status"]
    assert status["phase"] == "Completed", f"{status}\n{trainer_logs(cluster)}"
    assert status["currentIteration"] == status["totalIterations"] == 40
    code, reply = call(
        installed.api_url,
        "POST",
        "/api/v1/jsonrpc",
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "training.get_status",
            "params": {"job_id": completed_job["metadata"]["uid"]},
        },
    )
    assert code == 200 and reply["result"]["status"] == "completed", reply


def test_export_through_the_api_service_and_presigned_download(
    completed_job: dict[str, Any], installed: Install
) -> None:
    body = {
        "project_id": JOBS_NS,
        "name": "e2e trajectories",
        "export_type": "trajectories",
        "config": {
            "format": "csv",
            "privacy_level": "anonymized",
            "filters": {"job_ids": [completed_job["metadata"]["uid"]]},
        },
    }
    code, created = call(installed.api_url, "POST", "/api/v1/exports", body)
    assert code == 202, created

    def finished() -> dict[str, Any] | None:
        code, export = call(installed.api_url, "GET", f"/api/v1/exports/{created['id']}")
        assert code == 200, export
        return export if export["status"] in ("completed", "failed") else None

    export = wait(finished, 600, "the export to finish", interval=3)
    assert export["status"] == "completed", export
    code, link = call(installed.api_url, "GET", f"/api/v1/exports/{created['id']}/download")
    assert code == 200, link
    with urllib.request.urlopen(link["download_url"], timeout=30) as resp:
        data = resp.read()
    header, *rows = data.decode().strip().splitlines()
    assert rows and "," in header
    assert len(data) == link["file_size_bytes"]


def test_killed_trainer_container_resumes(
    cluster: Cluster, completed_job: dict[str, Any], services: tuple[PostgresServer, MinioServer]
) -> None:
    docs = list(yaml.safe_load_all((REPO / "examples" / "trainingjob.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "TrainingJob")
    job["metadata"]["name"] = "killed-mid-run"
    job["spec"]["config"].update({"nIterations": 60, "checkpointInterval": 5})
    job["spec"]["backoffLimit"] = 3
    cluster.cp.kubectl("-n", JOBS_NS, "apply", "-f", "-", input=yaml.safe_dump(job))

    def checkpointed() -> dict[str, Any] | None:
        tj = kjson(cluster, "-n", JOBS_NS, "get", "trainingjob", "killed-mid-run")
        status = tj.get("status") or {}
        return tj if status.get("checkpoints") and status.get("currentIteration", 0) < 60 else None

    wait(checkpointed, 300, "a first checkpoint", interval=1)
    selector = f"{labels.TRAININGJOB}=killed-mid-run"
    pods = kjson(cluster, "-n", JOBS_NS, "get", "pods", "-l", selector)["items"]
    running = [p for p in pods if p["status"]["phase"] == "Running"]
    assert running, pods
    container_id = running[0]["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    assert cluster.node.containerd is not None
    killed = cluster.node.containerd.ctr("tasks", "kill", "--signal", "SIGKILL", container_id)
    assert killed.returncode == 0, killed.stderr

    done = finished_job(cluster, "killed-mid-run")
    assert done["status"]["phase"] == "Completed", f"{done['status']}\n{trainer_logs(cluster)}"
    assert done["status"]["currentIteration"] == 60
    pods = kjson(cluster, "-n", JOBS_NS, "get", "pods", "-l", selector)["items"]
    assert len(pods) >= 2, pods  # a second pod resumed
    pg, _ = services
    rows, distinct = trajectory_counts(pg.dsn, done["metadata"]["uid"])
    assert rows == distinct > 0  # the resumed run repeated no trajectory


def test_helm_upgrade_then_uninstall_leaves_nothing(
    cluster: Cluster, installed: Install, completed_job
) -> None:
    _helm_release(cluster, "upgrade", installed.values_file, "--set", "operator.resyncSeconds=45")
    operator = [
        p
        for p in release_pods(cluster)
        if p["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
    ]
    assert any(p["status"]["phase"] == "Running" for p in operator), operator
    helm(cluster, "uninstall", RELEASE, "-n", SYSTEM_NS, "--wait", "--timeout", "5m")
    selector = f"app.kubernetes.io/instance={RELEASE}"
    kinds = "deployments,replicasets,pods,services,configmaps,secrets,serviceaccounts,roles,rolebindings,jobs"

    def gone() -> bool:
        left = cluster.cp.kubectl("-n", SYSTEM_NS, "get", kinds, "-l", selector, "-o", "name").stdout.split()
        return not left

    wait(gone, 120, "the release's objects to go")  # pods may take their grace period
    # Helm's own record of the release (its Secrets) goes too.
    records = cluster.cp.kubectl(
        "-n", SYSTEM_NS, "get", "secrets", "-l", f"owner=helm,name={RELEASE}", "-o", "name"
    )
    assert records.stdout.split() == [], records.stdout
    cluster_wide = cluster.cp.kubectl(
        "get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name"
    ).stdout.split()
    assert cluster_wide == [], cluster_wide
