"""containerd (Debian's package) with a private root, state and socket, and a CRI config for
kubelet: runc with cgroupfs, a CNI bridge from Debian's plugins, a locally built pause image."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from agentcore.devenv.binaries import BinaryError
from agentcore.devenv.node.images import OciArchive
from agentcore.devenv.procs import ManagedProcess, wait_until

CNI_BIN_DIR = Path("/usr/lib/cni")  # containernetworking-plugins
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")


@dataclass(frozen=True)
class PodNetwork:
    """The CNI bridge: pods get addresses from `subnet`; the host is `gateway` on `bridge`."""

    bridge: str
    subnet: str
    gateway: str


def conflist(net: PodNetwork, ipam_dir: Path) -> dict[str, object]:
    return {
        "cniVersion": "0.4.0",
        "name": "agentcore",
        "plugins": [
            {
                "type": "bridge",
                "bridge": net.bridge,
                "isGateway": True,
                # No masquerade: pods talk to the host (its services listen on the gateway) and to
                # each other; leaving out NAT leaves no per-pod iptables rules behind either.
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": net.subnet, "gateway": net.gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def config_toml(directory: Path, sandbox_image: str) -> str:
    """containerd 1.6's version-2 config. `restrict_oom_score_adj`: this machine withholds
    CAP_SYS_RESOURCE, so runc may not lower a container's oom_score_adj below ours."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{directory / "root"}"
state = "{directory / "state"}"

[grpc]
  address = "{directory / "containerd.sock"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{directory / "opt"}"

[{cri}]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{directory / "cni" / "net.d"}"
  max_conf_num = 1
"""


def check_host() -> None:
    """Fail with what to install or fix before starting anything."""
    if os.geteuid() != 0:
        raise BinaryError("the real node needs root (kubelet and containerd manage mounts, cgroups, netns)")
    for tool in ("containerd", "ctr", "runc", "containerd-shim-runc-v2", "iptables"):
        if shutil.which(tool) is None:
            raise BinaryError(f"{tool} not found: run scripts/bootstrap (it installs Debian's packages)")
    absent = [p for p in CNI_PLUGINS if not (CNI_BIN_DIR / p).exists()]
    if absent:
        raise BinaryError(
            f"CNI plugins {absent} not in {CNI_BIN_DIR}: apt-get install containernetworking-plugins"
        )


class Containerd:
    """One containerd process; `stop()` also ends every container it ran (their shims outlive
    containerd by design) and unmounts what they left."""

    def __init__(self, directory: Path, sandbox: OciArchive, net: PodNetwork) -> None:
        self.dir = directory
        self.sandbox = sandbox
        self.net = net
        self.socket = directory / "containerd.sock"
        self.ipam_dir = directory / "cni" / "ipam"
        self.proc: ManagedProcess | None = None

    def start(self) -> None:
        net_d = self.dir / "cni" / "net.d"
        net_d.mkdir(parents=True, exist_ok=True)
        self.ipam_dir.mkdir(parents=True, exist_ok=True)
        (net_d / "10-agentcore.conflist").write_text(json.dumps(conflist(self.net, self.ipam_dir), indent=2))
        config = self.dir / "config.toml"
        config.write_text(config_toml(self.dir, self.sandbox.ref))
        argv = ["containerd", "--config", str(config), "--log-level", "warn"]
        self.proc = ManagedProcess("containerd", argv, self.dir / "containerd.log")
        wait_until(lambda: self.ctr("version").returncode == 0, 60, "containerd to answer", self.proc)
        self.import_image(self.sandbox)

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = ["ctr", "--address", str(self.socket), "--namespace", "k8s.io", "--timeout", "60s", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def import_image(self, image: OciArchive) -> None:
        proc = self.ctr("images", "import", str(image.path), timeout=300)
        if proc.returncode != 0:
            raise BinaryError(f"ctr images import {image.path} failed: {proc.stderr.strip()}")

    def images(self) -> list[str]:
        listed = self.ctr("images", "list", "--quiet").stdout.split()
        return [ref for ref in listed if not ref.startswith("sha256:")]

    def pod_addresses(self) -> list[str]:
        """The IPs host-local has handed out and not yet released (one file per address)."""
        if not self.ipam_dir.exists():
            return []
        return [
            p.name for n in self.ipam_dir.iterdir() if n.is_dir() for p in n.iterdir() if p.name[0].isdigit()
        ]

    def stop(self) -> None:
        if self.proc is not None and self.proc.alive():
            self._end_tasks()
        if self.proc is not None:
            self.proc.stop(grace=15)
        self._kill_shims()

    def _end_tasks(self) -> None:
        """What kubelet did not tear down: kill each task, then delete it and its container."""
        tasks = [line.split()[0] for line in self.ctr("tasks", "list", "--quiet").stdout.splitlines() if line]
        for task in tasks:
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task)
        for task in tasks:
            self.ctr("tasks", "delete", "--force", task)
        for container in self.ctr("containers", "list", "--quiet").stdout.split():
            self.ctr("containers", "delete", container)

    def _kill_shims(self) -> None:
        """Shims started for this containerd (their command line names its socket) that are left."""
        needle = str(self.socket).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and needle in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)
