"""Machine state a real node creates outside its directory, and how it is removed: the cgroup
subtree pods run under, mounts under the node's directory, the CNI bridge."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")


def _cgroup_mounts() -> list[Path]:
    """Every cgroup hierarchy mounted under /sys/fs/cgroup (v1 controllers, named, unified)."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fstype = right.split()[0] if right else ""
        point = Path(left.split()[4])
        if fstype in ("cgroup", "cgroup2") and point.is_relative_to(CGROUP_FS):
            mounts.append(point)
    return mounts


def make_cgroup_root(root: str) -> None:
    """kubelet requires its cgroupRoot to exist in every hierarchy; a new cpuset cgroup is
    unusable until it has CPUs and memory nodes, so they are copied from the parent."""
    for mount in _cgroup_mounts():
        path = mount / root.strip("/")
        path.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            parent = mount / knob
            child = path / knob
            if parent.exists() and child.exists() and not child.read_text().strip():
                child.write_text(parent.read_text())


def remove_cgroups(root: str) -> None:
    """rmdir the subtree deepest first (cgroup directories go only with rmdir, once empty)."""
    for mount in _cgroup_mounts():
        top = mount / root.strip("/")
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for path in [*dirs, top]:
            with contextlib.suppress(OSError):
                path.rmdir()


def unmount_under(directory: Path) -> None:
    """Lazily unmount whatever is still mounted below `directory` (volume tmpfs, overlay rootfs,
    sandbox shm), innermost first, so the directory can be deleted."""
    prefix = str(directory.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def remove_bridge(name: str) -> None:
    if Path("/sys/class/net", name).exists():
        subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)


# Chains kubelet itself makes (kube-proxy's go with `kube-proxy --cleanup`): a canary and hint
# for kube-proxy, and a filter that drops non-local traffic to 127.0.0.0/8.
KUBELET_CHAINS = ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT")


def remove_kubelet_chains() -> None:
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "mangle", "nat"):
            _remove_chains(tool, table, KUBELET_CHAINS)


def _remove_chains(tool: str, table: str, chains: tuple[str, ...]) -> None:
    saved = subprocess.run([f"{tool}-save", "-t", table], capture_output=True, text=True, check=False)
    if saved.returncode != 0:
        return
    present = {line[1:].split()[0] for line in saved.stdout.splitlines() if line.startswith(":")}
    ours = [c for c in chains if c in present]
    if not ours:
        return
    for line in saved.stdout.splitlines():  # first every rule jumping to one of them
        words = line.split()
        if words[:1] == ["-A"] and "-j" in words and words[words.index("-j") + 1] in ours:
            subprocess.run([tool, "-t", table, "-D", *words[1:]], capture_output=True, check=False)
    for chain in ours:
        subprocess.run([tool, "-t", table, "-F", chain], capture_output=True, check=False)
        subprocess.run([tool, "-t", table, "-X", chain], capture_output=True, check=False)


def remove_tree(directory: Path) -> None:
    """rmtree, retried briefly: a shim that was just killed may still hold files in its bundle."""
    for _ in range(5):
        shutil.rmtree(directory, ignore_errors=True)
        if not directory.exists():
            return
        time.sleep(1)
