"""A real Kubernetes node on this machine: containerd + runc + the CNI bridge (Debian packages),
kubelet and kube-proxy (built from the Kubernetes module of the control plane), and kube-scheduler,
joined to a `ControlPlane` with client certificates from its CA.

Unlike the node agent, this runs images in containers: probes, volumes, `securityContext` and
resource limits are enforced by the real kubelet. It owns machine-wide things (a bridge, iptables
chains, a cgroup subtree), so one runs per machine at a time: a lock file serialises them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import yaml

from agentcore.devenv.binaries import BinaryError, NodeBinaries, node_binaries
from agentcore.devenv.controlplane import ControlPlane, kubeconfig_dict
from agentcore.devenv.node import cleanup
from agentcore.devenv.node.containerd import Containerd, PodNetwork, check_host
from agentcore.devenv.node.images import OciArchive, pause_image
from agentcore.devenv.procs import ManagedProcess, free_port, wait_until

POD_NETWORK = PodNetwork(bridge="agentcore0", subnet="10.244.0.0/24", gateway="10.244.0.1")
CGROUP_ROOT = "/agentcore-node"
LOCK_FILE = Path("/run/lock/agentcore-realnode.lock")
# Generous: two cores are shared with other test runs, and a CRI call can stall for seconds.
RUNTIME_REQUEST_TIMEOUT = "10m"


def primary_address() -> str:
    """The address the host uses for its default route: kubelet serves on it, pods reach it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("198.51.100.1", 9))  # TEST-NET-2; a UDP connect sends nothing
            return str(sock.getsockname()[0])
        except OSError as exc:
            raise BinaryError(f"the host has no IPv4 default route for kubelet's node IP: {exc}") from exc


def apiserver_flags(node_ip: str) -> tuple[str, ...]:
    """`ControlPlane(extra_apiserver_flags=...)` for a control plane whose pods run on a real node:
    pods reach the apiserver through the `kubernetes` Service (10.0.0.1), whose endpoint the
    apiserver then keeps at `node_ip`, so it must listen there too (it still needs a client
    certificate or token for anything, as on any cluster)."""
    return (
        "--bind-address",
        "0.0.0.0",
        "--advertise-address",
        node_ip,
        "--endpoint-reconciler-type",
        "lease",
    )


