"""The real node's generated configuration (pure functions; the node itself runs in tests/node)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcore.devenv.node.containerd import PodNetwork, config_toml, conflist
from agentcore.devenv.node.products import DEFAULT_MIRROR, debian_mirror

NET = PodNetwork(bridge="br-test", subnet="10.9.0.0/24", gateway="10.9.0.1")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "deb822",
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n",
            "http://mirror.example/debian",
        ),
        (
            "one-line",
            "deb [arch=amd64] http://ftp.example/debian/ bookworm main\n",
            "http://ftp.example/debian",
        ),
        (
            "security only",
            "deb http://security.example/debian-security bookworm-security main\n",
            DEFAULT_MIRROR,
        ),
    ],
)
def test_debian_mirror_reads_apt_sources(tmp_path: Path, name: str, text: str, expected: str) -> None:
    source = tmp_path / f"{name}.sources"
    source.write_text(text)
    assert debian_mirror([source, tmp_path / "absent.list"]) == expected


def test_conflist_bridges_pods_without_masquerading(tmp_path: Path) -> None:
    config = conflist(NET, tmp_path / "ipam")
    bridge, portmap = config["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == "br-test" and bridge["isGateway"]
    assert bridge["ipMasq"] is False  # no per-pod NAT rules to leave behind
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.9.0.0/24", "gateway": "10.9.0.1"}]]
    assert bridge["ipam"]["dataDir"] == str(tmp_path / "ipam")
    assert portmap["type"] == "portmap"


def test_containerd_config_is_private_and_restricts_oom_score_adj(tmp_path: Path) -> None:
    text = config_toml(tmp_path, "localhost/agentcore-pause:abc")
    assert f'root = "{tmp_path / "root"}"' in text
    assert f'address = "{tmp_path / "containerd.sock"}"' in text
    assert "restrict_oom_score_adj = true" in text
    assert 'sandbox_image = "localhost/agentcore-pause:abc"' in text
    assert "SystemdCgroup = false" in text  # kubelet's cgroupDriver is cgroupfs
