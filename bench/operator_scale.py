"""The operator's reconcile cost against the apiserver's floor, at several N, in one run; with
--failover, also the leader-failover time of two operator replicas (see `failover`).

    python bench/operator_scale.py [--n 100 1000] [--concurrency 32] [--failover [--rounds 3]]

For each N, in fresh namespaces of one local control plane (no node agent: trainer pods stay
Pending, so every job stays Queued):

- floor: a client creates, for N jobs, the very objects the operator creates per job — the
  TrainingJob, the data read, the trainer's ServiceAccount, Role, RoleBinding, Secret and Job,
  the status write and the two Events (TrainerJobCreated, PhaseQueued) — built by the operator's
  own pure functions (children.*, decide, state_events), with the same client and concurrency;
- operator: a fresh operator process watches its namespace while the N TrainingJobs are created;
  timed until every one is Queued with its Job and both Events exist.

Prints both times and their ratio, the operator's peak RSS, and the API calls per job the operator
made (counted in the apiserver's audit log by the operator's User-Agent; watches not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from agentcore.api import labels
from agentcore.api.batchjob import BatchJob
from agentcore.api.training import TrainingJob
from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.common.create import create_workload
from agentcore.controllers.common.events import post_event_once
from agentcore.controllers.trainingjob import children
from agentcore.controllers.trainingjob.decide import decide, status_patch
from agentcore.controllers.trainingjob.reconciler import state_events
from agentcore.devenv.controlplane import ControlPlane
from agentcore.devenv.procs import ManagedProcess
from agentcore.kube import config as kubeconfig
from agentcore.kube.client import (
    CONFIGMAPS,
    EVENTS,
    JOBS,
    LEASES,
    NAMESPACES,
    TRAININGJOB_RESOURCE,
    ApiError,
    KubeClient,
)
from agentcore_trainer.datasets import generate

REPO = Path(__file__).resolve().parent.parent
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
  - level: Metadata
"""
EVENTS_PER_JOB = 2  # TrainerJobCreated, PhaseQueued


def trainingjob(name: str) -> dict:
    return {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "agentId": "bench",
            "config": {"nIterations": 10},
            "trainingData": {"configMapKeyRef": {"name": "queries", "key": "queries.json"}},
        },
    }


async def prepare(kube: KubeClient, ns: str) -> None:
    await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "queries"},
        "data": {"queries.json": json.dumps(generate(100, seed=0))},
    }
    await kube.create(CONFIGMAPS, manifest, ns)


async def gathered(n: int, concurrency: int, one) -> float:  # type: ignore[no-untyped-def]
    gate = asyncio.Semaphore(concurrency)

    async def bounded(i: int) -> None:
        async with gate:
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(bounded(i) for i in range(n)))
    return time.perf_counter() - started


async def floor_job(kube: KubeClient, ns: str, name: str, config: OperatorConfig) -> None:
    """Exactly what the operator must write for one job, straight from a client."""
    tj = TrainingJob.model_validate(await kube.create(TRAININGJOB_RESOURCE, trainingjob(name), ns))
    await kube.get(CONFIGMAPS, "queries", ns)  # the data read that validates the job
    access = [children.service_account(tj), children.role(tj), children.role_binding(tj)]  # no Secret
    job = BatchJob.model_validate(await create_workload(kube, ns, access, children.job(tj, config)))
    now = dt.datetime.now(dt.UTC)
    desired = decide(tj, job, None, now).status
    tj = tj.model_copy(update={"status": desired})
    keys = []
    for event in state_events(tj, job):
        involved = {"apiVersion": tj.api_version, "kind": tj.kind, "name": name, "namespace": ns}
        involved["uid"] = tj.metadata.uid or ""
        await post_event_once(kube, involved, event.key, event.type, event.reason, event.message, now)
        keys.append(event.key)
    patch = {**status_patch(None, desired), "notifiedEvents": sorted(keys)}
    await kube.patch(TRAININGJOB_RESOURCE, name, {"status": patch}, ns, sub="status")


async def converged(kube: KubeClient, ns: str, n: int) -> bool:
    tjs = (await kube.list(TRAININGJOB_RESOURCE, ns))["items"]
    if sum((t.get("status") or {}).get("phase") == "Queued" for t in tjs) < n:
        return False
    if len((await kube.list(JOBS, ns))["items"]) < n:
        return False
    events = (await kube.list(EVENTS, ns))["items"]
    ours = sum(e.get("reportingComponent") == labels.OPERATOR_NAME for e in events)
    return ours >= EVENTS_PER_JOB * n


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def audit_calls(audit_log: Path, namespace: str) -> Counter[str]:
    """The operator's non-watch requests in `namespace`, by verb (from its User-Agent)."""
    calls: Counter[str] = Counter()
    with audit_log.open() as lines:
        for line in lines:
            entry = json.loads(line)
            agent = entry.get("userAgent", "")
            if not (agent.startswith(labels.OPERATOR_NAME) or agent.startswith("kopf")):
                continue
            if entry.get("verb") == "watch" or (entry.get("objectRef") or {}).get("namespace") != namespace:
                continue
            calls[f"{agent.split('/')[0]} {entry['verb']}"] += 1
    return calls


