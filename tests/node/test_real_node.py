"""What only a real kubelet proves: the pod runs as the YAML says, seen from inside the container."""

from __future__ import annotations

import base64
import json
import subprocess
import time

import yaml

from tests.node.conftest import Cluster

UID = 65532
MEMORY_LIMIT = 64 * 1024 * 1024
TOKEN_AUDIENCE = "agentcore-node-test"


def apply(cluster: Cluster, ns: str, *docs: dict) -> None:
    for doc in docs:
        if doc["kind"] == "Pod":
            # A shell as PID 1 ignores SIGTERM: without this, each pod takes 30 s to delete.
            doc["spec"].setdefault("terminationGracePeriodSeconds", 1)
    cluster.cp.kubectl("-n", ns, "apply", "-f", "-", input=yaml.safe_dump_all(docs))


def exec_in(cluster: Cluster, ns: str, pod: str, script: str) -> subprocess.CompletedProcess[str]:
    return cluster.cp.kubectl("-n", ns, "exec", pod, "--", "sh", "-c", script, check=False)


def wait_ready(cluster: Cluster, ns: str, *pods: str, timeout: int = 180) -> None:
    names = [f"pod/{p}" for p in pods]
    cluster.cp.kubectl(
        "-n", ns, "wait", "--for=condition=Ready", *names, f"--timeout={timeout}s", timeout=timeout + 30
    )


def pod_json(cluster: Cluster, ns: str, pod: str) -> dict:
    return json.loads(cluster.cp.kubectl("-n", ns, "get", "pod", pod, "-o", "json").stdout)


