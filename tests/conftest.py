"""Session fixtures: a real control plane with the node agent, PostgreSQL and an S3 server.

Everything is started once per test session on loopback and stopped at its end; every child
process also dies with the test process (PR_SET_PDEATHSIG), so nothing outlives the session.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from agentcore.devenv.controlplane import ControlPlane
from agentcore.devenv.dev import node_ready, start_node_agent
from agentcore.devenv.procs import ManagedProcess, wait_until
from agentcore.devenv.services import MinioServer, PostgresServer

REPO = Path(__file__).resolve().parent.parent
NODE_NAME = "agentcore-test-node"


def pytest_configure(config: pytest.Config) -> None:
    # Registered here rather than in pyproject.toml, whose hash keys the cached venv.
    config.addinivalue_line(
        "markers", "node: runs pods on the real node (kubelet + containerd, needs root; tests/node)"
    )


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    with ControlPlane() as cp:
        yield cp


@dataclass
class NodeAgentHandle:
    proc: ManagedProcess
    state_dir: Path
    name: str

    def pod_dir(self, namespace: str, name: str, uid: str) -> Path:
        return self.state_dir / "pods" / namespace / f"{name}-{uid[:8]}"


@pytest.fixture(scope="session")
def node_agent(control_plane: ControlPlane) -> Iterator[NodeAgentHandle]:
    state = Path(tempfile.mkdtemp(prefix="agentcore-node-"))
    agent = start_node_agent(control_plane.kubeconfig, state, NODE_NAME)
    try:
        wait_until(lambda: node_ready(control_plane, NODE_NAME), 60, "node Ready", agent)
        yield NodeAgentHandle(agent, state, NODE_NAME)
    finally:
        agent.stop(15)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def crds_installed(control_plane: ControlPlane) -> ControlPlane:
    control_plane.kubectl("apply", "-f", str(REPO / "crds"))
    control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    return control_plane


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    control_plane.kubectl("create", "namespace", name)
    # Pods need the default service account, which the controller-manager creates.
    wait_until(
        lambda: control_plane.kubectl("-n", name, "get", "sa", "default", check=False).returncode == 0,
        30,
        f"default service account in {name}",
    )
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as pg:
        yield pg


@pytest.fixture(scope="session")
def s3() -> Iterator[MinioServer]:
    with MinioServer() as server:
        yield server


def get_json(cp: ControlPlane, *args: str) -> dict:
    return json.loads(cp.kubectl(*args, "-o", "json").stdout)


def wait_for(predicate, timeout: float = 60, interval: float = 0.3, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except subprocess.CalledProcessError:
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def trajectory_counts(dsn: str, job_id: str) -> tuple[int, int]:
    """(rows, distinct ids) of a job's trajectories: equal when a resumed run duplicated none."""

    async def query():
        engine = create_async_engine(dsn)
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("select count(*), count(distinct id) from trajectories where job_id = :j"),
                    {"j": job_id},
                )
            ).one()
        await engine.dispose()
        return int(row[0]), int(row[1])

    return asyncio.run(query())


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the fake apiservers of the unit tests apply it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
