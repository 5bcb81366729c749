"""`agentcore dev` and `agentcore setup`: the local system on this machine."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from agentcore.api import admission
from agentcore.devenv import binaries
from agentcore.devenv.controlplane import ControlPlane
from agentcore.devenv.procs import ManagedProcess, free_port, wait_until
from agentcore.devenv.services import MinioServer, PostgresServer


def run_setup(args: argparse.Namespace) -> int:
    started = time.monotonic()
    quiet = getattr(args, "quiet", False)  # builds announce themselves (binaries.progress)
    try:
        bins = binaries.control_plane_binaries(build=True)
        if not quiet:
            print(f"control plane binaries: {bins.kube_apiserver.parent} (etcd: {bins.etcd})")
        if not getattr(args, "no_node", False):
            node = binaries.node_binaries(build=True)
            if not quiet:
                print(f"real node binaries: {node.kubelet.parent}")
        minio = None if args.no_minio else binaries.minio_binary(build=True)
        if minio and not quiet:
            print(f"minio: {minio}")
    except binaries.BinaryError as exc:
        print(f"agentcore setup: {exc}", file=sys.stderr)
        return 1
    if not quiet:
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
    print(f"kubeconfig: {kubeconfig}")
    _start_node(args, state, kubeconfig, cp, stack)
    env = embedded_env(state, kubeconfig)
    if args.postgres:
        pg = stack.enter_context(PostgresServer(state_dir=state / "postgres"))
        env["AGENTCORE_DATABASE_URL"] = pg.dsn
        print(f"postgres: {pg.dsn}")
    if args.s3:
        s3 = stack.enter_context(MinioServer(state_dir=state / "s3"))
        creds = s3.credentials
        if not _bucket_exists(s3):
            s3.client().create_bucket(Bucket="agentcore")
        env.update(
            {
                "AGENTCORE_OBJECT_STORE": "s3://agentcore/dev",
                "AGENTCORE_S3_ENDPOINT": creds.endpoint_url,
                "AWS_ACCESS_KEY_ID": creds.access_key,
                "AWS_SECRET_ACCESS_KEY": creds.secret_key,
            }
        )
        print(f"s3: {creds.endpoint_url} bucket agentcore (credentials in {s3.dir / 'credentials'})")
    # Trainer pods (host processes here) reach their data through the API server's ingestion endpoint.
    api_port = args.api_port or free_port()
    env["AGENTCORE_INGEST_URL"] = f"http://127.0.0.1:{api_port}"
    _start_operator(state, env, cp, stack)
    _start_api(api_port, state, env, stack)
    if args.examples:
        cp.kubectl("apply", "-f", str(_examples_dir() / "trainingjob.yaml"))
        print("applied examples/trainingjob.yaml (kubectl get tj)")
    print(f"kubectl: {cp.binaries.kubectl} (not on PATH: `agentcore kubectl ARGS` runs it)")
    print(f"try: KUBECONFIG={kubeconfig} scripts/agentcore kubectl get nodes", flush=True)


def _start_node(
    args: argparse.Namespace, state: Path, kubeconfig: Path, cp: ControlPlane, stack: contextlib.ExitStack
) -> None:
    """The node agent (the default: host processes), or the real node (kubelet + containerd)."""
    if getattr(args, "runtime", "node-agent") == "containerd":
        from agentcore.devenv.node.images import busybox_image
        from agentcore.devenv.node.realnode import RealNode

        bins = binaries.node_binaries()
        node = RealNode(cp, name=args.node_name, state_dir=state / "realnode", binaries=bins)
        stack.callback(node.stop)
        node.start()
        image = busybox_image()
        node.import_image(image)
        print(f"node: {args.node_name} Ready: kubelet + containerd (logs: {node.dir / 'logs'})")
        print(f"      images: {', '.join(node.containerd.images() if node.containerd else [])}")
        return
    agent = start_node_agent(kubeconfig, state / "node", args.node_name)
    stack.callback(agent.stop, 15)
    wait_until(lambda: node_ready(cp, args.node_name), 60, f"node {args.node_name} Ready", agent)
    print(f"node: {args.node_name} Ready (logs: {state / 'node'})")


def _start_api(port: int, state: Path, env: dict[str, str], stack: contextlib.ExitStack) -> None:
    """The API server with a persistent HS256 secret and a real admin token for this machine's user."""
    from agentcore.auth.tokens import ADMIN_ROLE, generate_secret, issue_token

    secret_file = state / "jwt-secret"
    if not secret_file.exists():
        secret_file.write_text(generate_secret())
        secret_file.chmod(0o600)
    argv = [
        str(Path(sys.executable).parent / "agentcore"),
        "api",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--jwt-secret-file",
        str(secret_file),
        "--default-namespace",
        "default",
    ]
    api = ManagedProcess("api", argv, state / "api.log", env=env)
    stack.callback(api.stop, 15)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _http_ok(f"{url}/readyz"), 60, "API server /readyz", api)
    token = issue_token(
        secret_file.read_text().strip(),
        "dev-admin",
        namespaces=("*",),
        roles=(ADMIN_ROLE,),
        ttl=30 * 24 * 3600,
    )
    for name, value in (("api-url", url), ("token", token)):
        (state / name).write_text(value + "\n")
        (state / name).chmod(0o600)
    print(f"api: {url}/api/v1/jsonrpc (log: {state / 'api.log'})")
    print(f"token: {token}")
    print(f"       (also in {state / 'token'}; api-url in {state / 'api-url'})")


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


