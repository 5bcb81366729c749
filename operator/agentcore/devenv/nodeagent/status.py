"""Pod and Node status documents, written as a kubelet writes them."""

from __future__ import annotations

import datetime as dt
import os
import platform
from dataclasses import dataclass, field
from typing import Any


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerState:
    name: str
    image: str
    restart_count: int = 0
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)

    def running(self) -> None:
        self.state = {"running": {"startedAt": now()}}

    def waiting(self, reason: str, message: str) -> None:
        self.state = {"waiting": {"reason": reason, "message": message}}

    def terminated(self, exit_code: int, started_at: str, reason: str | None = None) -> None:
        self.state = {
            "terminated": {
                "exitCode": exit_code,
                "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                "startedAt": started_at,
                "finishedAt": now(),
            }
        }

    @property
    def exit_code(self) -> int | None:
        term = self.state.get("terminated")
        return None if term is None else int(term["exitCode"])

    def to_status(self) -> dict[str, Any]:
        running = "running" in self.state
        return {
            "name": self.name,
            "image": self.image,
            "imageID": f"local://{self.image}",
            "containerID": f"agentcore://{self.name}",
            "ready": running,
            "started": running,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }


def pod_conditions(ready: bool, initialized: bool) -> list[dict[str, Any]]:
    stamp = now()

    def cond(kind: str, value: bool) -> dict[str, Any]:
        return {"type": kind, "status": "True" if value else "False", "lastTransitionTime": stamp}

    return [
        cond("PodScheduled", True),
        cond("Initialized", initialized),
        cond("ContainersReady", ready),
        cond("Ready", ready),
    ]


def node_status(name: str, labels: dict[str, str]) -> dict[str, Any]:
    stamp = now()
    cpu = str(os.cpu_count() or 1)
    mem_kib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024

    def cond(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }

    capacity = {"cpu": cpu, "memory": f"{mem_kib}Ki", "pods": "250", "ephemeral-storage": "100Gi"}
    return {
        "conditions": [
            cond("Ready", "True", "KubeletReady", "agentcore node agent is posting ready status"),
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "sufficient memory"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "sufficient PIDs"),
            cond("NetworkUnavailable", "False", "RouteCreated", "loopback network"),
        ],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
        "capacity": capacity,
        "allocatable": capacity,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                platform.machine(), platform.machine()
            ),
            "operatingSystem": "linux",
            "osImage": "agentcore node agent",
            "kernelVersion": platform.release(),
            "kubeletVersion": labels.get("agentcore.io/kubelet-version", "v1.34.4"),
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "agentcore://process",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }
