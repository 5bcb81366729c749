"""Operator HA on the real control plane: two operator processes share one Lease; leaders are
SIGKILLed at random points, SIGTERMed and paused (SIGSTOP) while TrainingJobs run on the node agent.

The apiserver's audit log is the witness: every operator request carries its holderIdentity in the
User-Agent, so the tests check, at the apiserver, that each write of an operator arrived while that
operator was the latest to acquire the Lease (no job reconciled by two leaders at once), and that
each TrainingJob's Job was created exactly once. Seeded: AGENTCORE_HA_SEED replays a run.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import get_json, trajectory_counts, wait_for
from tests.ha_support import (
    Cluster,
    acquisitions,
    assert_one_writer_at_a_time,
    audited_cluster,
    lease_changes,
    operator_writes,
)
from tests.integration.controllers.test_trainingjob import add_queries, phase_is, training_job
from tests.operator_support import FAST_ELECTION, OperatorProcess, ha_group, holder, leader_of, lease_spec

pytestmark = pytest.mark.integration
LEASE = "agentcore-operator-ha"
LEASE_S = int(FAST_ELECTION["AGENTCORE_LEASE_DURATION_SECONDS"])
RETRY_S = float(FAST_ELECTION["AGENTCORE_RETRY_PERIOD_SECONDS"])
SEED = int(os.environ.get("AGENTCORE_HA_SEED") or random.randrange(1 << 30))


@pytest.fixture(scope="module")
def cluster(postgres) -> Iterator[Cluster]:
    with audited_cluster(postgres.dsn, "ha") as c:
        yield c


@pytest.fixture(scope="module")
def operators(cluster, postgres, s3, tmp_path_factory) -> Iterator[list[OperatorProcess]]:
    state = tmp_path_factory.mktemp("ha-operators")
    ops = ha_group(cluster.cp, postgres, s3, state, LEASE, FAST_ELECTION, ("op-a", "op-b"))
    for op in ops:
        op.start()
    yield ops
    for op in ops:
        op.stop()


@pytest.fixture
def ns(cluster) -> Iterator[str]:
    name = f"ha-{uuid.uuid4().hex[:8]}"
    cluster.cp.kubectl("create", "namespace", name)
    wait_for(
        lambda: cluster.cp.kubectl("-n", name, "get", "sa", "default", check=False).returncode == 0,
        30,
        what=f"default service account in {name}",
    )
    add_queries(cluster.cp, name)
    yield name
    cluster.cp.kubectl("delete", "namespace", name, "--wait=false", check=False)


# -- helpers ---------------------------------------------------------------------------------------
def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def both_running(ops: list[OperatorProcess]) -> None:
    for op in ops:
        if not op.alive():
            op.start()
    for op in ops:
        op.wait_standing()


def wait_leader(cluster: Cluster, ops: list[OperatorProcess], timeout: float = 60) -> OperatorProcess:
    return wait_for(lambda: leader_of(cluster.cp, ops), timeout, interval=0.1, what="a leader")


def leader_gauge(op: OperatorProcess) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{op.metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    line = next((ln for ln in text.splitlines() if ln.startswith("agentcore_operator_leader ")), None)
    return float(line.split()[1]) if line else None


def apply_jobs(cluster: Cluster, ns: str, names: list[str], iterations: int) -> None:
    docs = "---\n".join(training_job(n, iterations) for n in names)
    cluster.cp.kubectl("-n", ns, "apply", "-f", "-", input=docs)


def all_finished(cluster: Cluster, ns: str, names: list[str]) -> list[dict] | None:
    done = [phase_is(cluster.cp, ns, n, "Completed", "Failed", "Cancelled") for n in names]
    return done if all(done) else None


# -- the tests -------------------------------------------------------------------------------------
def test_exactly_one_of_two_replicas_leads(cluster, operators):
    leader = wait_leader(cluster, operators)
    standby = next(op for op in operators if op is not leader)
    wait_for(lambda: leader_gauge(leader) == 1.0, 30, what="the leader's gauge")
    wait_for(lambda: leader_gauge(standby) == 0.0, 30, what="the standby's gauge")
    assert standby.alive()
    assert_one_writer_at_a_time(cluster.audit, LEASE)


def test_killing_the_leader_at_random_points_keeps_every_job_right(cluster, operators, ns, postgres):
    rng = random.Random(SEED)
    print(f"AGENTCORE_HA_SEED={SEED}")
    names = [f"ha-{i}" for i in range(3)]
    apply_jobs(cluster, ns, names, iterations=40)
    transitions = lease_spec(cluster.cp, LEASE).get("leaseTransitions", 0)
    takeovers = []
    for _ in range(3):
        both_running(operators)
        leader = wait_leader(cluster, operators)
        time.sleep(rng.uniform(0.2, 3.0))
        old = holder(cluster.cp, LEASE)
        killed_at = now()
        leader.kill()
        wait_for(
            lambda old=old: holder(cluster.cp, LEASE) not in ("", old),
            LEASE_S + 30,
            interval=0.1,
            what="takeover",
        )
        taken = next(a for a in acquisitions(cluster.audit, LEASE) if a.at >= killed_at)
        takeovers.append((taken.at - killed_at).total_seconds())
        leader.start()  # back as a standby (both_running waits until it stands)
    done = wait_for(lambda: all_finished(cluster, ns, names), 300, interval=1, what="every job finished")
    print(f"kill -9 → lease acquired by the standby: {[f'{t:.2f}s' for t in takeovers]}")
    # A standby claims no earlier than a lease duration after it saw the last renew, and polls
    # every retry period: worst case lease + 2 x retry, plus slack for this shared machine.
    assert all(t <= LEASE_S + 2 * RETRY_S + 5 for t in takeovers), takeovers
    assert [d["status"]["phase"] for d in done] == ["Completed"] * len(names)
    assert lease_spec(cluster.cp, LEASE)["leaseTransitions"] == transitions + len(takeovers)
    jobs = get_json(cluster.cp, "-n", ns, "get", "jobs")["items"]
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted(f"{n}-trainer" for n in names)
    writes = assert_one_writer_at_a_time(cluster.audit, LEASE)
    created = [w.name for w in writes if w.resource == "jobs" and w.verb == "create" and w.code == 201]
    assert sorted(n for n in created if n.startswith("ha-")) == sorted(f"{n}-trainer" for n in names)
    for d in done:
        total, distinct = trajectory_counts(postgres.dsn, d["metadata"]["uid"])
        assert total == distinct == 40 * 8 * 4


def test_a_sigtermed_leader_releases_and_the_standby_takes_over_at_once(cluster, operators, ns):
    both_running(operators)
    leader = wait_leader(cluster, operators)
    standby = next(op for op in operators if op is not leader)
    wait_for(lambda: holder(cluster.cp, LEASE) and standby.alive(), 30, what="a standby")
    time.sleep(2 * RETRY_S)  # the standby has polled the current record
    old = holder(cluster.cp, LEASE)
    stopped_at = now()
    assert leader.proc is not None
    leader.proc.stop(30)  # SIGTERM
    assert leader.proc.proc.returncode == 0, leader.proc.log_tail()
    wait_for(lambda: standby.holds(holder(cluster.cp, LEASE)), LEASE_S + 30, interval=0.1, what="takeover")
    released = [
        w
        for w in lease_changes(operator_writes(cluster.audit), LEASE)
        if w.identity == old and w.holder is None
    ]
    assert released, "the stopping leader did not release the lease"
    taken = next(a for a in acquisitions(cluster.audit, LEASE) if a.at >= stopped_at)
    apply_jobs(cluster, ns, ["after-term"], iterations=5)
    wait_for(
        lambda: phase_is(cluster.cp, ns, "after-term", "Queued", "Running", "Completed"), 60, what="Queued"
    )
    print(
        f"SIGTERM → released after {(released[-1].at - stopped_at).total_seconds():.2f}s, "
        f"acquired by the standby after {(taken.at - stopped_at).total_seconds():.2f}s"
    )
    # Released, not expired: the standby took over well within one lease duration of the release.
    assert (taken.at - released[-1].at).total_seconds() < LEASE_S - RETRY_S
    assert_one_writer_at_a_time(cluster.audit, LEASE)


def test_a_paused_leader_whose_lease_expired_writes_nothing_after_it_resumes(cluster, operators, ns):
    both_running(operators)
    leader = wait_leader(cluster, operators)
    standby = next(op for op in operators if op is not leader)
    time.sleep(2 * RETRY_S)
    paused = holder(cluster.cp, LEASE)
    # Work in flight: the leader is reconciling these when it is paused.
    apply_jobs(cluster, ns, [f"fence-{i}" for i in range(3)], iterations=5)
    leader.signal(signal.SIGSTOP)
    try:
        wait_for(
            lambda: standby.holds(holder(cluster.cp, LEASE)), LEASE_S + 30, interval=0.1, what="takeover"
        )
        # And work the paused process will see in its watch stream when it resumes.
        apply_jobs(cluster, ns, ["fence-late"], iterations=5)
        time.sleep(1)
    finally:
        resumed_at = now()
        leader.signal(signal.SIGCONT)
    assert leader.proc is not None
    wait_for(lambda: not leader.alive(), 60, what="the deposed leader to exit")
    assert leader.proc.proc.returncode == 3, (
        leader.proc.log_tail()
    )  # lost the lease: exit, restart as standby
    refused = leader.proc.log_path.read_text().count("fence: refused")
    print(f"SIGSTOP past the lease, SIGCONT: {refused} writes refused by the fence, then exit 3")
    mine = [w for w in operator_writes(cluster.audit) if w.identity == paused and w.resource != "leases"]
    late = [w for w in mine if w.fenced and w.fenced >= resumed_at]
    assert late == [], f"the deposed leader's fence let writes through after it resumed: {late}"
    # Sent before the pause, between the fence and the socket, and so received after it: the
    # window the fence cannot close (one event-loop iteration); rare, and idempotent when it happens.
    in_flight = [w for w in mine if w.at >= resumed_at]
    print(f"  writes fenced before the pause but received after it: {len(in_flight)}")
    for name in ["fence-0", "fence-1", "fence-2", "fence-late"]:
        wait_for(lambda n=name: phase_is(cluster.cp, ns, n, "Queued", "Running", "Completed"), 60, what=name)
    assert_one_writer_at_a_time(cluster.audit, LEASE)
