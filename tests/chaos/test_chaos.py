"""The chaos suite: 50 TrainingJobs of four kinds (run to completion, cancelled, suspended and
resumed, stopped by their budget) in five tenant namespaces, while the operator leader is SIGKILLed
at random points, the API server trainers write through is restarted, trainer processes are
SIGKILLed and the kube-apiserver itself is restarted.

Then every job must be right from outside: its terminal phase and reason, exactly one batch Job
ever (the apiserver's audit log is the history), no duplicated trajectory, the same cost as every
other job of its kind (a cost counted twice on resume would differ), every terminal webhook
delivered and none twice under different idempotency keys, an Event for every key the status says
was notified, and no child object left without its owner. Seeded: AGENTCORE_CHAOS_SEED replays
the schedule of a failed run (the seed is printed first).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import yaml

from agentcore.api.labels import MANAGED_BY, OPERATOR_NAME, USABLE_BY_TRAININGJOBS
from agentcore.controllers.common.events import event_name, involved_object
from tests.conftest import trajectory_counts, wait_for
from tests.ha_support import Cluster, assert_one_writer_at_a_time, audited_cluster, operator_writes
from tests.integration.controllers.test_trainingjob import Receiver, add_queries, trainer_pids, training_job
from tests.operator_support import OperatorProcess, ha_group, leader_of

pytestmark = pytest.mark.integration
SEED = int(os.environ.get("AGENTCORE_CHAOS_SEED") or random.randrange(1 << 30))
LEASE = "agentcore-operator-chaos"
TENANTS = 5
BATCH, GROUP = 2, 2
SHORT = 40  # iterations of the jobs that complete (and of the suspended ones)
LONG = 5000  # iterations of the jobs a cancel or the budget stops
BUDGET = "0.03"
CANCEL_AT, SUSPEND_AT = 3, 5  # iterations reached before the user acts
KINDS = {"complete": 14, "suspend": 12, "cancel": 12, "budget": 12}  # 50 jobs
# The chaos: (a) leader SIGKILLs, (b) API server restarts, (c) trainer SIGKILLs, (d) one
# kube-apiserver restart, in a seeded order, a random pause apart.
CHAOS = ["leader"] * 20 + ["api"] * 2 + ["trainer"] * 7 + ["apiserver"]
# Twenty failovers in a few minutes: a lease shorter than the HA tests' (a standby takes over
# within ~4 s), a renew deadline still above the stalls of this loaded machine.
CHAOS_ELECTION = {
    "AGENTCORE_LEASE_DURATION_SECONDS": "4",
    "AGENTCORE_RENEW_DEADLINE_SECONDS": "3",
    "AGENTCORE_RETRY_PERIOD_SECONDS": "0.25",
}
TERMINAL = ("Completed", "Failed", "Cancelled")
EXPECTED_PHASE = {"complete": "Completed", "suspend": "Completed", "cancel": "Cancelled", "budget": "Failed"}
TERMINAL_EVENT = {
    "complete": "training.job.completed",
    "suspend": "training.job.completed",
    "cancel": "training.job.cancelled",
    "budget": "training.job.failed",
}
HOOK_EVENTS = sorted({*TERMINAL_EVENT.values(), "training.budget.warning"})


@dataclass
class Plan:
    ns: str
    name: str
    kind: str
    acted: bool = False  # cancel or suspend sent
    resumed: bool = False
    was_suspended: bool = False
    trainer_killed: bool = False

    def manifest(self, hook: dict) -> str:
        iterations = SHORT if self.kind in ("complete", "suspend") else LONG
        budget = BUDGET if self.kind == "budget" else "10.00"
        shape = {"batch": BATCH, "group": GROUP, "checkpoint_interval": 5}
        doc = yaml.safe_load(training_job(self.name, iterations, budget=budget, webhook=hook, **shape))
        doc["metadata"]["namespace"] = self.ns
        return yaml.safe_dump(doc)


@dataclass
class Chaos:
    cluster: Cluster
    operators: list[OperatorProcess]
    receiver: Receiver
    rng: random.Random
    plans: list[Plan]
    done: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    job_uids: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    timeline: list[str] = field(default_factory=list)

    # -- the cluster's side -----------------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str] | None:
        """None while the kube-apiserver is down (or restarting): the caller tries again later."""
        out = self.cluster.cp.kubectl(*args, input=input, check=False, timeout=30)
        return out if out.returncode == 0 else None

    def list(self, path: str) -> dict[tuple[str, str], dict] | None:
        """Every object at ``path`` by (namespace, name); None while the kube-apiserver is down.
        One GET, not a kubectl process: the test polls often, on a machine the jobs keep busy."""
        cp = self.cluster.cp
        try:
            with urllib.request.urlopen(
                f"{cp.url}{path}", context=cp.admin_ssl_context(), timeout=30
            ) as resp:
                items = json.loads(resp.read())["items"]
        except (OSError, ValueError):
            return None
        return {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in items}

    def statuses(self) -> dict[tuple[str, str], dict] | None:
        self.record_job_uids()
        return self.list("/apis/training.agentcore.io/v1alpha1/trainingjobs")

    def record_job_uids(self) -> None:
        """The UID history of every batch Job, as the test polls it (with the audit log's record
        of creates: a Job replaced between two polls would show there as a second create)."""
        for key, job in (self.list("/apis/batch/v1/jobs") or {}).items():
            self.job_uids[key].add(job["metadata"]["uid"])

    def supervise(self) -> None:
        """What the Deployment does: start any operator replica that is not running (killed, or
        exited after losing the Lease)."""
        for op in self.operators:
            if not op.alive():
                op.start()

    # -- the users' side --------------------------------------------------------------------------
    def create(self, plans: list[Plan]) -> None:
        secret = {"name": "hook-key", "key": "key"}
        hook = {"url": self.receiver.url, "events": HOOK_EVENTS, "secretRef": secret}
        docs = "---\n".join(plan.manifest(hook) for plan in plans)
        while self.kubectl("apply", "-f", "-", input=docs) is None:
            time.sleep(0.5)

    def act(self) -> dict[tuple[str, str], dict] | None:
        """Cancel, suspend and resume the jobs whose time has come; returns what it saw."""
        seen = self.statuses()
        for plan in self.plans if seen else []:
            obj = seen.get((plan.ns, plan.name)) if seen else None
            status = (obj or {}).get("status") or {}
            if not obj or status.get("phase") in TERMINAL:
                continue
            at = status.get("currentIteration", 0)
            if plan.kind == "cancel" and not plan.acted and at >= CANCEL_AT:
                plan.acted = self.patch(plan, {"spec": {"cancel": {"requested": True, "reason": "chaos"}}})
            elif plan.kind == "suspend" and not plan.acted and at >= SUSPEND_AT:
                plan.acted = self.patch(plan, {"spec": {"suspend": True}})
            elif plan.kind == "suspend" and plan.acted and not plan.resumed and _suspended(obj):
                plan.was_suspended = True
                plan.resumed = self.patch(plan, {"spec": {"suspend": False}})
        return seen

    def settle(self, timeout: float) -> dict[tuple[str, str], dict]:
        """Every job's object once all are terminal (the operators still supervised)."""
        deadline, waiting = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            self.supervise()
            seen = self.act()
            if seen:
                waiting = {
                    p.name: (seen.get((p.ns, p.name)) or {}).get("status")
                    for p in self.plans
                    if ((seen.get((p.ns, p.name)) or {}).get("status") or {}).get("phase") not in TERMINAL
                }
                if not waiting:
                    return seen
            time.sleep(1)
        raise AssertionError(f"not terminal after {timeout}s: {json.dumps(waiting, indent=1)[:20000]}")

    def patch(self, plan: Plan, body: dict) -> bool:
        out = self.kubectl("-n", plan.ns, "patch", "tj", plan.name, "--type=merge", "-p", json.dumps(body))
        return out is not None

    # -- the chaos --------------------------------------------------------------------------------
    def strike(self, action: str) -> bool:
        """One chaos action; False when it found nothing to strike (it is tried again later)."""
        started = time.monotonic()
        struck = self._strike(action)
        self.timeline.append(f"{action}{'' if struck else ' (nothing)'} {time.monotonic() - started:.1f}s")
        return struck

    def _strike(self, action: str) -> bool:
        if action == "leader":
            return self.kill_leader()
        if action == "api":
            self.rng.choice(self.operators).restart_api(wait=False)  # trainers retry meanwhile
        elif action == "trainer":
            return self.kill_trainer()
        elif action == "apiserver":
            self.cluster.cp.restart_apiserver()
        self.done[action] += 1
        return True

    def kill_leader(self) -> bool:
        self.supervise()
        try:
            leader = wait_for(lambda: leader_of(self.cluster.cp, self.operators), 60, 0.1, "a leader")
        except AssertionError:
            return False
        time.sleep(self.rng.uniform(0.1, 1.5))  # a random point of its work
        if not leader.alive():
            return False
        leader.kill()
        self.done["leader"] += 1
        self.supervise()  # back as a standby; the other replica takes over when the lease expires
        return True

    def kill_trainer(self) -> bool:
        """SIGKILL the trainer of a job that completes (each job at most once: backoffLimit)."""
        candidates = [p for p in self.plans if p.kind in ("complete", "suspend") and not p.trainer_killed]
        self.rng.shuffle(candidates)
        for plan in candidates:
            pids = trainer_pids(plan.name)
            if pids:
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        continue
                plan.trainer_killed = True
                self.done["trainer"] += 1
                return True
        return False


def _suspended(obj: dict) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Suspended" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def cluster(postgres) -> Iterator[Cluster]:
    with audited_cluster(postgres.dsn, "chaos") as c:
        yield c


@pytest.fixture(scope="module")
def operators(cluster, postgres, s3, tmp_path_factory) -> Iterator[list[OperatorProcess]]:
    state = tmp_path_factory.mktemp("chaos-operators")
    # Three replicas: a killed leader restarting on this busy machine is no warm standby for a while.
    ops = ha_group(cluster.cp, postgres, s3, state, LEASE, CHAOS_ELECTION, ("op-a", "op-b", "op-c"))
    for op in ops:
        op.start()
    for op in ops:
        op.wait_standing()
    yield ops
    for op in ops:
        op.stop()


@pytest.fixture(scope="module")
def tenants(cluster) -> Iterator[list[str]]:
    names = [f"chaos-{uuid.uuid4().hex[:6]}" for _ in range(TENANTS)]
    cp = cluster.cp
    for ns in names:
        cp.kubectl("create", "namespace", ns)
        wait_for(
            lambda ns=ns: cp.kubectl("-n", ns, "get", "sa", "default", check=False).returncode == 0,
            30,
            what=f"default service account in {ns}",
        )
        add_queries(cp, ns)
        cp.kubectl("-n", ns, "create", "secret", "generic", "hook-key", "--from-literal=key=chaos")
        cp.kubectl("-n", ns, "label", "secret", "hook-key", f"{USABLE_BY_TRAININGJOBS}=true")
    yield names
    for ns in names:
        cp.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def make_plans(tenants: list[str], rng: random.Random) -> list[Plan]:
    kinds = [kind for kind, n in KINDS.items() for _ in range(n)]
    rng.shuffle(kinds)
    # Names are unique across namespaces: the tests find a trainer's processes by job name.
    return [Plan(tenants[i % len(tenants)], f"{kind}-{i}", kind) for i, kind in enumerate(kinds)]


@pytest.mark.timeout(1200)
def test_fifty_jobs_come_out_right_through_the_chaos(cluster, operators, tenants, postgres):
    print(f"AGENTCORE_CHAOS_SEED={SEED}")
    rng = random.Random(SEED)
    plans = make_plans(tenants, rng)
    chaos = Chaos(cluster, operators, Receiver(), rng, plans)
    schedule = list(CHAOS)
    rng.shuffle(schedule)
    waves = [plans[i::5] for i in range(5)]
    started = time.monotonic()
    step = 0
    while schedule:
        if waves and step % 4 == 0:
            chaos.create(waves.pop(0))
        chaos.act()
        action = schedule.pop(0)
        if not chaos.strike(action):
            schedule.insert(min(len(schedule), 2), action)  # nothing to strike yet: a bit later
        chaos.supervise()
        pause_until = time.monotonic() + rng.uniform(0.2, 1.5)
        while time.monotonic() < pause_until:
            chaos.act()
            time.sleep(0.5)
        step += 1
        assert time.monotonic() - started < 900, f"the chaos did not end: {dict(chaos.done)}, left {schedule}"
    for wave in waves:
        chaos.create(wave)
    print(f"chaos done in {time.monotonic() - started:.0f}s: {dict(chaos.done)}")
    print("  " + ", ".join(chaos.timeline))

    final = chaos.settle(600)
    print(f"all {len(plans)} jobs terminal after {time.monotonic() - started:.0f}s")
    assert chaos.done["leader"] >= 20 and chaos.done["trainer"] >= 5, dict(chaos.done)
    assert chaos.done["api"] >= 1 and chaos.done["apiserver"] == 1, dict(chaos.done)
    by_plan = {(p.ns, p.name): final[(p.ns, p.name)] for p in plans}
    check_phases(plans, by_plan)
    check_one_job_ever(chaos, plans, by_plan)
    check_trajectories_and_cost(plans, by_plan, postgres.dsn)
    finals = wait_for(
        lambda: _all_notified(chaos, plans), 120, interval=1, what="every terminal notification recorded"
    )
    check_webhooks(chaos.receiver, plans, finals)
    check_events(cluster, plans, finals)
    check_no_orphans(cluster, tenants, finals)
    assert_one_writer_at_a_time(cluster.audit, LEASE)
    suspended = sum(p.was_suspended for p in plans)
    print(f"suspended and resumed: {suspended}/{KINDS['suspend']}; trainers killed: {chaos.done['trainer']}")
    assert suspended >= KINDS["suspend"] // 2, "too few suspends landed before their jobs completed"


