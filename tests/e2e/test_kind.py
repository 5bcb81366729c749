"""End to end on kind (Kubernetes in Docker): build both images, load them into a kind cluster,
`helm install` the chart, run examples/trainingjob.yaml to Completed, then create an export through
the API server and download the file.

Needs a Docker engine (skipped with the reason otherwise, see conftest.py). Uses pytest-kind's
KindCluster when pytest-kind is installed, else the same few kind/kubectl calls directly; kind,
helm and kubectl are the project's own builds (agentcore.devenv.tools / binaries). PostgreSQL and
MinIO run in the cluster (tests/e2e/manifests/dependencies.yaml).

    scripts/test tests/e2e -m e2e            # AGENTCORE_E2E_KEEP=1 keeps the cluster afterwards
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentcore.devenv import tools
from tests.e2e_support import JOBS_NS, JWT_SECRET, RELEASE, call

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "agentcore-training"
TAG = "e2e"
OPERATOR_IMAGE = "ghcr.io/agentcore/agentcore-operator"
TRAINER_IMAGE = "ghcr.io/agentcore/agentcore-training"
SYSTEM_NS = "agentcore-system"
DEPS_NS = "agentcore-deps"
BUCKET = "agentcore"


def run(*argv: str | Path, timeout: float = 900, input: str | None = None) -> str:
    proc = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, input=input, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, argv))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def kubectl_path() -> Path:
    from agentcore.devenv.binaries import BinaryError, control_plane_binaries

    try:
        return control_plane_binaries(build=False).kubectl
    except BinaryError:
        found = shutil.which("kubectl")
        if not found:
            raise
        return Path(found)


class Cluster:
    """kind cluster + kubectl; pytest-kind's KindCluster when available (same method names)."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.kind = tools.kind_binary()
        self.kubectl_bin = kubectl_path()
        self.kubeconfig = workdir / "kubeconfig"
        try:
            from pytest_kind import KindCluster
        except ImportError:
            self._impl: Any = None
        else:
            self._impl = KindCluster(
                name, kubeconfig=self.kubeconfig, kind_path=self.kind, kubectl_path=self.kubectl_bin
            )

    def create(self) -> None:
        if self._impl is not None:
            self._impl.create()
            return
        run(
            self.kind,
            "create",
            "cluster",
            "--name",
            self.name,
            "--kubeconfig",
            self.kubeconfig,
            "--wait",
            "120s",
        )

    def load_docker_image(self, image: str) -> None:
        run(self.kind, "load", "docker-image", "--name", self.name, image)

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 300) -> str:
        return run(self.kubectl_bin, "--kubeconfig", self.kubeconfig, *args, input=input, timeout=timeout)

    def json(self, *args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.kubectl(*args, "-o", "json"))
        return result

    def delete(self) -> None:
        subprocess.run(
            [str(self.kind), "delete", "cluster", "--name", self.name],
            capture_output=True,
            timeout=300,
            check=False,
        )


