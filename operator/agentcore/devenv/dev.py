"""`agentcore dev` and `agentcore setup`: the local system on this machine."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from agentcore.devenv import binaries
from agentcore.devenv.controlplane import ControlPlane
from agentcore.devenv.procs import ManagedProcess, wait_until
from agentcore.devenv.services import MinioServer, PostgresServer


def run_setup(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        bins = binaries.control_plane_binaries(build=True)
        print(f"control plane binaries: {bins.kube_apiserver.parent} (etcd: {bins.etcd})")
        if not args.no_minio:
            print(f"minio: {binaries.minio_binary(build=True)}")
    except binaries.BinaryError as exc:
        print(f"agentcore setup: {exc}", file=sys.stderr)
        return 1
    print(f"ready in {time.monotonic() - started:.0f}s")
    return 0


def start_node_agent(kubeconfig: Path, state_dir: Path, node_name: str) -> ManagedProcess:
    argv = [
        sys.executable,
        "-m",
        "agentcore.devenv.nodeagent",
        "--kubeconfig",
        str(kubeconfig),
        "--state-dir",
        str(state_dir),
        "--node-name",
        node_name,
    ]
    return ManagedProcess("node-agent", argv, state_dir / "node-agent.log")


def node_ready(cp: ControlPlane, node: str) -> bool:
    out = cp.kubectl("get", "node", node, "-o", "json", check=False)
    if out.returncode != 0:
        return False
    conditions = json.loads(out.stdout)["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


class _Stop(Exception):
    pass


def run_dev(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    stop_event = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_event.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with contextlib.ExitStack() as stack:
        try:
            _bring_up(args, state, stack)
        except (binaries.BinaryError, RuntimeError, TimeoutError) as exc:
            print(f"agentcore dev: {exc}", file=sys.stderr)
            return 1
        print("agentcore dev is up. Ctrl-C stops everything.", flush=True)
        while not (stop_event.wait(1) or args.once):
            pass
        print("agentcore dev: stopping", flush=True)
    return 0


def _bring_up(args: argparse.Namespace, state: Path, stack: contextlib.ExitStack) -> None:
    cp = ControlPlane(state_dir=state / "controlplane")
    stack.callback(cp.stop)
    cp.start()
    kubeconfig = state / "kubeconfig"
    kubeconfig.write_text(cp.kubeconfig.read_text())
    kubeconfig.chmod(0o600)
    agent = start_node_agent(kubeconfig, state / "node", args.node_name)
    stack.callback(agent.stop, 15)
    wait_until(lambda: node_ready(cp, args.node_name), 60, f"node {args.node_name} Ready", agent)
    print(f"kubeconfig: {kubeconfig}")
    print(f"node: {args.node_name} Ready (logs: {state / 'node'})")
    if args.postgres:
        pg = stack.enter_context(PostgresServer(state_dir=state / "postgres"))
        (state / "database-url").write_text(pg.dsn)
        print(f"postgres: {pg.dsn}")
    if args.s3:
        s3 = stack.enter_context(MinioServer(state_dir=state / "s3"))
        print(f"s3: {s3.credentials.endpoint_url} (credentials in {s3.dir / 'credentials'})")
    print(f"try: kubectl --kubeconfig {kubeconfig} get nodes", flush=True)
