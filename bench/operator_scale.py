"""How fast the operator takes N TrainingJobs to Queued with their Job, against creating the same N
objects raw; and the operator's peak RSS. With --failover, also the leader-failover time of two
operator replicas (SIGKILL and SIGTERM of the leader; see `failover`).

    python bench/operator_scale.py [--n 500] [--concurrency 32] [--failover [--rounds 3]]

Runs a local control plane (no node agent: trainer pods stay Pending, so jobs stay Queued).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from agentcore.devenv.controlplane import ControlPlane
from agentcore.devenv.procs import ManagedProcess
from agentcore.kube import config as kubeconfig
from agentcore.kube.client import (
    CONFIGMAPS,
    JOBS,
    LEASES,
    NAMESPACES,
    TRAININGJOB_RESOURCE,
    ApiError,
    KubeClient,
)
from agentcore_trainer.datasets import generate

REPO = Path(__file__).resolve().parent.parent


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


async def create_all(kube: KubeClient, ns: str, n: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await kube.create(TRAININGJOB_RESOURCE, trainingjob(f"tj-{i:05d}"), ns)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - started


async def all_queued(kube: KubeClient, ns: str, n: int) -> bool:
    tjs = (await kube.list(TRAININGJOB_RESOURCE, ns))["items"]
    jobs = (await kube.list(JOBS, ns))["items"]
    queued = sum((t.get("status") or {}).get("phase") == "Queued" for t in tjs)
    return queued == n and len(jobs) == n


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def bench(cp: ControlPlane, n: int, concurrency: int, state: Path) -> dict[str, float]:
    async with KubeClient(kubeconfig.load(cp.kubeconfig)) as kube:
        for ns in ("raw", "bench"):
            await kube.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        queries = json.dumps(generate(100, seed=0))
        await kube.create(
            CONFIGMAPS,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "queries"},
                "data": {"queries.json": queries},
            },
            "bench",
        )
        raw = await create_all(kube, "raw", n, concurrency)

        env = {**os.environ, "KUBECONFIG": str(cp.kubeconfig), "AGENTCORE_RESYNC_SECONDS": "60"}
        agentcore = str(Path(sys.executable).parent / "agentcore")
        op = ManagedProcess(
            "operator",
            [agentcore, "operator", "--namespace", "bench", "--log-format", "plain"],
            state / "operator.log",
            env=env,
        )
        try:
            await asyncio.sleep(3)  # let kopf start watching
            started = time.perf_counter()
            created = await create_all(kube, "bench", n, concurrency)
            while not await all_queued(kube, "bench", n):
                await asyncio.sleep(0.5)
                if not op.alive():
                    raise RuntimeError(op.log_tail())
            converged = time.perf_counter() - started
            rss = peak_rss_mib(op.pid)
        finally:
            op.stop()
    return {
        "raw_create_s": raw,
        "operator_create_s": created,
        "operator_converged_s": converged,
        "ratio": converged / raw,
        "operator_peak_rss_mib": rss,
    }


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
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--failover", action="store_true", help="also measure leader failover")
    parser.add_argument("--rounds", type=int, default=3, help="failovers per signal")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="agentcore-bench-"))
    flags = (
        "--max-requests-inflight=0",
        "--max-mutating-requests-inflight=0",
        "--enable-priority-and-fairness=false",
    )
    with ControlPlane(extra_apiserver_flags=flags) as cp:
        cp.kubectl("apply", "-f", str(REPO / "crds"))
        cp.kubectl("wait", "--for=condition=Established", "-f", str(REPO / "crds"))
        result = asyncio.run(bench(cp, args.n, args.concurrency, state))
        failed_over = asyncio.run(failover(cp, state, args.rounds)) if args.failover else None
    n = args.n
    print(f"TrainingJobs: {n}")
    print(
        f"raw create of {n} TrainingJobs (no operator):       {result['raw_create_s']:.2f} s "
        f"({n / result['raw_create_s']:.0f}/s)"
    )
    print(f"create with operator running:                     {result['operator_create_s']:.2f} s")
    print(
        f"until every one is Queued with its Job:           {result['operator_converged_s']:.2f} s "
        f"({n / result['operator_converged_s']:.0f}/s)"
    )
    print(f"ratio (operator converged / raw create):          {result['ratio']:.2f}x")
    print(f"operator peak RSS:                                {result['operator_peak_rss_mib']:.0f} MiB")
    if failed_over is not None:
        print_failover(failed_over)


if __name__ == "__main__":
    main()
