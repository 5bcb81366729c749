"""The product images (operator/Dockerfile, targets `operator` and `trainer`) built with buildah
on a base made here from Debian packages, for machines without Docker or a reachable registry.

    python -m agentcore.devenv.node.products [--target operator --target trainer] [--extras llm]

The base is `debootstrap --variant=minbase bookworm` plus python3 (3.11, the project's Python),
python3-venv and pip, and this machine's CA bundle (pip inside the build must trust the same
TLS roots as the host, which matters where egress is intercepted). The Dockerfile takes it as
`--build-arg PYTHON_BASE=<ref>`; elsewhere it still builds FROM python:3.11-slim-bookworm.
Every image is cached as an OCI archive under `<cache>/images/`, named by a hash of what went in.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from agentcore.devenv.binaries import BinaryError, progress
from agentcore.devenv.node.images import (
    OciArchive,
    _run,
    buildah_argv,
    images_dir,
    in_storage,
    save,
    scratch_image,
)

REPO = Path(__file__).resolve().parents[4]
DOCKERFILE = REPO / "operator" / "Dockerfile"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What the Dockerfile's build context lets in (.dockerignore is an allow-list of these).
CONTEXT = (
    "pyproject.toml",
    "constraints.txt",
    "README.md",
    "operator/agentcore",
    "trainer-image/pyproject.toml",
    "trainer-image/agentcore_trainer",
    "sdk/pyproject.toml",
    "sdk/src/agentcore_sdk",
)
TARGETS = ("operator", "trainer")


def debian_mirror(sources: list[Path] | None = None) -> str:
    """The mirror apt already uses on this machine (deb822 or one-line sources)."""
    if sources is None:
        sources = [*sorted(Path("/etc/apt/sources.list.d").glob("*")), Path("/etc/apt/sources.list")]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for pattern in (r"^URIs:\s*(\S+/debian)/?\s*$", r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+/debian)/?\s"):
            found = re.search(pattern, text, flags=re.M)
            if found:
                return found.group(1)
    return DEFAULT_MIRROR


def _key(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def base_image() -> OciArchive:
    mirror = debian_mirror()
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else b""
    tag = f"{SUITE}-{_key(SUITE.encode(), mirror.encode(), ' '.join(BASE_PACKAGES).encode(), ca)}"
    image = OciArchive(f"localhost/agentcore-base:{tag}", images_dir() / f"agentcore-base-{tag}.tar")
    if image.path.exists():
        return image
    if shutil.which("debootstrap") is None:
        raise BinaryError("debootstrap not found: run scripts/bootstrap (it installs Debian's debootstrap)")
    image.path.parent.mkdir(parents=True, exist_ok=True)
    what = f"the base image {image.ref} (debootstrap {SUITE})"
    with (
        progress(what, 120.0),
        tempfile.TemporaryDirectory(prefix="agentcore-base-", dir=images_dir()) as tmp,
    ):
        root = Path(tmp) / "rootfs"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(root),
                mirror,
            ],
            "debootstrap",
            timeout=1800,
        )
        if ca:
            (root / HOST_CA_BUNDLE.relative_to("/")).write_bytes(ca)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / junk).glob("*"):
                if entry.is_file():
                    entry.unlink()
        scratch_image(image.ref, root, [], image.path, cmd="python3")
    return image


def _context_files() -> Iterator[Path]:
    for item in CONTEXT:
        path = REPO / item
        if path.is_file():
            yield path
            continue
        for file in sorted(path.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts and file.suffix not in (".pyc", ".pyo"):
                yield file


def context_hash() -> bytes:
    h = hashlib.sha256()
    for file in (DOCKERFILE, REPO / ".dockerignore", *_context_files()):
        h.update(str(file.relative_to(REPO)).encode() + b"\0" + file.read_bytes() + b"\0")
    return h.digest()


def product_image(target: str, extras: str = "") -> OciArchive:
    """Build `target` of operator/Dockerfile on the local base (cached by Dockerfile, lock, sources)."""
    if target not in TARGETS:
        raise BinaryError(f"target must be one of {TARGETS}, not {target!r}")
    base = base_image()
    tag = _key(target.encode(), extras.encode(), base.ref.encode(), context_hash())
    image = OciArchive(f"localhost/agentcore-{target}:{tag}", images_dir() / f"agentcore-{target}-{tag}.tar")
    if image.path.exists():
        return image
    in_storage(base)
    argv = buildah_argv(
        "bud",
        "--isolation",
        "oci",
        "--network",
        "host",  # RUN steps reach PyPI without a CNI bridge of buildah's own on the host
        "--layers",  # the shared build stage is built once for both targets
        "--file",
        str(DOCKERFILE),
        "--target",
        target,
        "--build-arg",
        f"PYTHON_BASE={base.ref}",
        "--build-arg",
        f"TRAINER_EXTRAS={extras}",
        "--tag",
        image.ref,
        str(REPO),
    )
    with progress(f"the {target} image {image.ref} (buildah bud)", 300.0):
        _run(argv, f"buildah bud --target {target}", timeout=3600)
        save(image.ref, image.path)
    for old in image.path.parent.glob(f"agentcore-{target}-*.tar"):
        if old != image.path:  # an archive of older sources: ~250 MB each
            old.unlink(missing_ok=True)
    return image


def image_size(image: OciArchive) -> int:
    """Uncompressed size of the image as buildah stores it, in bytes."""
    out = _run(
        buildah_argv("inspect", "--type", "image", "--format", "{{.Size}}", image.ref), "buildah inspect"
    )
    return int(out) if out.isdigit() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--target", action="append", choices=TARGETS, help="default: both")
    parser.add_argument("--extras", default="", help="TRAINER_EXTRAS, e.g. llm (torch: several GB)")
    args = parser.parse_args(argv)
    try:
        for target in args.target or TARGETS:
            started = time.monotonic()
            image = product_image(target, args.extras)
            took = time.monotonic() - started
            print(
                f"{image.ref} {image.path} ({image.path.stat().st_size / 1e6:.0f} MB archive, {took:.0f} s)"
            )
    except (BinaryError, subprocess.TimeoutExpired) as exc:
        print(f"agentcore images: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