class MachineLock:
    """An exclusive flock on LOCK_FILE, waited for up to `timeout` seconds."""

    def __init__(self, path: Path = LOCK_FILE) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def acquire(self, timeout: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "unknown"
                    fh.close()
                    raise BinaryError(
                        f"another real node runs on this machine (pid {holder}, lock {self.path}); "
                        "stop it first: they would share the pod bridge, iptables and cgroups"
                    ) from None
                time.sleep(1)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class RealNode:
    """Start with `start()` (or as a context manager); `stop()` removes pods, containers, mounts,
    cgroups, iptables chains and the bridge it made, and leaves no process behind."""

    def __init__(
        self,
        control_plane: ControlPlane,
        name: str = "agentcore-node",
        state_dir: Path | None = None,
        binaries: NodeBinaries | None = None,
        lock_timeout: float = 0,
    ) -> None:
        self.cp = control_plane
        self.name = name
        self._owns_dir = state_dir is None
        self.dir = Path(state_dir or tempfile.mkdtemp(prefix="agentcore-realnode-"))
        self.binaries = binaries or node_binaries(build=False)
        self.lock_timeout = lock_timeout
        self.node_ip = primary_address()
        self.net = POD_NETWORK
        self._lock = MachineLock()
        self._procs: list[ManagedProcess] = []
        self.containerd: Containerd | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> RealNode:
        check_host()
        self._lock.acquire(self.lock_timeout)
        try:
            # What a previous run killed with SIGKILL may have left (the lock says it is gone).
            cleanup.remove_bridge(self.net.bridge)
            cleanup.remove_cgroups(CGROUP_ROOT)
            self.containerd = Containerd(self.dir / "containerd", pause_image(), self.net)
            self.containerd.start()
            self._write_kubeconfigs()
            self._start_scheduler()
            self._start_kubelet()
            self._start_kube_proxy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self._stop_all()
        finally:
            self._lock.release()
            if self._owns_dir:
                cleanup.remove_tree(self.dir)

    def __enter__(self) -> RealNode:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def processes(self) -> list[ManagedProcess]:
        return list(self._procs)

    def import_image(self, image: OciArchive) -> None:
        if self.containerd is None:
            raise RuntimeError("the node is not started")
        self.containerd.import_image(image)

    def ready(self) -> bool:
        proc = self.cp.kubectl(
            "get",
            "node",
            self.name,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            check=False,
        )
        return proc.returncode == 0 and proc.stdout.strip() == "True"

    # -- pieces ----------------------------------------------------------------------------
    def _kubeconfig(self, file: str, cert: str, cn: str, org: str | None = None) -> Path:
        pair = self.cp.ca.issue(cert, cn, org=org)
        path = self.dir / file
        path.write_text(yaml.safe_dump(kubeconfig_dict(self.cp.url, self.cp.ca.cert_path, pair)))
        path.chmod(0o600)
        return path

    def _write_kubeconfigs(self) -> None:
        # The Node authorizer and NodeRestriction know a kubelet by this name and group.
        self.kubelet_kubeconfig = self._kubeconfig(
            "kubelet.kubeconfig", f"kubelet-{self.name}", f"system:node:{self.name}", "system:nodes"
        )
        # Bound to the built-in system:node-proxier and system:kube-scheduler roles.
        self.proxy_kubeconfig = self._kubeconfig("kube-proxy.kubeconfig", "kube-proxy", "system:kube-proxy")
        self.scheduler_kubeconfig = self._kubeconfig(
            "kube-scheduler.kubeconfig", "kube-scheduler", "system:kube-scheduler"
        )

    def _start_scheduler(self) -> None:
        kubeconfig = str(self.scheduler_kubeconfig)
        argv = [
            str(self.binaries.kube_scheduler),
            "--kubeconfig",
            kubeconfig,
            "--authentication-kubeconfig",
            kubeconfig,
            "--authorization-kubeconfig",
            kubeconfig,
            "--leader-elect=false",
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            str(free_port()),
        ]
        self._spawn("kube-scheduler", argv)

    def kubelet_config(self) -> dict[str, object]:
        assert self.containerd is not None
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.node_ip,
            "port": free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            # Only clients with a certificate of the control plane's CA (the apiserver, for logs and
            # exec); a local node has no other tenants to tell apart.
            "authentication": {
                "x509": {"clientCAFile": str(self.cp.ca.cert_path)},
                "webhook": {"enabled": False},
                "anonymous": {"enabled": False},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": f"unix://{self.containerd.socket}",
            "runtimeRequestTimeout": RUNTIME_REQUEST_TIMEOUT,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": CGROUP_ROOT,
            "failCgroupV1": False,  # this machine mounts cgroup v1 (hybrid)
            "failSwapOn": False,
            # Lowering our own oom_score_adj needs CAP_SYS_RESOURCE, which this machine withholds.
            "oomScoreAdj": 0,
            "podLogsDir": str(self.dir / "pod-logs"),
            "resolvConf": "/etc/resolv.conf",
            "serializeImagePulls": False,
            "registerNode": True,
            "nodeStatusUpdateFrequency": "5s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "10s",
            # The disk is shared with other work: evict and collect images only when nearly full.
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "maxPods": 50,
        }

    def _start_kubelet(self) -> None:
        cleanup.make_cgroup_root(CGROUP_ROOT)
        config = self.dir / "kubelet-config.yaml"
        config.write_text(yaml.safe_dump(self.kubelet_config()))
        argv = [
            str(self.binaries.kubelet),
            "--config",
            str(config),
            "--kubeconfig",
            str(self.kubelet_kubeconfig),
            "--hostname-override",
            self.name,
            "--node-ip",
            self.node_ip,
            "--root-dir",
            str(self.dir / "kubelet"),
            "--cert-dir",
            str(self.dir / "kubelet-pki"),
            "--v",
            "1",
        ]
        proc = self._spawn("kubelet", argv)
        wait_until(self.ready, 180, f"node {self.name} Ready", proc)

    def kube_proxy_config(self) -> dict[str, object]:
        return {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.proxy_kubeconfig)},
            "hostnameOverride": self.name,
            "mode": "iptables",
            "clusterCIDR": self.net.subnet,
            "bindAddress": self.node_ip,
            "healthzBindAddress": f"127.0.0.1:{free_port()}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            # Source-NAT every Service connection: a reply from a pod on the same bridge then
            # returns through the host, where the DNAT is undone (br_netfilter not required).
            "iptables": {"masqueradeAll": True, "localhostNodePorts": False},
            # 0 = leave the host's conntrack sysctls alone (they are shared).
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
        }

    def _kube_proxy_argv(self) -> list[str]:
        config = self.dir / "kube-proxy-config.yaml"
        config.write_text(yaml.safe_dump(self.kube_proxy_config()))
        return [str(self.binaries.kube_proxy), "--config", str(config), "--v", "1"]

    def _start_kube_proxy(self) -> None:
        self._spawn("kube-proxy", self._kube_proxy_argv())

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.dir / "logs" / f"{name}.log")
        self._procs.append(proc)
        return proc

    # -- teardown ----------------------------------------------------------------------------
    def _stop_all(self) -> None:
        procs = {p.name: p for p in self._procs}
        if "kube-scheduler" in procs:  # first: no new pod lands here while the rest goes
            procs["kube-scheduler"].stop(grace=5)
        if "kubelet" in procs and procs["kubelet"].alive():
            self._drain()
        if "kube-proxy" in procs:
            procs["kube-proxy"].stop(grace=5)
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    [*self._kube_proxy_argv(), "--cleanup"], capture_output=True, timeout=60, check=False
                )
        if "kubelet" in procs:
            procs["kubelet"].stop(grace=10)
        self._procs.clear()
        if self.containerd is not None:
            self.containerd.stop()
            self.containerd = None
        cleanup.unmount_under(self.dir)
        cleanup.remove_cgroups(CGROUP_ROOT)
        cleanup.remove_bridge(self.net.bridge)
        cleanup.remove_kubelet_chains()
        self.cp.kubectl("delete", "node", self.name, "--wait=false", check=False)

    def _drain(self) -> None:
        """Delete this node's pods and let kubelet stop them: that releases their addresses
        (CNI DEL) and unmounts their volumes, which killing containerd would not."""
        selector = f"spec.nodeName={self.name}"
        self.cp.kubectl(
            "delete",
            "pods",
            "-A",
            "--field-selector",
            selector,
            "--grace-period=1",
            "--wait=false",
            check=False,
        )

        def drained() -> bool:
            listed = self.cp.kubectl(
                "get", "pods", "-A", "--field-selector", selector, "-o", "name", check=False
            )
            leases = self.containerd.pod_addresses() if self.containerd else []
            return listed.returncode == 0 and not listed.stdout.strip() and not leases

        with contextlib.suppress(TimeoutError):
            wait_until(drained, 60, f"the pods on {self.name} to stop")