def locked_down_pod(image: str) -> dict:
    """Everything the chart's pods declare: non-root UID, read-only root, no capabilities,
    a memory limit, emptyDir / Secret / ConfigMap / projected-token volumes, two probes."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "locked"},
        "spec": {
            "securityContext": {
                "runAsUser": UID,
                "runAsGroup": UID,
                "runAsNonRoot": True,
                "fsGroup": UID,
            },
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    # Ready only once it could write its page into the emptyDir and serve it.
                    "command": [
                        "sh",
                        "-c",
                        "mkdir -p /scratch/www && echo ok > /scratch/www/ready && "
                        "exec httpd -f -p 8080 -h /scratch/www",
                    ],
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"memory": "32Mi", "cpu": "50m"},
                        "limits": {"memory": "64Mi", "cpu": "200m"},
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/ready", "port": 8080},
                        "periodSeconds": 2,
                        "timeoutSeconds": 5,
                    },
                    "livenessProbe": {
                        "exec": {"command": ["test", "-f", "/scratch/www/ready"]},
                        "initialDelaySeconds": 5,
                        "periodSeconds": 5,
                        "timeoutSeconds": 10,
                    },
                    "volumeMounts": [
                        {"name": "scratch", "mountPath": "/scratch"},
                        {"name": "secret", "mountPath": "/etc/agentcore-secret", "readOnly": True},
                        {"name": "config", "mountPath": "/etc/agentcore-config", "readOnly": True},
                        {"name": "token", "mountPath": "/var/run/agentcore", "readOnly": True},
                    ],
                }
            ],
            "volumes": [
                {"name": "scratch", "emptyDir": {"sizeLimit": "16Mi"}},
                {"name": "secret", "secret": {"secretName": "creds"}},
                {"name": "config", "configMap": {"name": "settings"}},
                {
                    "name": "token",
                    "projected": {
                        "sources": [
                            {
                                "serviceAccountToken": {
                                    "audience": TOKEN_AUDIENCE,
                                    "expirationSeconds": 3600,
                                    "path": "token",
                                }
                            }
                        ]
                    },
                },
            ],
        },
    }


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_node_is_ready_with_the_built_kubelet(cluster: Cluster) -> None:
    node = json.loads(cluster.cp.kubectl("get", "node", cluster.node.name, "-o", "json").stdout)
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == "v1.34.4"
    assert info["containerRuntimeVersion"].startswith("containerd://1.")
    assert node["status"]["addresses"][0] == {"type": "InternalIP", "address": cluster.node.node_ip}


def test_locked_down_pod_is_enforced_inside_the_container(cluster: Cluster, ns: str) -> None:
    apply(
        cluster,
        ns,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {"password": "s3cr3t"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"greeting": "hi"},
        },
        locked_down_pod(cluster.busybox.ref),
    )
    wait_ready(cluster, ns, "locked")  # the readiness probe (httpGet from kubelet) passed

    ids = exec_in(cluster, ns, "locked", "id -u; id -g")
    assert ids.stdout.split() == [str(UID), str(UID)], ids

    rootfs = exec_in(cluster, ns, "locked", "touch /written-to-root")
    assert rootfs.returncode != 0
    assert "Read-only file system" in rootfs.stderr, rootfs  # EROFS, not a permission error

    scratch = exec_in(cluster, ns, "locked", "echo data > /scratch/file && cat /scratch/file")
    assert scratch.returncode == 0 and scratch.stdout.strip() == "data", scratch

    files = exec_in(
        cluster, ns, "locked", "cat /etc/agentcore-secret/password; echo; cat /etc/agentcore-config/greeting"
    )
    assert files.stdout.split() == ["s3cr3t", "hi"], files

    token = exec_in(cluster, ns, "locked", "cat /var/run/agentcore/token").stdout.strip()
    claims = jwt_claims(token)
    assert claims["aud"] == [TOKEN_AUDIENCE]
    assert claims["sub"] == f"system:serviceaccount:{ns}:default"

    status = exec_in(cluster, ns, "locked", "grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status")
    fields = dict(line.split(":\t") for line in status.stdout.strip().splitlines())
    assert fields == {"CapEff": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1"}, status

    limit = exec_in(
        cluster,
        ns,
        "locked",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
    )
    assert int(limit.stdout.strip()) == MEMORY_LIMIT, limit

    pod = pod_json(cluster, ns, "locked")
    assert pod["status"]["podIP"].startswith("10.244.0.")
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0  # the liveness probe holds


def test_memory_limit_kills_the_container(cluster: Cluster, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hungry"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": cluster.busybox.ref,
                    "imagePullPolicy": "Never",
                    # One 128 MiB buffer against a 32 MiB limit.
                    "command": ["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"],
                    "resources": {"limits": {"memory": "32Mi"}},
                }
            ],
        },
    }
    apply(cluster, ns, pod)
    cluster.cp.kubectl(
        "-n", ns, "wait", "--for=jsonpath={.status.phase}=Failed", "pod/hungry", "--timeout=120s", timeout=150
    )
    state = pod_json(cluster, ns, "hungry")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["reason"] == "OOMKilled", state
    assert state["exitCode"] == 137


def test_kubelet_refuses_root_when_run_as_non_root(cluster: Cluster, ns: str) -> None:
    # The image's user is root (UID 0); runAsNonRoot without runAsUser must stop it starting.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rooted"},
        "spec": {
            "securityContext": {"runAsNonRoot": True},
            "containers": [
                {
                    "name": "main",
                    "image": cluster.busybox.ref,
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "60"],
                }
            ],
        },
    }
    apply(cluster, ns, pod)
    cluster.cp.kubectl(
        "-n",
        ns,
        "wait",
        "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=CreateContainerConfigError",
        "pod/rooted",
        "--timeout=120s",
        timeout=150,
    )
    waiting = pod_json(cluster, ns, "rooted")["status"]["containerStatuses"][0]["state"]["waiting"]
    assert "runAsNonRoot and image will run as root" in waiting["message"], waiting


def test_pods_reach_each_other_through_a_service(cluster: Cluster, ns: str) -> None:
    image = cluster.busybox.ref
    web = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": [
                        "sh",
                        "-c",
                        "mkdir -p /tmp/www && hostname > /tmp/www/index.html && "
                        "exec httpd -f -p 8080 -h /tmp/www",
                    ],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 2},
                }
            ]
        },
    }
    client = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client"},
        "spec": {
            "containers": [
                {"name": "main", "image": image, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}
            ]
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    apply(cluster, ns, web, client, service)
    wait_ready(cluster, ns, "web", "client")
    cluster_ip = cluster.cp.kubectl(
        "-n", ns, "get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"
    ).stdout
    web_ip = pod_json(cluster, ns, "web")["status"]["podIP"]
    client_ip = pod_json(cluster, ns, "client")["status"]["podIP"]
    assert web_ip != client_ip

    # busybox's static wget crashes in glibc's resolver; nc speaks HTTP/1.0 well enough.
    get = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {} {}"
    direct = exec_in(cluster, ns, "client", get.format(web_ip, 8080))
    assert direct.stdout.rstrip().endswith("web"), direct
    # kube-proxy may program the Service a moment after the endpoints are ready.
    via_service = None
    for _ in range(30):
        via_service = exec_in(cluster, ns, "client", get.format(cluster_ip, 80))
        if via_service.stdout.rstrip().endswith("web"):
            break
        time.sleep(1)
    assert via_service is not None and via_service.stdout.rstrip().endswith("web"), via_service


def test_pods_reach_the_apiserver_through_its_service(cluster: Cluster, ns: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "caller"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": cluster.busybox.ref,
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "3600"],
                }
            ]
        },
    }
    apply(cluster, ns, pod)
    wait_ready(cluster, ns, "caller")
    # What in-cluster clients use: the env kubelet injects, then TCP through kube-proxy's DNAT.
    env = exec_in(
        cluster, ns, "caller", "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
    ).stdout.strip()
    assert env == "10.0.0.1:443", env
    # Plain HTTP to the TLS port: Go's TLS server (the apiserver) answers with this very message.
    reached = exec_in(cluster, ns, "caller", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 10.0.0.1 443")
    assert "Client sent an HTTP request to an HTTPS server" in reached.stdout, reached
