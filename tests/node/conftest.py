"""The real node: its own control plane plus kubelet, kube-proxy, kube-scheduler and containerd
(`agentcore.devenv.node`), started once for the tests under tests/node.

These tests need root and Debian's containerd, runc, CNI plugins, buildah, gcc and busybox-static
(scripts/bootstrap installs them). They fail, never skip, when something is missing: they are the
proof that the chart's pods really run as the YAML says. Deselect them with `-m "not node"`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from agentcore.devenv.controlplane import ControlPlane
from agentcore.devenv.node.images import OciArchive, busybox_image
from agentcore.devenv.node.realnode import RealNode, apiserver_flags, primary_address
from agentcore.devenv.procs import wait_until

# Another run of this suite on the machine holds the node lock until it ends.
LOCK_TIMEOUT = 900.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/node/" in item.nodeid:
            item.add_marker(pytest.mark.node)


@dataclass
class Cluster:
    cp: ControlPlane
    node: RealNode
    busybox: OciArchive
    startup_seconds: float


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    started = time.monotonic()
    flags = apiserver_flags(primary_address())
    with (
        ControlPlane(extra_apiserver_flags=flags) as cp,
        RealNode(cp, name="agentcore-real-node", lock_timeout=LOCK_TIMEOUT) as node,
    ):
        image = busybox_image()
        node.import_image(image)
        yield Cluster(cp, node, image, time.monotonic() - started)


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    name = f"n-{uuid.uuid4().hex[:8]}"
    cluster.cp.kubectl("create", "namespace", name)
    wait_until(
        lambda: cluster.cp.kubectl("-n", name, "get", "sa", "default", check=False).returncode == 0,
        60,
        f"default service account in {name}",
    )
    yield name
    cluster.cp.kubectl("delete", "namespace", name, "--wait=false", check=False)