# -- the checks ----------------------------------------------------------------------------------
def check_phases(plans: list[Plan], final: dict) -> None:
    wrong = []
    for plan in plans:
        status = final[(plan.ns, plan.name)]["status"]
        expected = EXPECTED_PHASE[plan.kind]
        if status["phase"] != expected:
            wrong.append((plan.name, status["phase"], status.get("reason"), status.get("message")))
        elif plan.kind == "budget" and (
            status.get("reason") != "BudgetExceeded" or status["trainer"]["state"] != "BudgetExceeded"
        ):
            # The trainer itself stopped at the budget: the operator did not cut it short.
            wrong.append((plan.name, status.get("reason"), status["trainer"], status.get("message")))
        elif plan.kind == "cancel" and not status["cancellation"]["checkpointSaved"]:
            wrong.append((plan.name, status["cancellation"]))
    assert wrong == [], wrong


def check_one_job_ever(chaos: Chaos, plans: list[Plan], final: dict) -> None:
    # The audit log can miss a create the old kube-apiserver answered as it shut down, never
    # invent one: at most one create each, and exactly one UID ever seen.
    created: dict[tuple[str, str], int] = defaultdict(int)
    for w in operator_writes(chaos.cluster.audit):
        if w.resource == "jobs" and w.verb == "create" and w.code == 201:
            created[(w.namespace, w.name)] += 1
    counts = {p.name: created[(p.ns, f"{p.name}-trainer")] for p in plans}
    assert {n: c for n, c in counts.items() if c > 1} == {}, "batch Jobs created per TrainingJob"
    chaos.record_job_uids()
    uids = {p.name: chaos.job_uids[(p.ns, f"{p.name}-trainer")] for p in plans}
    assert {n: u for n, u in uids.items() if len(u) != 1} == {}, "batch Job UIDs seen per TrainingJob"
    print(f"batch Job creates in the audit log: {sum(counts.values())} of {len(plans)}")
    for plan in plans:
        out = chaos.cluster.cp.kubectl("-n", plan.ns, "get", "job", f"{plan.name}-trainer", "-o", "json")
        job = json.loads(out.stdout)
        assert job["metadata"]["uid"] in uids[plan.name], plan.name
        owner = job["metadata"]["ownerReferences"][0]["uid"]
        assert owner == final[(plan.ns, plan.name)]["metadata"]["uid"], plan.name
        # The operator never suspends a Job that already ended (the budget-stop defect).
        if job["status"].get("succeeded"):
            assert not job["spec"].get("suspend"), f"{plan.name}: a finished Job was suspended"


