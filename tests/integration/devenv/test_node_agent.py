"""The node agent runs pods as local processes against the real control plane."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml

from tests.conftest import get_json, wait_for

pytestmark = pytest.mark.integration


def pod_manifest(
    name: str,
    code: str,
    restart: str = "Never",
    image: str = "python:3.11-slim",
    env: list | None = None,
    grace: int = 30,
) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": restart,
                "terminationGracePeriodSeconds": grace,
                "containers": [
                    {"name": "main", "image": image, "command": ["python", "-c", code], "env": env or []}
                ],
            },
        }
    )


def apply(cp, namespace: str, manifest: str) -> None:
    cp.kubectl("-n", namespace, "apply", "-f", "-", input=manifest)


def finished_pod(cp, namespace: str, name: str, timeout: float = 60) -> dict:
    def done():
        pod = get_json(cp, "-n", namespace, "get", "pod", name)
        return pod if pod["status"].get("phase") in ("Succeeded", "Failed") else None

    return wait_for(done, timeout, what=f"pod {name} to finish")


def wait_running(control_plane, namespace: str, name: str) -> dict:
    """The pod once its phase is Running."""
    return wait_for(
        lambda: (
            (p := get_json(control_plane, "-n", namespace, "get", "pod", name))["status"].get("phase")
            == "Running"
            and p
        ),
        60,
        what="pod running",
    )


def test_node_is_ready_with_lease(control_plane, node_agent):
    node = get_json(control_plane, "get", "node", node_agent.name)
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "KubeletReady"
    assert node["status"]["nodeInfo"]["operatingSystem"] == "linux"
    lease = get_json(control_plane, "-n", "kube-node-lease", "get", "lease", node_agent.name)
    assert lease["spec"]["holderIdentity"] == node_agent.name


def test_pod_succeeds_with_log_on_disk(control_plane, node_agent, namespace):
    apply(control_plane, namespace, pod_manifest("hello", "print('hi')"))
    pod = finished_pod(control_plane, namespace, "hello")
    assert pod["status"]["phase"] == "Succeeded"
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    assert pod["spec"]["nodeName"] == node_agent.name
    log = node_agent.pod_dir(namespace, "hello", pod["metadata"]["uid"]) / "main.log"
    assert log.read_text().strip() == "hi"


def test_pod_exit_code_three_fails(control_plane, node_agent, namespace):
    apply(control_plane, namespace, pod_manifest("exit3", "import sys; sys.exit(3)"))
    pod = finished_pod(control_plane, namespace, "exit3")
    assert pod["status"]["phase"] == "Failed"
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"


def test_deleted_pod_gets_sigterm_before_kill(control_plane, node_agent, namespace):
    code = textwrap.dedent("""
        import signal, sys, time
        def bye(signum, frame):
            print('got SIGTERM', flush=True); sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        print('started', flush=True)
        time.sleep(600)
    """)
    apply(control_plane, namespace, pod_manifest("sleeper", code, grace=20))
    pod = wait_running(control_plane, namespace, "sleeper")
    log = node_agent.pod_dir(namespace, "sleeper", pod["metadata"]["uid"]) / "main.log"
    wait_for(lambda: "started" in log.read_text(), 30, what="process started")
    control_plane.kubectl("-n", namespace, "delete", "pod", "sleeper", "--wait=true", "--timeout=60s")
    assert "got SIGTERM" in log.read_text()
    gone = control_plane.kubectl("-n", namespace, "get", "pod", "sleeper", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_ignored_sigterm_is_killed_after_grace(control_plane, node_agent, namespace):
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(600)"
    )
    apply(control_plane, namespace, pod_manifest("stubborn", code, grace=2))
    pod = wait_running(control_plane, namespace, "stubborn")
    log = node_agent.pod_dir(namespace, "stubborn", pod["metadata"]["uid"]) / "main.log"
    wait_for(lambda: "up" in log.read_text(), 30, what="process started")
    control_plane.kubectl("-n", namespace, "delete", "pod", "stubborn", "--wait=true", "--timeout=60s")
    assert control_plane.kubectl("-n", namespace, "get", "pod", "stubborn", check=False).returncode != 0


def test_env_sources_are_resolved(control_plane, node_agent, namespace):
    control_plane.kubectl(
        "-n", namespace, "create", "secret", "generic", "creds", "--from-literal=token=s3cr3t"
    )
    control_plane.kubectl("-n", namespace, "create", "configmap", "settings", "--from-literal=mode=fast")
    env = [
        {"name": "LITERAL", "value": "plain"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        {"name": "COMBINED", "value": "$(MODE)-$(LITERAL)"},
    ]
    names = [e["name"] for e in env]
    code = f"import os, json; print(json.dumps({{k: os.environ.get(k) for k in {names!r}}}))"
    apply(control_plane, namespace, pod_manifest("envpod", code, env=env))
    pod = finished_pod(control_plane, namespace, "envpod")
    assert pod["status"]["phase"] == "Succeeded"
    out = json.loads(
        (node_agent.pod_dir(namespace, "envpod", pod["metadata"]["uid"]) / "main.log").read_text()
    )
    assert out == {
        "LITERAL": "plain",
        "POD_NAME": "envpod",
        "POD_NS": namespace,
        "TOKEN": "s3cr3t",
        "MODE": "fast",
        "COMBINED": "fast-plain",
    }


def test_missing_secret_is_a_visible_error(control_plane, node_agent, namespace):
    env = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
    apply(control_plane, namespace, pod_manifest("nosecret", "print(1)", env=env))
    waiting = wait_for(
        lambda: (
            get_json(control_plane, "-n", namespace, "get", "pod", "nosecret")["status"]
            .get("containerStatuses", [{}])[0]
            .get("state", {})
            .get("waiting", {})
            .get("reason")
            == "CreateContainerConfigError"
        ),
        60,
        what="CreateContainerConfigError",
    )
    assert waiting


def test_unmapped_image_is_err_image_pull(control_plane, node_agent, namespace):
    apply(control_plane, namespace, pod_manifest("badimage", "print(1)", image="example.com/nothing:1"))

    def waiting():
        statuses = get_json(control_plane, "-n", namespace, "get", "pod", "badimage")["status"].get(
            "containerStatuses", []
        )
        return statuses and statuses[0]["state"].get("waiting")

    state = wait_for(waiting, 60, what="waiting state")
    assert state["reason"] == "ErrImagePull"
    assert "image table" in state["message"]


def test_restart_policy_on_failure_restarts(control_plane, node_agent, namespace):
    code = textwrap.dedent("""
        import os, sys
        marker = os.path.join(os.environ['HOME'], 'attempted')
        if not os.path.exists(marker):
            open(marker, 'w').close(); sys.exit(1)
        print('second try')
    """)
    apply(control_plane, namespace, pod_manifest("flaky", code, restart="OnFailure"))
    pod = finished_pod(control_plane, namespace, "flaky")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 1


def test_pod_gets_service_account_credentials(control_plane, node_agent, namespace):
    code = textwrap.dedent("""
        import asyncio, json
        from agentcore.kube import config
        from agentcore.kube.client import KubeClient
        async def main():
            async with KubeClient(config.load()) as c:
                review = await c.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews',
                    {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'})
                print(json.dumps(review['status']['userInfo']['username']))
        asyncio.run(main())
    """)
    apply(control_plane, namespace, pod_manifest("whoami", code))
    pod = finished_pod(control_plane, namespace, "whoami")
    log = (node_agent.pod_dir(namespace, "whoami", pod["metadata"]["uid"]) / "main.log").read_text()
    assert pod["status"]["phase"] == "Succeeded", log
    assert json.loads(log) == f"system:serviceaccount:{namespace}:default"


def test_batch_job_runs_to_completion(control_plane, node_agent, namespace):
    job = yaml.safe_dump(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "compute"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "main",
                                "image": "python:3.11",
                                "command": ["python", "-c", "print(sum(range(10)))"],
                            }
                        ],
                    }
                },
            },
        }
    )
    apply(control_plane, namespace, job)

    def complete():
        status = get_json(control_plane, "-n", namespace, "get", "job", "compute")["status"]
        return any(c["type"] == "Complete" and c["status"] == "True" for c in status.get("conditions", []))

    wait_for(complete, 90, what="Job Complete")
    status = get_json(control_plane, "-n", namespace, "get", "job", "compute")["status"]
    assert status["succeeded"] == 1


def test_projected_token_with_audience_at_the_mount_path(control_plane, node_agent, namespace):
    """A projected serviceAccountToken volume: the token the apiserver issued for that audience,
    reachable through an env value under the volume's mountPath (the node agent's rewrite rule)."""
    code = textwrap.dedent("""
        import base64, json, os
        token = open(os.environ['TOKEN_FILE']).read()
        payload = token.split('.')[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + '=' * (-len(payload) % 4)))
        print(json.dumps({'aud': claims['aud'], 'sub': claims['sub'], 'ttl': claims['exp'] - claims['iat']}))
    """)
    doc = yaml.safe_load(
        pod_manifest("projected", code, env=[{"name": "TOKEN_FILE", "value": "/var/run/tok/token"}])
    )
    token = {"audience": "agentcore.io/ingest", "expirationSeconds": 3600, "path": "token"}
    doc["spec"]["volumes"] = [{"name": "tok", "projected": {"sources": [{"serviceAccountToken": token}]}}]
    doc["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "tok", "mountPath": "/var/run/tok", "readOnly": True}
    ]
    apply(control_plane, namespace, yaml.safe_dump(doc))
    pod = finished_pod(control_plane, namespace, "projected")
    log = (node_agent.pod_dir(namespace, "projected", pod["metadata"]["uid"]) / "main.log").read_text()
    assert pod["status"]["phase"] == "Succeeded", log
    claims = json.loads(log)
    assert claims["aud"] == ["agentcore.io/ingest"]
    assert claims["sub"] == f"system:serviceaccount:{namespace}:default" and claims["ttl"] == 3600