def wait(predicate: Any, timeout: float, what: str, interval: float = 2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (AssertionError, subprocess.SubprocessError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    built = {}
    for target, repo in (("operator", OPERATOR_IMAGE), ("trainer", TRAINER_IMAGE)):
        ref = f"{repo}:{TAG}"
        run(
            "docker",
            "build",
            "-f",
            REPO / "operator" / "Dockerfile",
            "--target",
            target,
            "-t",
            ref,
            "--build-arg",
            "VERSION=e2e",
            REPO,
            timeout=1800,
        )
        built[repo] = ref
    return built


@pytest.fixture(scope="module")
def cluster(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(f"agentcore-e2e-{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("kind"))
    c.create()
    try:
        for ref in images.values():
            c.load_docker_image(ref)
        yield c
    finally:
        if not os.environ.get("AGENTCORE_E2E_KEEP"):
            c.delete()


def in_cluster_python(c: Cluster, namespace: str, code: str, env: dict[str, str] | None = None) -> str:
    """Run Python in a pod of the trainer image (already loaded); return its output."""
    name = f"py-{uuid.uuid4().hex[:6]}"
    args = [
        "-n",
        namespace,
        "run",
        name,
        f"--image={TRAINER_IMAGE}:{TAG}",
        "--restart=Never",
        "--image-pull-policy=Never",
    ]
    args += [f"--env={k}={v}" for k, v in (env or {}).items()]
    c.kubectl(*args, "--command", "--", "python", "-c", code)
    try:
        wait(
            lambda: c.json("-n", namespace, "get", "pod", name)["status"]["phase"] in ("Succeeded", "Failed"),
            180,
            f"pod {name}",
        )
        logs = c.kubectl("-n", namespace, "logs", name)
        assert c.json("-n", namespace, "get", "pod", name)["status"]["phase"] == "Succeeded", logs
        return logs
    finally:
        c.kubectl("-n", namespace, "delete", "pod", name, "--wait=false")


@pytest.fixture(scope="module")
def installed(cluster: Cluster) -> Cluster:
    c = cluster
    for ns in (SYSTEM_NS, DEPS_NS, JOBS_NS):
        c.kubectl("create", "namespace", ns)
    c.kubectl("-n", DEPS_NS, "apply", "-f", str(Path(__file__).parent / "manifests" / "dependencies.yaml"))
    for dep in ("postgres", "minio"):
        c.kubectl("-n", DEPS_NS, "rollout", "status", f"deployment/{dep}", "--timeout=300s", timeout=320)
    s3_env = {
        "AWS_ACCESS_KEY_ID": "agentcore",
        "AWS_SECRET_ACCESS_KEY": "e2e-minio-password",
        "AWS_REGION": "us-east-1",
    }
    endpoint = f"http://minio.{DEPS_NS}.svc:9000"
    in_cluster_python(
        c,
        DEPS_NS,
        f"import boto3; boto3.client('s3', endpoint_url={endpoint!r}).create_bucket(Bucket={BUCKET!r})",
        s3_env,
    )
    values = {
        "image": {"repository": OPERATOR_IMAGE, "tag": TAG, "pullPolicy": "Never"},
        "trainer": {"image": {"repository": TRAINER_IMAGE, "tag": TAG}},
        "database": {
            "url": f"postgresql://agentcore:e2e-postgres-password@postgres.{DEPS_NS}.svc:5432/agentcore"
        },
        "objectStore": {
            "url": f"s3://{BUCKET}/e2e",
            "s3": {
                "endpoint": endpoint,
                "accessKeyId": s3_env["AWS_ACCESS_KEY_ID"],
                "secretAccessKey": s3_env["AWS_SECRET_ACCESS_KEY"],
            },
        },
        "auth": {"jwt": {"secret": JWT_SECRET}},
    }
    values_file = c.kubeconfig.parent / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    # --wait: the pre-install migration hook Job, then both Deployments Ready (probes included).
    run(
        tools.helm_binary(),
        "install",
        RELEASE,
        CHART,
        "--namespace",
        SYSTEM_NS,
        "--kubeconfig",
        c.kubeconfig,
        "-f",
        values_file,
        "--wait",
        "--timeout",
        "10m",
        timeout=660,
    )
    return c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def api_url(installed: Cluster) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            str(installed.kubectl_bin),
            "--kubeconfig",
            str(installed.kubeconfig),
            "-n",
            SYSTEM_NS,
            "port-forward",
            f"svc/{RELEASE}-agentcore-training-api",
            f"{port}:8080",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait(lambda: urllib.request.urlopen(f"{url}/readyz", timeout=5).status == 200, 60, "port-forward")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


@pytest.fixture(scope="module")
def completed_job(installed: Cluster) -> dict[str, Any]:
    c = installed
    c.kubectl("-n", JOBS_NS, "apply", "-f", str(REPO / "examples" / "trainingjob.yaml"))

    def done() -> dict[str, Any] | None:
        tj = c.json("-n", JOBS_NS, "get", "trainingjob", "tool-agent-example")
        return tj if (tj.get("status") or {}).get("phase") in ("Completed", "Failed") else None

    result: dict[str, Any] = wait(done, 900, "the example TrainingJob to finish", interval=5)
    return result


def test_chart_installed(installed: Cluster) -> None:
    pods = installed.json("-n", SYSTEM_NS, "get", "pods", "-l", f"app.kubernetes.io/instance={RELEASE}")[
        "items"
    ]
    running = {
        p["metadata"]["labels"]["app.kubernetes.io/component"]
        for p in pods
        if p["status"]["phase"] == "Running"
    }
    assert {"operator", "api"} <= running
    for pod in pods:
        for container in pod["spec"]["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_example_trainingjob_completes(completed_job: dict[str, Any], api_url: str) -> None:
    status = completed_job["status"]
    assert status["phase"] == "Completed", status
    assert status["currentIteration"] == status["totalIterations"] == 40
    code, reply = call(
        api_url,
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


def test_export_and_download(installed: Cluster, completed_job: dict[str, Any], api_url: str) -> None:
    code, created = call(
        api_url,
        "POST",
        "/api/v1/exports",
        {
            "project_id": JOBS_NS,
            "name": "e2e trajectories",
            "export_type": "trajectories",
            "config": {
                "format": "csv",
                "privacy_level": "anonymized",
                "filters": {"job_ids": [completed_job["metadata"]["uid"]]},
            },
        },
    )
    assert code == 202, created

    def finished() -> dict[str, Any] | None:
        code, export = call(api_url, "GET", f"/api/v1/exports/{created['id']}")
        assert code == 200, export
        return export if export["status"] in ("completed", "failed") else None

    export = wait(finished, 600, "the export to finish", interval=3)
    assert export["status"] == "completed", export
    code, link = call(api_url, "GET", f"/api/v1/exports/{created['id']}/download")
    assert code == 200, link
    # The presigned URL names the in-cluster MinIO Service: fetch it from inside the cluster.
    body = _fetch_in_cluster(installed, link["download_url"])
    header, *rows = body.strip().splitlines()
    assert rows and "," in header
    assert len(body.encode()) == link["file_size_bytes"]


def _fetch_in_cluster(c: Cluster, url: str) -> str:
    code = f"import sys, urllib.request; sys.stdout.write(urllib.request.urlopen({url!r}).read().decode())"
    return in_cluster_python(c, JOBS_NS, code)
