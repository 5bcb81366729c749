"""Container images made on this machine with buildah, without a registry or a Docker engine.

Each image is written once as an OCI archive under ``<cache>/images/`` named by a hash of what
went into it, and imported into a node's containerd (``ctr images import``) on every node start,
which takes seconds. buildah keeps its own storage under ``<cache>/images/buildah``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agentcore.devenv.binaries import BinaryError, cache_root

PAUSE_SOURCE = Path(__file__).with_name("pause.c")
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static: one static binary, every applet


@dataclass(frozen=True)
class OciArchive:
    """An image as a file: `ref` is the name it gets in containerd, `path` the OCI archive."""

    ref: str
    path: Path


def images_dir() -> Path:
    return cache_root() / "images"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def _run(argv: Sequence[str], what: str, timeout: float = 600) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise BinaryError(f"{what} failed ({' '.join(argv[:3])} ...): {proc.stderr.strip()[-2000:]}")
    return proc.stdout.strip()


def buildah_argv(*args: str) -> list[str]:
    """buildah with the project's private storage (not /var/lib/containers, which others may use)."""
    buildah = shutil.which("buildah")
    if buildah is None:
        raise BinaryError("buildah not found: run scripts/bootstrap (it installs Debian's buildah)")
    store = images_dir() / "buildah"
    return [
        buildah,
        "--root",
        str(store / "root"),
        "--runroot",
        str(store / "run"),
        "--storage-driver",
        "overlay",
        *args,
    ]


def scratch_image(ref: str, rootfs: Path, entrypoint: Sequence[str], out: Path, cmd: str = "") -> None:
    """`rootfs`'s tree as the only layer of a new image `ref`, written to the OCI archive `out`."""
    container = _run(buildah_argv("from", "scratch"), "buildah from scratch")
    try:
        _run(buildah_argv("copy", container, f"{rootfs}/.", "/"), "buildah copy")
        config = ["--cmd", cmd] if cmd else []
        if entrypoint:
            config += ["--entrypoint", "[" + ", ".join(f'"{part}"' for part in entrypoint) + "]"]
        _run(buildah_argv("config", *config, container), "buildah config")
        _run(buildah_argv("commit", "--rm", container, ref), "buildah commit")
    except BaseException:
        subprocess.run(buildah_argv("rm", container), capture_output=True)
        raise
    save(ref, out)


def save(ref: str, out: Path) -> None:
    """Write buildah's image `ref` to `out` atomically (a half-written archive is never cached)."""
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)
    _run(buildah_argv("push", ref, f"oci-archive:{partial}:{ref}"), "buildah push")
    partial.replace(out)


def in_storage(image: OciArchive) -> None:
    """Make sure buildah's storage holds `image` (a `FROM` needs it there), from its archive."""
    present = subprocess.run(buildah_argv("inspect", "--type", "image", image.ref), capture_output=True)
    if present.returncode != 0:
        _run(buildah_argv("pull", f"oci-archive:{image.path}"), "buildah pull")


def pause_image() -> OciArchive:
    """The pod sandbox image: pause.c compiled statically, alone in a scratch image."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BinaryError("gcc not found: run scripts/bootstrap (it installs gcc and libc6-dev)")
    source = PAUSE_SOURCE.read_bytes()
    tag = _digest(source, _run([gcc, "--version"], "gcc --version").encode())
    ref = f"localhost/agentcore-pause:{tag}"
    out = images_dir() / f"agentcore-pause-{tag}.tar"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="agentcore-pause-") as tmp:
            root = Path(tmp) / "rootfs"
            root.mkdir()
            _run([gcc, "-static", "-Os", "-s", "-o", str(root / "pause"), str(PAUSE_SOURCE)], "gcc pause.c")
            scratch_image(ref, root, ["/pause"], out)
    return OciArchive(ref, out)


def busybox_image() -> OciArchive:
    """A 2 MB image with a shell and the usual tools (busybox applets as symlinks): enough for
    tests that look at a container from the inside, and built in seconds."""
    if not BUSYBOX.exists():
        raise BinaryError(f"{BUSYBOX} not found: run scripts/bootstrap (it installs busybox-static)")
    tag = _digest(BUSYBOX.read_bytes())
    ref = f"localhost/agentcore-busybox:{tag}"
    out = images_dir() / f"agentcore-busybox-{tag}.tar"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="agentcore-busybox-") as tmp:
            root = Path(tmp) / "rootfs"
            (root / "bin").mkdir(parents=True)
            for sub in ("tmp", "etc"):
                (root / sub).mkdir()
            (root / "tmp").chmod(0o1777)
            shutil.copy2(BUSYBOX, root / "bin" / "busybox")
            applets = _run([str(BUSYBOX), "--list"], "busybox --list").split()
            for applet in applets:
                if applet != "busybox":
                    (root / "bin" / applet).symlink_to("busybox")
            (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
            scratch_image(ref, root, ["/bin/sh"], out)
    return OciArchive(ref, out)
