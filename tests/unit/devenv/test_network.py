"""The node agent's pod addresses and hosts-file block (on a scratch hosts file)."""

from __future__ import annotations

import socket
from pathlib import Path

from agentcore.devenv.nodeagent.network import NODE_IP, PodNetwork, pod_dns_names


def pod(uid: str, index: int, subdomain: str | None = "tj-trainer") -> dict:
    spec = {"hostname": f"tj-trainer-{index}"}
    if subdomain:
        spec["subdomain"] = subdomain
    return {"metadata": {"name": f"tj-trainer-{index}-abcde", "namespace": "ns", "uid": uid}, "spec": spec}


def test_names_follow_hostname_subdomain_and_namespace():
    assert pod_dns_names(pod("u", 0)) == [
        "tj-trainer-0.tj-trainer.ns.svc",
        "tj-trainer-0.tj-trainer.ns.svc.cluster.local",
    ]
    assert pod_dns_names(pod("u", 0, subdomain=None)) == []


def test_each_pod_gets_its_own_address_and_block_lines(tmp_path: Path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    other = PodNetwork("other-agent", hosts)
    mine = PodNetwork("agent", hosts)
    a = mine.attach(pod("uid-a", 0))
    b = mine.attach(pod("uid-b", 1))
    c = other.attach(pod("uid-c", 0))
    assert len({a, b, c, NODE_IP}) == 4 and all(ip.startswith("127.") for ip in (a, b, c))
    assert mine.attach(pod("uid-a", 0)) == a  # stable while attached
    text = hosts.read_text()
    assert text.startswith("127.0.0.1 localhost\n")
    assert f"{a} tj-trainer-0.tj-trainer.ns.svc" in text and f"{c} tj-trainer-0" in text
    mine.detach("uid-a")
    assert a not in hosts.read_text() and b in hosts.read_text()
    mine.close()
    assert "agent agent" not in hosts.read_text() and c in hosts.read_text()  # the other block stays
    assert mine.attach(pod("uid-x", 0, subdomain=None)) == NODE_IP


def test_two_listeners_share_a_port_on_their_own_addresses(tmp_path: Path):
    """Why a per-pod address is enough for two jobs using the same MASTER_PORT at once."""
    net = PodNetwork("agent", tmp_path / "hosts")
    first, second = net.attach(pod("uid-1", 0)), net.attach(pod("uid-2", 0))
    with socket.socket() as one, socket.socket() as two:
        one.bind((first, 0))
        port = one.getsockname()[1]
        two.bind((second, port))
        one.listen()
        two.listen()
