"""Release downloads, checked against published SHA-256 sums, from a loopback release server."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from agentcore.devenv import binaries


@pytest.fixture
def release_server(tmp_path: Path):
    root = tmp_path / "www"
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def publish_kubernetes(root: Path, version: str, corrupt: str | None = None) -> None:
    bindir = root / version / "bin" / "linux" / binaries._arch()
    bindir.mkdir(parents=True)
    for cmd in binaries.K8S_COMMANDS:
        data = f"#!/bin/sh\necho {cmd}\n".encode()
        (bindir / cmd).write_bytes(data)
        digest = hashlib.sha256(b"tampered" if cmd == corrupt else data).hexdigest()
        (bindir / f"{cmd}.sha256").write_text(digest)


def publish_etcd(root: Path, version: str) -> bytes:
    archive = f"etcd-{version}-linux-{binaries._arch()}.tar.gz"
    binary = b"#!/bin/sh\necho etcd\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"etcd-{version}-linux-{binaries._arch()}/etcd")
        info.size = len(binary)
        tar.addfile(info, io.BytesIO(binary))
    (root / version).mkdir(parents=True)
    (root / version / archive).write_bytes(buf.getvalue())
    (root / version / "SHA256SUMS").write_text(f"{hashlib.sha256(buf.getvalue()).hexdigest()}  {archive}\n")
    return binary


def test_downloads_verify_checksums_and_cache(release_server, tmp_path, monkeypatch):
    root, url = release_server
    monkeypatch.setenv("AGENTCORE_CACHE", str(tmp_path / "cache"))
    publish_kubernetes(root / "k8s", "v9.9.9")
    binary = publish_etcd(root / "etcd", "v9.9.9")
    dest = binaries.download_kubernetes("v9.9.9", f"{url}/k8s")
    assert sorted(p.name for p in dest.iterdir()) == sorted(binaries.K8S_COMMANDS)
    assert (dest / "kubectl").stat().st_mode & 0o111
    etcd = binaries.download_etcd("v9.9.9", f"{url}/etcd")
    assert etcd.read_bytes() == binary


def test_checksum_mismatch_is_refused_and_nothing_cached(release_server, tmp_path, monkeypatch):
    root, url = release_server
    monkeypatch.setenv("AGENTCORE_CACHE", str(tmp_path / "cache"))
    publish_kubernetes(root / "k8s", "v9.9.8", corrupt="kube-apiserver")
    with pytest.raises(binaries.BinaryError, match="checksum mismatch"):
        binaries.download_kubernetes("v9.9.8", f"{url}/k8s")
    assert not (tmp_path / "cache" / "k8s" / "v9.9.8" / "kube-apiserver").exists()


def test_unreachable_release_host_falls_back_to_building(monkeypatch):
    calls: list[str] = []
    result = binaries._download_or_build(
        lambda: calls.append("download") or Path("/d"),
        lambda: calls.append("build") or Path("/b"),
        "http://127.0.0.1:9/",
        "test",
    )
    assert result == Path("/b") and calls == ["build"]
