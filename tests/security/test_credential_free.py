"""Issue 12, finding 1 (trainers): no platform credential in a tenant's namespace.

A TrainingJob runs on the real control plane with the operator and the node agent; its trainer pod's
env, envFrom, every file of its volumes and every Secret and ConfigMap of the namespace are searched
for the platform's database URL and password and the S3 keys (by value). The job still writes its
trajectories and checkpoints: through the API server's ingestion endpoint.
"""

from __future__ import annotations

import base64
import json

import pytest

from agentcore.api import labels
from tests.conftest import get_json, trajectory_counts, wait_for
from tests.integration.controllers.test_trainingjob import add_queries, phase_is, training_job

pytestmark = pytest.mark.integration


def _secrets(postgres, s3) -> dict[str, str]:
    return {
        "database URL": postgres.dsn,
        "database password": postgres.password,
        "S3 access key": s3.credentials.access_key,
        "S3 secret key": s3.credentials.secret_key,
    }


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [what for what, value in secrets.items() if value and value in text]


def _trainer_pod(cp, ns: str, name: str) -> dict | None:
    pods = get_json(cp, "-n", ns, "get", "pods", "-l", f"{labels.TRAININGJOB}={name}")["items"]
    return pods[0] if pods else None


def test_trainer_pod_and_namespace_hold_no_platform_credential(
    control_plane, operator, node_agent, namespace, postgres, s3
):
    secrets = _secrets(postgres, s3)
    add_queries(control_plane, namespace)
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=training_job("no-creds", 12))
    pod = wait_for(lambda: _trainer_pod(control_plane, namespace, "no-creds"), 60, what="trainer pod")
    done = wait_for(
        lambda: phase_is(control_plane, namespace, "no-creds", "Completed", "Failed"), 180, what="finish"
    )
    assert done["status"]["phase"] == "Completed", done["status"]

    container = pod["spec"]["containers"][0]
    assert "envFrom" not in container
    assert _leaks(json.dumps(container.get("env", [])), secrets) == []
    assert _leaks(json.dumps(pod["spec"].get("volumes", [])), secrets) == []
    pod_dir = node_agent.pod_dir(namespace, pod["metadata"]["name"], pod["metadata"]["uid"])
    files = [p for p in (pod_dir / "volumes").rglob("*") if p.is_file()]
    assert files, "the projected ingest token was not written"
    for path in files:
        assert _leaks(path.read_text(errors="replace"), secrets) == [], path
    for kind in ("secrets", "configmaps"):
        for obj in get_json(control_plane, "-n", namespace, "get", kind)["items"]:
            values = obj.get("data") or {}
            decoded = (
                [base64.b64decode(v).decode(errors="replace") for v in values.values()]
                if kind == "secrets"
                else list(values.values())
            )
            assert _leaks("\n".join(decoded), secrets) == [], f"{kind}/{obj['metadata']['name']}"

    # The data still arrived: trajectories in PostgreSQL, checkpoints in S3, via the endpoint.
    total, distinct = trajectory_counts(postgres.dsn, done["metadata"]["uid"])
    assert total == distinct > 0
    assert done["status"]["checkpoints"]
    assert done["status"]["checkpoints"][0]["uri"].startswith("s3://")