def check_trajectories_and_cost(plans: list[Plan], final: dict, dsn: str) -> None:
    costs: dict[str, set[str]] = defaultdict(set)
    stops: dict[str, set[int]] = defaultdict(set)
    for plan in plans:
        obj = final[(plan.ns, plan.name)]
        status = obj["status"]
        iterations = status["currentIteration"]
        if plan.kind in ("complete", "suspend"):
            assert iterations == SHORT, plan.name
        total, distinct = trajectory_counts(dsn, obj["metadata"]["uid"])
        assert total == distinct == iterations * BATCH * GROUP, (plan.name, total, distinct, iterations)
        if plan.kind != "cancel":  # cancels land at different iterations
            costs["short" if plan.kind != "budget" else "budget"].add(status["costUsd"])
            if plan.kind == "budget":
                stops["budget"].add(iterations)
                assert float(status["costUsd"]) <= float(BUDGET), (plan.name, status["costUsd"])
    # Same seed, same data, same configuration: the same trajectories and so the same cost, however
    # often the run was killed and resumed. A cost counted twice on a resume would stand out.
    assert len(costs["short"]) == 1, f"Completed jobs of one configuration differ in cost: {costs['short']}"
    assert len(costs["budget"]) == 1 and len(stops["budget"]) == 1, (costs["budget"], stops["budget"])


def _all_notified(chaos: Chaos, plans: list[Plan]) -> dict | None:
    seen = chaos.statuses()
    if not seen:
        return None
    for plan in plans:
        status = seen[(plan.ns, plan.name)]["status"]
        if TERMINAL_EVENT[plan.kind] not in (status.get("notifiedEvents") or []):
            return None
    return seen


def check_webhooks(receiver: Receiver, plans: list[Plan], final: dict) -> None:
    keys: dict[tuple[str, str, object], set[str]] = defaultdict(set)
    for headers, body in receiver.deliveries:
        payload = json.loads(body)
        data = payload["data"]
        keys[(data["job_id"], payload["event"], data.get("threshold_percent"))].add(
            headers["x-agentcore-delivery"]
        )
    twice = {k: v for k, v in keys.items() if len(v) != 1}
    assert twice == {}, f"deliveries of one notification under different idempotency keys: {twice}"
    for plan in plans:
        uid = final[(plan.ns, plan.name)]["metadata"]["uid"]
        assert (uid, TERMINAL_EVENT[plan.kind], None) in keys, f"{plan.name}: no terminal webhook"
        if plan.kind == "budget":
            for threshold in (75, 90):
                assert (uid, "training.budget.warning", threshold) in keys, (plan.name, threshold)


def check_events(cluster: Cluster, plans: list[Plan], final: dict) -> None:
    out = cluster.cp.kubectl("get", "events", "-A", "-o", "json").stdout
    names = {(e["metadata"]["namespace"], e["metadata"]["name"]) for e in json.loads(out)["items"]}
    missing = []
    for plan in plans:
        obj = final[(plan.ns, plan.name)]
        status = obj["status"]
        involved = involved_object(obj["apiVersion"], obj["kind"], plan.name, plan.ns, obj["metadata"]["uid"])
        keys = set(status.get("notifiedEvents") or [])
        # Not event.phase:Running: a job cancelled while no leader ran can go from Queued to
        # Cancelled without Running ever being the persisted phase (seed 151140473).
        required = {
            "event.trainer-job-created",
            f"event.phase:{status['phase']}",
            "training.job.started",
            TERMINAL_EVENT[plan.kind],
        }
        if not required <= keys:
            missing.append((plan.name, "not notified", sorted(required - keys)))
        missing += [(plan.name, k) for k in sorted(keys) if (plan.ns, event_name(involved, k)) not in names]
    assert missing == [], f"Events recorded as notified but absent, or never notified: {missing}"


def check_no_orphans(cluster: Cluster, tenants: list[str], final: dict) -> None:
    live = {obj["metadata"]["uid"] for obj in final.values()}
    kinds = "jobs,serviceaccounts,roles,rolebindings,services,configmaps,secrets"
    orphans = []
    for ns in tenants:
        out = cluster.cp.kubectl("-n", ns, "get", kinds, "-l", f"{MANAGED_BY}={OPERATOR_NAME}", "-o", "json")
        for obj in json.loads(out.stdout)["items"]:
            owners = {o["uid"] for o in obj["metadata"].get("ownerReferences") or [] if o.get("controller")}
            if not owners & live:
                orphans.append((ns, obj["kind"], obj["metadata"]["name"]))
    assert orphans == [], orphans