async def operator_phase(
    cp: ControlPlane, kube: KubeClient, ns: str, n: int, concurrency: int, state: Path
) -> dict[str, float]:
    env = {**os.environ, "KUBECONFIG": str(cp.kubeconfig), "AGENTCORE_RESYNC_SECONDS": "600"}
    agentcore = str(Path(sys.executable).parent / "agentcore")
    argv = [agentcore, "operator", "--namespace", ns, "--log-format", "plain"]
    op = ManagedProcess("operator", argv, state / f"operator-{ns}.log", env=env)
    try:
        await asyncio.sleep(3)  # let kopf start watching
        started = time.perf_counter()
        await gathered(
            n, concurrency, lambda i: kube.create(TRAININGJOB_RESOURCE, trainingjob(f"tj-{i:05d}"), ns)
        )
        while not await converged(kube, ns, n):
            await asyncio.sleep(0.25)
            if not op.alive():
                raise RuntimeError(op.log_tail())
        elapsed = time.perf_counter() - started
        await asyncio.sleep(2)  # let trailing reconciles (the Job controller's updates) finish
        rss = peak_rss_mib(op.pid)
    finally:
        op.stop()
    return {"operator_s": elapsed, "rss_mib": rss}


async def bench_n(cp: ControlPlane, n: int, concurrency: int, state: Path, audit: Path) -> dict:
    config = OperatorConfig.from_env()
    async with KubeClient(kubeconfig.load(cp.kubeconfig), user_agent="agentcore-bench") as kube:
        floor_ns, op_ns = f"floor-{n}", f"op-{n}"
        for ns in (floor_ns, op_ns):
            await prepare(kube, ns)
        floor = await gathered(n, concurrency, lambda i: floor_job(kube, floor_ns, f"tj-{i:05d}", config))
        result = await operator_phase(cp, kube, op_ns, n, concurrency, state)
    calls = audit_calls(audit, op_ns)
    return {"n": n, "floor_s": floor, **result, "calls": calls}


def report(r: dict) -> None:
    n, calls = r["n"], r["calls"]
    total = sum(calls.values())
    floor_calls = 9  # GET ConfigMap, 5 creates, 2 Events, 1 status patch
    print(f"N = {n}")
    print(f"  floor (client creates what the operator creates): {r['floor_s']:7.2f} s")
    print(f"  operator until Queued + Job + Events:             {r['operator_s']:7.2f} s")
    print(f"  ratio operator / floor:                           {r['operator_s'] / r['floor_s']:7.2f}x")
    print(f"  operator peak RSS:                                {r['rss_mib']:7.0f} MiB")
    print(f"  operator API calls per job:                       {total / n:7.2f} (floor {floor_calls})")
    for key, count in sorted(calls.items()):
        print(f"    {key:<36} {count / n:6.2f}")


# -- leader failover -----------------------------------------------------------------------------
FAILOVER_NS = "failover"
FAILOVER_LEASE = "agentcore-operator-failover"


def start_replica(cp: ControlPlane, state: Path, name: str) -> ManagedProcess:
    """One operator replica on the failover Lease, with the chart's (client-go's) election timings."""
    env = {
        **os.environ,
        "KUBECONFIG": str(cp.kubeconfig),
        "POD_NAME": name,
        "AGENTCORE_LEASE_NAME": FAILOVER_LEASE,
        "AGENTCORE_LEASE_NAMESPACE": "default",
        "AGENTCORE_RESYNC_SECONDS": "60",
    }
    argv = [str(Path(sys.executable).parent / "agentcore"), "operator", "--namespace", FAILOVER_NS]
    return ManagedProcess(name, [*argv, "--log-format", "plain"], state / f"{name}.log", env=env)


async def lease_holder(kube: KubeClient) -> str:
    try:
        lease = await kube.get(LEASES, FAILOVER_LEASE, "default")
    except ApiError:
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


async def wait_standing(proc: ManagedProcess) -> None:
    while "'startup' succeeded" not in proc.log_tail(1 << 20):
        if not proc.alive():
            raise RuntimeError(proc.log_tail())
        await asyncio.sleep(0.2)


