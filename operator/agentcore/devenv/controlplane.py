"""A real Kubernetes control plane as local child processes: etcd, kube-apiserver and
kube-controller-manager on loopback, with generated certificates and an admin kubeconfig.

Modelled on controller-runtime's envtest, plus the controller-manager so that Jobs, garbage
collection, namespaces and service accounts behave as on a cluster.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from types import TracebackType

import yaml

from agentcore.devenv.binaries import ControlPlaneBinaries, control_plane_binaries
from agentcore.devenv.certs import KeyPair, TinyCA, service_account_keys
from agentcore.devenv.procs import ManagedProcess, free_port, wait_until

CONTROLLERS = ",".join(
    [
        "garbage-collector-controller",
        "pod-garbage-collector-controller",
        "namespace-controller",
        "serviceaccount-controller",
        "serviceaccount-token-controller",
        "root-ca-certificate-publisher-controller",
        "node-lifecycle-controller",
        "taint-eviction-controller",
        "job-controller",
        "cronjob-controller",
        "ttl-after-finished-controller",
        "replicaset-controller",
        "deployment-controller",
        "endpointslice-controller",
        # Folds aggregate-to-view/edit/admin ClusterRoles (the chart's tenant roles) into the
        # built-in roles, as on any real cluster.
        "clusterrole-aggregation-controller",
    ]
)
SERVICE_CIDR = "10.0.0.0/24"


class ControlPlane:
    """Start with `start()` (or as a context manager); `stop()` leaves no process behind."""

    def __init__(
        self,
        state_dir: Path | None = None,
        binaries: ControlPlaneBinaries | None = None,
        apiserver_port: int | None = None,
        extra_apiserver_flags: tuple[str, ...] = (),
    ) -> None:
        self._owns_dir = state_dir is None
        self.dir = Path(state_dir or tempfile.mkdtemp(prefix="agentcore-cp-"))
        self.binaries = binaries or control_plane_binaries()
        self.port = apiserver_port or free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = self.dir / "kubeconfig"
        self._extra_flags = extra_apiserver_flags
        self._procs: list[ManagedProcess] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> ControlPlane:
        try:
            self._prepare_certs()
            self._start_etcd()
            self._start_apiserver()
            self._write_kubeconfig()
            self._start_controller_manager()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in reversed(self._procs):
            proc.stop(grace=10)
        self._procs.clear()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def processes(self) -> list[ManagedProcess]:
        return list(self._procs)

    def restart_apiserver(self, grace: float = 10.0) -> None:
        """Stop kube-apiserver (SIGTERM, then SIGKILL after ``grace``) and start it again on the
        same port, certificates and etcd: what its clients see of a control-plane upgrade."""
        index, old = next((i, p) for i, p in enumerate(self._procs) if p.name == "kube-apiserver")
        old.stop(grace=grace)
        self._start_apiserver()
        # Back in its place, so `stop()` still stops the apiserver before etcd.
        self._procs.insert(index, self._procs.pop())
        self._procs.remove(old)

    # -- pieces ----------------------------------------------------------------------------
    def _prepare_certs(self) -> None:
        pki = self.dir / "pki"
        self.ca = TinyCA(pki)
        hosts = (
            "localhost",
            "127.0.0.1",
            "10.0.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
        self.serving = self.ca.issue("apiserver", "kube-apiserver", hosts=hosts, server=True)
        self.admin = self.ca.issue("admin", "agentcore-admin", org="system:masters")
        # What the apiserver shows a kubelet for `kubectl logs/exec` (the real node's kubelet
        # accepts this CA's clients).
        self.kubelet_client = self.ca.issue(
            "apiserver-kubelet-client", "kube-apiserver-kubelet-client", org="system:masters"
        )
        self.sa = service_account_keys(pki)

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        argv = [
            str(self.binaries.etcd),
            "--data-dir",
            str(self.dir / "etcd"),
            "--listen-client-urls",
            self.etcd_url,
            "--advertise-client-urls",
            self.etcd_url,
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-cluster",
            f"default=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync",
            "--log-level",
            "warn",
        ]
        proc = self._spawn("etcd", argv)
        wait_until(lambda: _http_ok(f"{self.etcd_url}/health"), 60, "etcd /health", proc)

    def _start_apiserver(self) -> None:
        argv = [
            str(self.binaries.kube_apiserver),
            "--etcd-servers",
            self.etcd_url,
            "--secure-port",
            str(self.port),
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--cert-dir",
            str(self.dir / "pki"),
            "--tls-cert-file",
            str(self.serving.cert),
            "--tls-private-key-file",
            str(self.serving.key),
            "--client-ca-file",
            str(self.ca.cert_path),
            "--authorization-mode",
            "Node,RBAC",
            "--service-cluster-ip-range",
            SERVICE_CIDR,
            "--service-account-issuer",
            f"{self.url}/",
            "--service-account-key-file",
            str(self.sa.cert),
            "--service-account-signing-key-file",
            str(self.sa.key),
            "--allow-privileged=true",
            "--endpoint-reconciler-type",
            "none",
            "--kubelet-client-certificate",
            str(self.kubelet_client.cert),
            "--kubelet-client-key",
            str(self.kubelet_client.key),
            # A node's Hostname address is its name, which does not resolve here.
            "--kubelet-preferred-address-types",
            "InternalIP",
            *self._extra_flags,
        ]
        proc = self._spawn("kube-apiserver", argv)
        wait_until(self._apiserver_ready, 120, "kube-apiserver /readyz", proc)

    def _start_controller_manager(self) -> None:
        argv = [
            str(self.binaries.kube_controller_manager),
            "--kubeconfig",
            str(self.kubeconfig),
            "--authentication-kubeconfig",
            str(self.kubeconfig),
            "--authorization-kubeconfig",
            str(self.kubeconfig),
            "--leader-elect=false",
            "--secure-port",
            str(free_port()),
            "--bind-address",
            "127.0.0.1",
            "--use-service-account-credentials=false",
            "--root-ca-file",
            str(self.ca.cert_path),
            "--service-account-private-key-file",
            str(self.sa.key),
            "--cluster-signing-cert-file",
            str(self.ca.cert_path),
            "--cluster-signing-key-file",
            str(self.ca.key_path),
            "--controllers",
            CONTROLLERS,
            "--node-monitor-grace-period",
            "40s",
            "--concurrent-job-syncs",
            "10",
        ]
        proc = self._spawn("kube-controller-manager", argv)
        # The default service account in `default` appears once the SA controllers run.
        wait_until(
            lambda: self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
            90,
            "kube-controller-manager to create the default service account",
            proc,
        )

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.dir / "logs" / f"{name}.log")
        self._procs.append(proc)
        return proc

    def _apiserver_ready(self) -> bool:
        return _http_ok(f"{self.url}/readyz", self.admin_ssl_context(), timeout=2)

    def admin_ssl_context(self) -> ssl.SSLContext:
        """TLS to the apiserver as the admin user (for clients cheaper than a kubectl process)."""
        ctx = ssl.create_default_context(cafile=str(self.ca.cert_path))
        ctx.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        return ctx

    def _write_kubeconfig(self) -> None:
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig_dict(self.url, self.ca.cert_path, self.admin)))
        self.kubeconfig.chmod(0o600)

    # -- conveniences ----------------------------------------------------------------------
    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binaries.kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        return proc


def kubeconfig_dict(server: str, ca: Path, user: KeyPair, name: str = "agentcore-local") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [
            {"name": "admin", "user": {"client-certificate": str(user.cert), "client-key": str(user.key)}}
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "admin", "namespace": "default"}}],
        "current-context": name,
    }


def _http_ok(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2) -> bool:
    with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
        return bool(resp.status == 200)
