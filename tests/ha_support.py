"""A control plane with an audit log, and reading operator writes out of it.

The apiserver's audit log is the witness of the HA and chaos tests: every operator request carries
its holderIdentity in the User-Agent (and, past the fence, when the fence let it through), so a
test can check at the apiserver that each write of an operator arrived while that operator was
the latest to acquire the Lease, and how often each child was created.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from agentcore.devenv.controlplane import ControlPlane
from agentcore.devenv.dev import node_ready, start_node_agent
from agentcore.devenv.procs import wait_until
from tests.conftest import REPO
from tests.operator_support import migrate

# Writes at Metadata level; the Lease's and Jobs' bodies too (who the holder became; Job names).
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "Request",
            "verbs": ["create", "update", "patch", "delete"],
            "resources": [
                {"group": "coordination.k8s.io", "resources": ["leases"]},
                {"group": "batch", "resources": ["jobs"]},
            ],
        },
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "None"},
    ],
}


@dataclass
class Cluster:
    cp: ControlPlane
    audit: Path
    node: str


@contextmanager
def audited_cluster(dsn: str, prefix: str) -> Iterator[Cluster]:
    """A control plane of its own (the session's has no audit log) with the CRDs, a node agent
    and a migrated database."""
    state = Path(tempfile.mkdtemp(prefix=f"agentcore-{prefix}-"))
    (state / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
    flags = (
        f"--audit-policy-file={state / 'audit-policy.yaml'}",
        f"--audit-log-path={state / 'audit.log'}",
        "--audit-log-format=json",
    )
    node = f"agentcore-{prefix}-node"
    try:
        with ControlPlane(extra_apiserver_flags=flags) as cp:
            cp.kubectl("apply", "-f", str(REPO / "crds"))
            cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
            agent = start_node_agent(cp.kubeconfig, state / "node", node)
            try:
                wait_until(lambda: node_ready(cp, node), 60, "node Ready", agent)
                asyncio.run(migrate(dsn))
                yield Cluster(cp, state / "audit.log", node)
            finally:
                agent.stop(15)
    finally:
        shutil.rmtree(state, ignore_errors=True)


@dataclass(frozen=True)
class Write:
    at: dt.datetime  # requestReceivedTimestamp
    identity: str  # the operator's holderIdentity (from its User-Agent)
    fenced: dt.datetime | None  # when the fence let it through (from its User-Agent; None: the Lease)
    verb: str
    resource: str
    namespace: str
    name: str
    code: int
    holder: str | None  # Lease writes: the holderIdentity written (None: released)


def operator_writes(audit: Path) -> list[Write]:
    writes = []
    for line in audit.read_text().splitlines():
        event = json.loads(line)
        agent = event.get("userAgent") or ""
        if not agent.startswith("agentcore-operator/"):
            continue
        ref, body = event.get("objectRef") or {}, event.get("requestObject") or {}
        identity, _, stamp = agent.split("/", 1)[1].partition(" (fenced ")
        writes.append(
            Write(
                dt.datetime.fromisoformat(event["requestReceivedTimestamp"]),
                identity,
                dt.datetime.fromisoformat(stamp.rstrip(")")) if stamp else None,
                event["verb"],
                ref.get("resource", ""),
                ref.get("namespace", ""),
                ref.get("name") or (body.get("metadata") or {}).get("name", ""),
                int((event.get("responseStatus") or {}).get("code", 0)),
                (body.get("spec") or {}).get("holderIdentity") if ref.get("resource") == "leases" else None,
            )
        )
    return sorted(writes, key=lambda w: w.at)


def lease_changes(writes: list[Write], lease: str) -> list[Write]:
    return [w for w in writes if w.resource == "leases" and w.name == lease and w.code in (200, 201)]


def assert_one_writer_at_a_time(audit: Path, lease: str) -> list[Write]:
    """Every write an operator sent passed its fence while that operator was the last to acquire
    or renew the Lease (and had not released it). By the fence's time, not the apiserver's: a
    write paused between the fence and the socket can arrive later (docs/operator-ha.md)."""
    writes = operator_writes(audit)
    leases = lease_changes(writes, lease)
    for write in writes:
        if write.resource == "leases":
            continue
        assert write.fenced is not None, f"{write} did not pass the fence"
        before = [w for w in leases if w.at <= write.fenced]
        current = before[-1].holder if before else None
        assert current == write.identity, (
            f"{write.identity} sent {write.verb} {write.resource}/{write.name} at {write.at} "
            f"while the lease was held by {current!r}"
        )
    return writes


def acquisitions(audit: Path, lease: str) -> list[Write]:
    """Successful Lease writes that changed the holder to a new identity."""
    changes, previous = [], None
    for write in lease_changes(operator_writes(audit), lease):
        if write.holder and write.holder != previous:
            changes.append(write)
        previous = write.holder
    return changes
