"""How fast the operator takes N TrainingJobs to Queued with their Job, against creating the same N
objects raw; and the operator's peak RSS.

    python bench/operator_scale.py [--n 500] [--concurrency 32]

Runs a local control plane (no node agent: trainer pods stay Pending, so jobs stay Queued).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from agentcore.devenv.controlplane import ControlPlane
from agentcore.devenv.procs import ManagedProcess
from agentcore.kube import config as kubeconfig
from agentcore.kube.client import CONFIGMAPS, JOBS, NAMESPACES, TRAININGJOB_RESOURCE, KubeClient
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
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


if __name__ == "__main__":
    main()
