"""Operator processes for the integration tests, and finding which one leads.

`OperatorProcess` runs `agentcore operator` against a control plane with the tests' PostgreSQL and
S3. Processes given the same ``lease`` form one HA group; each start gets its own pod name
(``<name>-<start>``), so the Lease's holderIdentity (``<pod name>_<random>``) names exactly one
process start. `leader_of(cp, operators)` is the helper to kill "the leader" with.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

from agentcore.devenv.procs import ManagedProcess, free_port, wait_until

AGENTCORE = str(Path(sys.executable).parent / "agentcore")
LEASE_NAMESPACE = "default"
# Election timings for tests. A single operator that is restarted waits out its predecessor's
# lease (client-go's default is 15 s), so tests use a shorter lease; the renew deadline stays at
# client-go's 10 s, above the stalls of a loaded 2-core machine (a leader that misses it exits).
TEST_ELECTION = {
    "AGENTCORE_LEASE_DURATION_SECONDS": "12",
    "AGENTCORE_RENEW_DEADLINE_SECONDS": "10",
    "AGENTCORE_RETRY_PERIOD_SECONDS": "1",
}
# The HA tests kill and pause leaders on purpose: short timings keep each failover short.
FAST_ELECTION = {
    "AGENTCORE_LEASE_DURATION_SECONDS": "6",
    "AGENTCORE_RENEW_DEADLINE_SECONDS": "4",
    "AGENTCORE_RETRY_PERIOD_SECONDS": "0.5",
}


class OperatorProcess:
    def __init__(
        self,
        cp,
        postgres,
        s3,
        state: Path,
        lease: str | None = None,
        name: str = "operator",
        bucket: str | None = None,
        election: dict[str, str] | None = None,
    ) -> None:
        creds = s3.credentials
        self.bucket = bucket or f"agentcore-{uuid.uuid4().hex[:8]}"
        if bucket is None:
            s3.client().create_bucket(Bucket=self.bucket)
        self.name = name
        self.lease = lease or f"agentcore-operator-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "KUBECONFIG": str(cp.kubeconfig),
            "AGENTCORE_DATABASE_URL": postgres.dsn,
            "AGENTCORE_OBJECT_STORE": f"s3://{self.bucket}/agentcore",
            "AGENTCORE_S3_ENDPOINT": creds.endpoint_url,
            "AWS_ACCESS_KEY_ID": creds.access_key,
            "AWS_SECRET_ACCESS_KEY": creds.secret_key,
            "AGENTCORE_RESYNC_SECONDS": "3",
            # The tests' webhook receivers listen on loopback, which webhooks may not reach by default.
            "AGENTCORE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "AGENTCORE_LEASE_NAME": self.lease,
            "AGENTCORE_LEASE_NAMESPACE": LEASE_NAMESPACE,
            **(election or TEST_ELECTION),
        }
        self.state = state
        self.metrics_port, self.liveness_port = free_port(), free_port()
        # Trainer pods hold no credential: they reach PostgreSQL and S3 through this API server's
        # ingestion endpoint, as in a real installation.
        self.api_port = free_port()
        self.env["AGENTCORE_INGEST_URL"] = f"http://127.0.0.1:{self.api_port}"
        self.api: ManagedProcess | None = None
        self.proc: ManagedProcess | None = None
        self.starts = 0

    @property
    def pod_name(self) -> str:
        return f"{self.name}-{self.starts}"

    def start(self) -> None:
        self.starts += 1
        self.start_api()
        argv = [
            AGENTCORE,
            "operator",
            "--metrics-port",
            str(self.metrics_port),
            "--liveness-port",
            str(self.liveness_port),
        ]
        env = {**self.env, "POD_NAME": self.pod_name}
        log = self.state / f"{self.name}-{self.starts}.log"
        self.proc = ManagedProcess(self.name, argv, log, env=env)

    def start_api(self, wait: bool = True) -> None:
        """The API server trainer pods write through (started once; it outlives operator restarts)."""
        if self.api is not None and self.api.alive():
            return
        argv = [AGENTCORE, "api", "--host", "127.0.0.1", "--port", str(self.api_port)]
        env = {**self.env, "AGENTCORE_JWT_SECRET": uuid.uuid4().hex + uuid.uuid4().hex}
        self.api = ManagedProcess(f"{self.name}-api", argv, self.state / f"{self.name}-api.log", env=env)
        if wait:
            url = f"http://127.0.0.1:{self.api_port}/readyz"
            wait_until(lambda: _http_ok(url), 60, "the API server to listen", self.api)

    def restart_api(self, wait: bool = True) -> None:
        """SIGTERM the API server and start it again on the same port (trainer pods must retry)."""
        if self.api is not None:
            self.api.stop(10)
            self.api = None
        self.start_api(wait)

    def wait_standing(self, timeout: float = 60) -> None:
        """Until this start runs kopf and is a candidate (so it takes over when the leader dies)."""
        assert self.proc is not None
        proc = self.proc
        wait_until(
            lambda: (
                "is a candidate" in proc.log_tail(1 << 20) and "'startup' succeeded" in proc.log_tail(1 << 20)
            ),
            timeout,
            f"{self.pod_name} to start",
            proc,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def holds(self, holder: str) -> bool:
        """Whether this process' current start is the holderIdentity ``holder``."""
        return self.alive() and holder.rpartition("_")[0] == self.pod_name

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.stop(1)

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(10)
        if self.api:
            self.api.stop(10)


def ha_group(
    cp, postgres, s3, state: Path, lease: str, election: dict[str, str], names: Iterable[str]
) -> list[OperatorProcess]:
    """Operator replicas sharing one Lease and one bucket (not started), as a Deployment runs them."""
    ops: list[OperatorProcess] = []
    for name in names:
        bucket = ops[0].bucket if ops else None
        ops.append(OperatorProcess(cp, postgres, s3, state, lease, name, bucket, election))
    return ops


def _http_ok(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def lease_spec(cp, lease: str, namespace: str = LEASE_NAMESPACE) -> dict:
    """The Lease's spec ({} while it does not exist)."""
    out = cp.kubectl("-n", namespace, "get", "lease", lease, "-o", "json", check=False)
    return json.loads(out.stdout).get("spec", {}) if out.returncode == 0 else {}


def holder(cp, lease: str, namespace: str = LEASE_NAMESPACE) -> str:
    return str(lease_spec(cp, lease, namespace).get("holderIdentity") or "")


def leader_of(cp, operators: Iterable[OperatorProcess]) -> OperatorProcess | None:
    """The running operator whose start holds the (shared) Lease, if any: what a chaos test kills."""
    operators = list(operators)
    if not operators:
        return None
    current = holder(cp, operators[0].lease)
    return next((op for op in operators if current and op.holds(current)), None)


async def migrate(dsn: str) -> None:
    """What the chart's pre-install hook Job does."""
    from agentcore.storage.db import make_engine
    from agentcore.storage.migrate import upgrade

    engine = make_engine(dsn)
    await upgrade(engine)
    await engine.dispose()