def _bucket_exists(s3: MinioServer) -> bool:
    return any(b["Name"] == "agentcore" for b in s3.client().list_buckets().get("Buckets", []))


def _examples_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "examples"


def _crds_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "crds"


SYSTEM_NAMESPACE = "agentcore-system"


def embedded_env(state: Path, kubeconfig: Path) -> dict[str, str]:
    """The embedded defaults: SQLite and a local object store under the state directory."""
    return {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "AGENTCORE_DATABASE_URL": os.environ.get("AGENTCORE_DATABASE_URL")
        or f"sqlite+aiosqlite:///{state / 'agentcore.db'}",
        "AGENTCORE_OBJECT_STORE": os.environ.get("AGENTCORE_OBJECT_STORE") or f"file://{state / 'objects'}",
        # On this machine, webhook receivers are local processes: let the operator reach loopback.
        "AGENTCORE_WEBHOOK_ALLOWED_NETWORKS": os.environ.get("AGENTCORE_WEBHOOK_ALLOWED_NETWORKS")
        or "127.0.0.0/8,::1/128",
        # Export pods and their credentials: the system namespace, not the tenants' (docs/security.md).
        "AGENTCORE_PLATFORM_NAMESPACE": os.environ.get("AGENTCORE_PLATFORM_NAMESPACE") or SYSTEM_NAMESPACE,
    }


def _start_operator(state: Path, env: dict[str, str], cp: ControlPlane, stack: contextlib.ExitStack) -> None:
    cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(_crds_dir()))
    cp.kubectl("wait", "--for=condition=Established", "-f", str(_crds_dir()))
    # The chart's ExportJob admission policy, so kubectl-created exports are checked here too.
    policy = [admission.exportjob_policy(), admission.exportjob_policy_binding()]
    cp.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": policy}))
    system = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": env["AGENTCORE_PLATFORM_NAMESPACE"]},
    }
    cp.kubectl("apply", "-f", "-", input=json.dumps(system))
    # The one migration of the local system, before any component starts (none migrates itself).
    asyncio.run(_migrate(env["AGENTCORE_DATABASE_URL"]))
    argv = [str(Path(sys.executable).parent / "agentcore"), "operator", "--log-format", "plain"]
    operator = ManagedProcess("operator", argv, state / "operator.log", env=env)
    stack.callback(operator.stop, 15)
    print(f"operator: running (log: {state / 'operator.log'}; database {env['AGENTCORE_DATABASE_URL']})")


async def _migrate(url: str) -> None:
    from agentcore.storage.db import make_engine
    from agentcore.storage.migrate import upgrade

    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