async def one_failover(
    kube: KubeClient, replicas: dict[str, ManagedProcess], sig: signal.Signals, job: str
) -> tuple[float, float]:
    """Signal the leader, then create a TrainingJob at once: (seconds until another replica holds
    the Lease, seconds until that TrainingJob has a status). After SIGKILL the status is the new
    leader's first reconcile; after SIGTERM the old leader may still write it before kopf stops."""
    leader = ""
    while leader not in replicas:
        await asyncio.sleep(0.1)
        leader = (await lease_holder(kube)).rpartition("_")[0]
    for proc in replicas.values():
        await wait_standing(proc)
    await asyncio.sleep(5)  # the standby has polled a renewed record a few times
    started = time.perf_counter()
    os.killpg(replicas[leader].pid, sig)
    await kube.create(TRAININGJOB_RESOURCE, trainingjob(job), FAILOVER_NS)
    acquired = reconciled = None
    while acquired is None or reconciled is None:
        now = time.perf_counter() - started
        current = await lease_holder(kube)
        if acquired is None and current and current.rpartition("_")[0] not in ("", leader):
            acquired = now
        tj = await kube.get(TRAININGJOB_RESOURCE, job, FAILOVER_NS)
        if reconciled is None and (tj.get("status") or {}).get("phase"):
            reconciled = now
        await asyncio.sleep(0.05)
    replicas[leader].stop(30)
    return acquired, reconciled


async def failover(cp: ControlPlane, state: Path, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Two replicas; the leader is SIGKILLed `rounds` times, then SIGTERMed `rounds` times, each
    time restarted as a standby. Default election timings: lease 15 s, renew 10 s, retry 2 s."""
    results: dict[str, list[tuple[float, float]]] = {"SIGKILL": [], "SIGTERM": []}
    async with KubeClient(kubeconfig.load(cp.kubeconfig)) as kube:
        await kube.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": FAILOVER_NS}}
        )
        queries = {"queries.json": json.dumps(generate(100, seed=0))}
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "queries"},
            "data": queries,
        }
        await kube.create(CONFIGMAPS, configmap, FAILOVER_NS)
        starts = {"op-a": 0, "op-b": 0}
        replicas: dict[str, ManagedProcess] = {}

        def start(base: str) -> None:
            starts[base] += 1
            name = f"{base}-{starts[base]}"
            replicas[name] = start_replica(cp, state, name)

        start("op-a")
        start("op-b")
        try:
            for sig in (signal.SIGKILL, signal.SIGTERM):
                for i in range(rounds):
                    before = set(replicas)
                    result = await one_failover(kube, replicas, sig, f"failover-{sig.name.lower()}-{i}")
                    results[sig.name].append(result)
                    gone = next(n for n in before if not replicas[n].alive())
                    del replicas[gone]
                    start(gone.rsplit("-", 1)[0])
        finally:
            for proc in replicas.values():
                proc.stop()
    return results


def print_failover(results: dict[str, list[tuple[float, float]]]) -> None:
    print("leader failover (2 replicas; lease 15 s, renew deadline 10 s, retry 2 s):")
    for sig, rows in results.items():
        acquired = ", ".join(f"{a:.2f}" for a, _ in rows)
        reconciled = ", ".join(f"{r:.2f}" for _, r in rows)
        print(f"  {sig} of the leader → the standby holds the Lease:          {acquired} s")
        print(f"  {sig} of the leader → a TrainingJob created then is reconciled: {reconciled} s")
    print("  (after SIGTERM the old leader may reconcile it itself, until kopf has stopped)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--failover", action="store_true", help="also measure leader failover")
    parser.add_argument("--rounds", type=int, default=3, help="failovers per signal")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="agentcore-bench-"))
    policy, audit = state / "audit-policy.yaml", state / "audit.log"
    policy.write_text(AUDIT_POLICY)
    flags = (
        "--max-requests-inflight=0",
        "--max-mutating-requests-inflight=0",
        "--enable-priority-and-fairness=false",
        f"--audit-policy-file={policy}",
        f"--audit-log-path={audit}",
        "--audit-log-format=json",
        "--audit-log-maxsize=0",
    )
    with ControlPlane(extra_apiserver_flags=flags) as cp:
        cp.kubectl("apply", "-f", str(REPO / "crds"))
        cp.kubectl("wait", "--for=condition=Established", "-f", str(REPO / "crds"))
        for n in args.n:
            report(asyncio.run(bench_n(cp, n, args.concurrency, state, audit)))
        failed_over = asyncio.run(failover(cp, state, args.rounds)) if args.failover else None
    if failed_over is not None:
        print_failover(failed_over)


if __name__ == "__main__":
    main()
