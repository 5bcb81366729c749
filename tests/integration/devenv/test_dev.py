"""`agentcore dev` brings up the control plane and a Ready node, and Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentcore.devenv.binaries import control_plane_binaries

pytestmark = pytest.mark.integration


def _descendants(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = (int(x) for x in line.split())
        children.setdefault(pp, []).append(p)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def test_dev_up_node_ready_and_clean_stop(tmp_path: Path):
    state = tmp_path / "state"
    agentcore = Path(sys.executable).parent / "agentcore"
    proc = subprocess.Popen(
        [str(agentcore), "dev", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "agentcore dev is up" in line:
                break
        assert any("agentcore dev is up" in x for x in lines), "".join(lines)
        kubeconfig = state / "kubeconfig"
        assert f"kubeconfig: {kubeconfig}" in "".join(lines)
        kubectl = str(control_plane_binaries(build=False).kubectl)
        nodes = json.loads(
            subprocess.run(
                [kubectl, "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        node = nodes["items"][0]
        assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
        # The one operator goes through leader election like the chart's replicas do.
        lease = [
            kubectl,
            "--kubeconfig",
            str(kubeconfig),
            "-n",
            "default",
            "get",
            "lease",
            "agentcore-operator",
        ]
        holder = ""
        for _ in range(150):
            out = subprocess.run(
                [*lease, "-o", "jsonpath={.spec.holderIdentity}"], capture_output=True, text=True
            )
            holder = out.stdout.strip() if out.returncode == 0 else ""
            if holder:
                break
            time.sleep(0.2)
        assert holder, "the dev operator never acquired its Lease"
        started = _descendants(proc.pid)
        assert len(started) >= 4  # etcd, apiserver, controller-manager, node agent
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    time.sleep(0.5)
    alive = [
        p
        for p in started
        if os.path.exists(f"/proc/{p}") and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()
    ]
    assert alive == [], f"processes outlived agentcore dev: {alive}"
    assert proc.returncode == 0
