"""Locate or build the control-plane binaries (etcd, kube-apiserver, kube-controller-manager, kubectl),
the real node's binaries (kubelet, kube-proxy, kube-scheduler) and the test S3 server (MinIO).

Order of preference, as controller-runtime's envtest does it: ``KUBEBUILDER_ASSETS``; else what is
cached under ``~/.cache/agentcore``; else the official release binaries when their download location
answers (checked against the published SHA-256 sums); else a build from the Go modules with the
machine's Go toolchain (the path that works where only package registries are reachable).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.16"
# MinIO has no semver tags; a pseudo-version pins one commit (2026-02-12).
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
MINIO_MODULE = "github.com/minio/minio"

K8S_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kubectl")
# The real node (`agentcore dev --runtime containerd`, tests/node): built from the same module
# version as the control plane, so kubelet and apiserver never skew.
NODE_COMMANDS = ("kubelet", "kube-proxy", "kube-scheduler")
K8S_RELEASE_URL = "https://dl.k8s.io/release"
ETCD_RELEASE_URL = "https://github.com/etcd-io/etcd/releases/download"

log = logging.getLogger("agentcore.binaries")

# Cold build times measured on this project's 2-core machines, for the progress lines.
BUILD_ESTIMATES = {
    "etcd": 111.0,
    "kubernetes": 466.0,
    "kubernetes-node": 900.0,
    "minio": 540.0,
    "helm": 204.0,
    "kubeconform": 30.0,
    "promtool": 150.0,
}
HEARTBEAT_SECONDS = 60.0


class BinaryError(RuntimeError):
    """A binary could not be found or built; the message says what to do."""


@dataclass(frozen=True)
class ControlPlaneBinaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path


def cache_root() -> Path:
    base = os.environ.get("AGENTCORE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "agentcore"
    )
    return Path(base)


def _go() -> str:
    go = shutil.which("go")
    if not go:
        raise BinaryError(
            "Go toolchain not found: install Go (>= 1.24) or set KUBEBUILDER_ASSETS to a directory "
            "holding etcd, kube-apiserver, kube-controller-manager and kubectl"
        )
    return go


def _run_go(args: list[str], cwd: Path, env_extra: dict[str, str] | None = None) -> str:
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", **(env_extra or {})}
    proc = subprocess.run([_go(), *args], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BinaryError(f"go {' '.join(args)} failed in {cwd}:\n{proc.stderr[-4000:]}")
    return proc.stdout


def _about(seconds: float) -> str:
    return f"about {round(seconds / 60)} min" if seconds >= 90 else f"about {seconds:.0f} s"


@contextlib.contextmanager
def progress(
    what: str,
    estimate: float | None = None,
    interval: float = HEARTBEAT_SECONDS,
    out: TextIO | None = None,
) -> Iterator[None]:
    """Tell the user a slow first-time build is running: a start line, a heartbeat every
    `interval` seconds, and the time it took (stderr: stdout belongs to the callers' results)."""
    stream = out or sys.stderr
    hint = f"; {_about(estimate)} on 2 cores" if estimate else ""
    print(f"agentcore: building {what} (first time only, then cached{hint})", file=stream, flush=True)
    started = time.monotonic()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(interval):
            elapsed = time.monotonic() - started
            print(f"agentcore: still building {what} ({elapsed:.0f} s so far)", file=stream, flush=True)

    ticker = threading.Thread(target=beat, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
    print(f"agentcore: built {what} in {time.monotonic() - started:.0f} s", file=stream, flush=True)


def _staging_replaces(version: str, workdir: Path) -> list[str]:
    """Read k8s.io/kubernetes's own go.mod and turn each local staging replace into a version pin."""
    info = json.loads(_run_go(["mod", "download", "-json", f"k8s.io/kubernetes@{version}"], workdir))
    gomod = Path(info["GoMod"]).read_text()
    minor = version.split(".")[1]
    staging = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", gomod, flags=re.M)
    if not staging:
        raise BinaryError(f"no staging replaces found in k8s.io/kubernetes@{version} go.mod")
    return [f"replace {mod} => {mod} v0.{minor}.{version.split('.')[2]}" for mod in staging]


def _version_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return "-s -w " + " ".join(flags)


def _build_module_binaries(
    dest: Path, module_lines: list[str], targets: dict[str, str], ldflags: str = "-s -w"
) -> None:
    """Build `targets` (binary name -> package path) in a scratch module, one after another."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="agentcore-gobuild-") as tmp:
        work = Path(tmp)
        (work / "go.mod").write_text("module agentcore.local/build\n\ngo 1.24\n")
        (work / "tools.go").write_text(
            "//go:build tools\n\npackage tools\n\nimport (\n"
            + "".join(f'\t_ "{pkg}"\n' for pkg in targets.values())
            + ")\n"
        )
        with (work / "go.mod").open("a") as fh:
            fh.write("\n".join(module_lines) + "\n")
        _run_go(["mod", "tidy"], work)
        for name, pkg in targets.items():
            tmp_out = dest / f".{name}.partial"
            _run_go(["build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp_out), pkg], work)
            tmp_out.replace(dest / name)  # atomic: a half-built binary is never cached


def _arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _fetch(url: str, timeout: float = 60) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return bytes(resp.read())


def _reachable(url: str) -> bool:
    try:
        _fetch(url, timeout=5)
        return True
    except urllib.error.HTTPError:
        return True  # the host answered; the file may still exist under another path
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def _install(dest: Path, name: str, data: bytes, sha256: str) -> None:
    if hashlib.sha256(data).hexdigest() != sha256.strip().split()[0]:
        raise BinaryError(f"checksum mismatch for downloaded {name}")
    dest.mkdir(parents=True, exist_ok=True)
    partial = dest / f".{name}.partial"
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.replace(dest / name)


def download_kubernetes(version: str = KUBERNETES_VERSION, base: str | None = None) -> Path:
    base = base or os.environ.get("AGENTCORE_K8S_RELEASE_URL", K8S_RELEASE_URL)
    dest = cache_root() / "k8s" / version
    for cmd in K8S_COMMANDS:
        if not (dest / cmd).exists():
            url = f"{base}/{version}/bin/linux/{_arch()}/{cmd}"
            _install(dest, cmd, _fetch(url), _fetch(f"{url}.sha256").decode())
    return dest


def download_etcd(version: str = ETCD_VERSION, base: str | None = None) -> Path:
    base = base or os.environ.get("AGENTCORE_ETCD_RELEASE_URL", ETCD_RELEASE_URL)
    dest = cache_root() / "etcd" / version
    if not (dest / "etcd").exists():
        archive = f"etcd-{version}-linux-{_arch()}.tar.gz"
        data = _fetch(f"{base}/{version}/{archive}")
        sums = _fetch(f"{base}/{version}/SHA256SUMS").decode().splitlines()
        expected = next((line for line in sums if line.endswith(archive)), "")
        if not expected or hashlib.sha256(data).hexdigest() != expected.split()[0]:
            raise BinaryError(f"checksum mismatch or no published sum for {archive}")
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile(f"etcd-{version}-linux-{_arch()}/etcd")
            if member is None:
                raise BinaryError(f"{archive} holds no etcd binary")
            binary = member.read()
        _install(dest, "etcd", binary, hashlib.sha256(binary).hexdigest())
    return dest / "etcd"


def _download_or_build(
    download: Callable[[], Path], build: Callable[[], Path], probe: str, what: str
) -> Path:
    if _reachable(probe):
        try:
            return download()
        except (BinaryError, urllib.error.URLError, OSError, tarfile.TarError) as exc:
            log.warning("downloading %s failed (%s); building from Go modules instead", what, exc)
    return build()


def build_kubernetes(
    version: str = KUBERNETES_VERSION, commands: tuple[str, ...] = K8S_COMMANDS, estimate: str = "kubernetes"
) -> Path:
    dest = cache_root() / "k8s" / version
    missing = {c: f"k8s.io/kubernetes/cmd/{c}" for c in commands if not (dest / c).exists()}
    if missing:
        with progress(f"{', '.join(missing)} {version}", BUILD_ESTIMATES[estimate]):
            with tempfile.TemporaryDirectory() as tmp:
                replaces = _staging_replaces(version, Path(tmp))
            lines = [f"require k8s.io/kubernetes {version}", *replaces]
            _build_module_binaries(dest, lines, missing, _version_ldflags(version))
    return dest


def build_etcd(version: str = ETCD_VERSION) -> Path:
    dest = cache_root() / "etcd" / version
    if not (dest / "etcd").exists():
        lines = [f"require go.etcd.io/etcd/server/v3 {version}"]
        with progress(f"etcd {version}", BUILD_ESTIMATES["etcd"]):
            _build_module_binaries(dest, lines, {"etcd": "go.etcd.io/etcd/server/v3"})
    return dest / "etcd"


def build_minio(version: str = MINIO_VERSION) -> Path:
    dest = cache_root() / "minio" / version
    if not (dest / "minio").exists():
        lines = [f"require {MINIO_MODULE} {version}"]
        with progress(f"MinIO {version}", BUILD_ESTIMATES["minio"]):
            _build_module_binaries(dest, lines, {"minio": MINIO_MODULE})
    return dest / "minio"


def _from_assets(assets: Path) -> ControlPlaneBinaries:
    found = {n: assets / n for n in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")}
    if not found["kubectl"].exists() and shutil.which("kubectl"):
        found["kubectl"] = Path(shutil.which("kubectl") or "")
    absent = [n for n, p in found.items() if not p.exists()]
    if absent:
        raise BinaryError(f"KUBEBUILDER_ASSETS={assets} lacks {', '.join(absent)}")
    return ControlPlaneBinaries(
        found["etcd"], found["kube-apiserver"], found["kube-controller-manager"], found["kubectl"]
    )


def kubectl_binary() -> Path:
    """The kubectl `agentcore setup` cached (or KUBEBUILDER_ASSETS', or one on PATH); never builds."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    candidates = [Path(assets) / "kubectl"] if assets else []
    candidates.append(cache_root() / "k8s" / KUBERNETES_VERSION / "kubectl")
    on_path = shutil.which("kubectl")
    candidates += [Path(on_path)] if on_path else []
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise BinaryError(
        f"kubectl not found at {candidates[0]}; run `agentcore setup` (a first build takes "
        f"{_about(BUILD_ESTIMATES['kubernetes'])} on 2 cores)"
    )


def control_plane_binaries(build: bool = True) -> ControlPlaneBinaries:
    """Return the binaries, building (once, cached) when allowed and needed."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        return _from_assets(Path(assets))
    k8s_dir = cache_root() / "k8s" / KUBERNETES_VERSION
    etcd = cache_root() / "etcd" / ETCD_VERSION / "etcd"
    if build:
        k8s_base = os.environ.get("AGENTCORE_K8S_RELEASE_URL", K8S_RELEASE_URL)
        etcd_base = os.environ.get("AGENTCORE_ETCD_RELEASE_URL", ETCD_RELEASE_URL)
        if not all((k8s_dir / c).exists() for c in K8S_COMMANDS):
            k8s_dir = _download_or_build(download_kubernetes, build_kubernetes, k8s_base, "Kubernetes")
        if not etcd.exists():
            etcd = _download_or_build(download_etcd, build_etcd, etcd_base, "etcd")
    bins = ControlPlaneBinaries(
        etcd, k8s_dir / "kube-apiserver", k8s_dir / "kube-controller-manager", k8s_dir / "kubectl"
    )
    absent = [str(p) for p in vars(bins).values() if not p.exists()]
    if absent:
        raise BinaryError(
            f"missing control-plane binaries: {', '.join(absent)}; run `agentcore setup` to build them"
        )
    return bins


@dataclass(frozen=True)
class NodeBinaries:
    kubelet: Path
    kube_proxy: Path
    kube_scheduler: Path


def node_binaries(build: bool = True) -> NodeBinaries:
    """kubelet, kube-proxy and kube-scheduler of KUBERNETES_VERSION: `KUBEBUILDER_ASSETS` when it
    holds them, else the cache, built from the Go modules when allowed and needed."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    directory = Path(assets) if assets else cache_root() / "k8s" / KUBERNETES_VERSION
    if build and not assets:
        directory = build_kubernetes(KUBERNETES_VERSION, NODE_COMMANDS, "kubernetes-node")
    bins = NodeBinaries(directory / "kubelet", directory / "kube-proxy", directory / "kube-scheduler")
    absent = [str(p) for p in vars(bins).values() if not p.exists()]
    if absent:
        raise BinaryError(f"missing node binaries: {', '.join(absent)}; run `agentcore setup --node`")
    return bins


def minio_binary(build: bool = True) -> Path:
    explicit = os.environ.get("AGENTCORE_MINIO")
    if explicit:
        return Path(explicit)
    path = build_minio() if build else cache_root() / "minio" / MINIO_VERSION / "minio"
    if not path.exists():
        raise BinaryError(f"MinIO not found at {path}; run `agentcore setup` to build it")
    return path
