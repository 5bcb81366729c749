"""`agentcore kubectl`: which kubectl and kubeconfig it runs, never building; progress lines."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from agentcore.cli import build_parser
from agentcore.devenv import binaries
from agentcore.devenv.kubectl import kubectl_command


@pytest.fixture
def cached_kubectl(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("AGENTCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    kubectl = tmp_path / "cache" / "k8s" / binaries.KUBERNETES_VERSION / "kubectl"
    kubectl.parent.mkdir(parents=True)
    kubectl.write_text("#!/bin/sh\n")
    kubectl.chmod(0o755)
    return kubectl


def test_runs_the_cached_kubectl_with_the_dev_kubeconfig(cached_kubectl, tmp_path):
    (tmp_path / ".agentcore").mkdir()
    (tmp_path / ".agentcore" / "kubeconfig").write_text("{}")
    argv, env = kubectl_command(["get", "tj"], {"PATH": "/usr/bin"}, tmp_path)
    assert argv == [str(cached_kubectl), "get", "tj"]
    assert env["KUBECONFIG"] == str(tmp_path / ".agentcore" / "kubeconfig")


def test_kubeconfig_env_wins_and_none_is_left_to_kubectl(cached_kubectl, tmp_path):
    _, env = kubectl_command([], {"KUBECONFIG": "/k"}, tmp_path)
    assert env["KUBECONFIG"] == "/k"
    assert "KUBECONFIG" not in kubectl_command([], {}, tmp_path)[1]


def test_missing_kubectl_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTCORE_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    with pytest.raises(binaries.BinaryError, match="agentcore setup"):
        kubectl_command([], {}, tmp_path)


def test_every_argument_goes_to_kubectl():
    argv = ["kubectl", "-n", "x", "get", "tj", "--help", "--", "ls"]
    assert build_parser().parse_args(argv).kubectl_args == argv[1:]


def test_progress_announces_beats_and_times_a_build():
    out = io.StringIO()
    with binaries.progress("etcd v1", 111, interval=0.05, out=out):
        time.sleep(0.12)
    lines = out.getvalue().splitlines()
    assert lines[0] == "agentcore: building etcd v1 (first time only, then cached; about 2 min on 2 cores)"
    assert any(line.startswith("agentcore: still building etcd v1 (") for line in lines[1:-1])
    assert lines[-1] == "agentcore: built etcd v1 in 0 s"
