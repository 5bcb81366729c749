"""Benchmark ``training.get_status`` of the API server against a bare aiohttp JSON handler.

    python bench/rpc.py                       # ~75 s: 3 rounds x 2 servers x (warm-up + 10 s)
    python bench/rpc.py --concurrency 64 --duration 20 --jobs 10000 --out result.json

Three kinds of process: each server runs alone in its own process (one event loop, as deployed),
and the load comes from a separate process (aiohttp client, ``--concurrency`` connections, each
sending one request after the other). Reported per server: requests/s, p50 and p99 latency seen by
the client, and the server's CPU time per request (from /proc, so it does not depend on whether the
load generator saturates first). The ratio compares the API server with the bare handler. The
machine is noisy (one 10 s run of the same server varies by 20 %): the servers are measured in
alternation for ``--rounds`` rounds and each figure is the median over the rounds.

The API server runs as in production, minus the network hops behind it: real JWT verification
(HS256), rate limiting (limits raised so the load is not refused), JSON-RPC parsing and
validation, tenant check, the watch-backed cache (filled from an in-memory "apiserver" holding
``--jobs`` TrainingJobs), Prometheus metrics and the JSON access log (written to a file). The bare
handler parses the same body and answers a status of the same shape with ``json.dumps``.

`--export-rows N` (e.g. 1010000) instead measures export_trajectories latency for a 10,000-row page at
offset 0, at offset 1,000,000 and through the keyset cursor at the same depth, over HTTP against
the API server backed by a real PostgreSQL holding N trajectory rows (see bench/rpc_export.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

RPC_PATH = "/api/v1/jsonrpc"
SECRET = "bench-secret-0123456789abcdef0123456789abcd"


# --- servers ------------------------------------------------------------------------------------------


def trainingjob(i: int) -> dict[str, Any]:
    """A running job with the status fields a trainer writes."""
    return {
        "metadata": {
            "name": f"bench-{i}",
            "namespace": "bench",
            "uid": str(uuid.UUID(int=i + 1)),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "resourceVersion": str(i + 1),
        },
        "spec": {"agentId": "bench-agent", "config": {"nIterations": 500, "maxBudgetUsd": "50.00"}},
        "status": {
            "phase": "Running",
            "currentIteration": 150,
            "totalIterations": 500,
            "progressPercent": 30.0,
            "metrics": {
                "trainLoss": 0.234,
                "validationAccuracy": 0.82,
                "avgReward": 0.65,
                "trajectoriesGenerated": 1200,
            },
            "costUsd": "12.50",
            "budgetUsd": "50.00",
            "budgetRemainingPercent": 75.0,
            "startedAt": "2025-10-17T10:30:05Z",
            "estimatedCompletion": "2025-10-17T12:15:00Z",
            "bestCheckpointId": "abc-123-def",
        },
    }


class StaticKube:
    """An apiserver that holds ``n`` TrainingJobs and never changes them."""

    def __init__(self, n: int) -> None:
        self.items = [trainingjob(i) for i in range(n)]

    async def list(self, res: Any, namespace: str | None = None, **params: Any) -> dict[str, Any]:
        return {"items": self.items, "metadata": {"resourceVersion": str(len(self.items))}}

    async def watch(
        self, res: Any, namespace: str | None = None, resource_version: str | None = None, **params: Any
    ) -> Any:
        await asyncio.Event().wait()
        yield {}

    async def close(self) -> None:
        return None


def serve_agentcore(port: int, jobs: int, state: Path, database_url: str | None = None) -> None:
    from agentcore import logs
    from agentcore.server.app import create_app
    from agentcore.server.ratelimit import SPEC_LIMITS, RateLimit
    from agentcore.server.settings import Settings

    logs.configure("INFO", stream=(state / "access.log").open("a"))  # open as long as the server runs
    settings = Settings(
        jwt_secret=SECRET,
        database_url=database_url or f"sqlite+aiosqlite:///{state / 'bench.db'}",
        rate_limits={name: RateLimit(10**9) for name in SPEC_LIMITS},
    )
    app = create_app(
        settings,
        kube_client_factory=lambda: StaticKube(jobs),  # type: ignore[arg-type,return-value]
        freeze_heap=True,  # as the CLI does
    )
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_bare(port: int) -> None:
    from agentcore.server.jsonrpc.jobs import CachedTrainingJob, status_view

    # The same result shape, built once before serving.
    status = status_view(CachedTrainingJob.model_validate(trainingjob(0)))

    async def handle(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        reply = {"jsonrpc": "2.0", "result": {**status, "job_id": body["params"]["job_id"]}, "id": body["id"]}
        return web.Response(body=json.dumps(reply).encode(), content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post(RPC_PATH, handle)
    app.router.add_get("/readyz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- load generator -------------------------------------------------------------------------------------


async def load(
    url: str, concurrency: int, duration: float, warmup: float, jobs: int, token: str
) -> dict[str, Any]:
    job_ids = [str(uuid.UUID(int=i + 1)) for i in range(jobs)]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    measuring = False

    async def worker(session: aiohttp.ClientSession, seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        while not stop.is_set():
            body = {
                "jsonrpc": "2.0",
                "method": "training.get_status",
                "params": {"job_id": rng.choice(job_ids)},
                "id": 1,
            }
            started = time.perf_counter()
            async with session.post(url + RPC_PATH, data=json.dumps(body), headers=headers) as resp:
                payload = await resp.read()
            if measuring:
                latencies.append(time.perf_counter() - started)
                if resp.status != 200 or b'"result"' not in payload:
                    errors += 1

    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(worker(session, i)) for i in range(concurrency)]
        await asyncio.sleep(warmup)
        measuring = True
        began = time.perf_counter()
        await asyncio.sleep(duration)
        measuring = False
        elapsed = time.perf_counter() - began
        stop.set()
        await asyncio.gather(*tasks)
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "seconds": elapsed,
    }


# --- orchestration ------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")


def measure(kind: str, args: argparse.Namespace, token: str, state: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = [sys.executable, __file__, "--serve", kind, "--port", str(port), "--jobs", str(args.jobs)]
    serve += ["--state", str(state)]
    server = subprocess.Popen(serve, stderr=subprocess.DEVNULL)
    try:
        asyncio.run(wait_ready(url))
        loadgen = [sys.executable, __file__, "--load", url, "--concurrency", str(args.concurrency)]
        loadgen += ["--duration", str(args.duration), "--warmup", str(args.warmup), "--jobs", str(args.jobs)]
        loadgen += ["--token", token]
        before = cpu_seconds(server.pid)
        result: dict[str, Any] = json.loads(subprocess.run(loadgen, check=True, capture_output=True).stdout)
        # CPU spent during warm-up + measurement, over the requests of the measurement window only
        # would overstate; scale by the measured share of the run instead.
        spent = cpu_seconds(server.pid) - before
        share = result["seconds"] / (result["seconds"] + args.warmup)
        result["server_cpu_us_per_request"] = 1e6 * spent * share / max(1, result["requests"])
        return result
    finally:
        server.terminate()
        server.wait(10)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (and the runs themselves, for the record)."""
    keys = ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_request")
    out: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["errors"] = sum(r["errors"] for r in runs)
    out["runs"] = runs
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--jobs", type=int, default=1000, help="TrainingJobs in the cache")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each server")
    parser.add_argument("--out", help="also write the results as JSON")
    parser.add_argument("--serve", choices=["agentcore", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--export-rows", type=int, default=0, help="benchmark export_trajectories instead")
    args = parser.parse_args()

    if args.serve == "agentcore":
        return serve_agentcore(args.port, args.jobs, Path(args.state), args.database_url)
    if args.export_rows:
        from rpc_export import run as run_export  # bench/ is on sys.path when run as a script

        return run_export(args.export_rows, __file__, wait_ready, SECRET)
    if args.serve == "bare":
        return serve_bare(args.port)
    if args.load:
        result = asyncio.run(
            load(args.load, args.concurrency, args.duration, args.warmup, args.jobs, args.token)
        )
        print(json.dumps(result))
        return None

    from agentcore.auth.tokens import issue_token

    token = issue_token(SECRET, "bench", ["training:view"], ["bench"])
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "agentcore": []}
    with tempfile.TemporaryDirectory(prefix="agentcore-bench-") as state:
        for _ in range(args.rounds):
            for kind, done in runs.items():
                done.append(measure(kind, args, token, Path(state)))
    results: dict[str, Any] = {kind: _median(done) for kind, done in runs.items()}
    ours, bare = results["agentcore"], results["bare"]
    results["ratio"] = {
        "throughput": ours["rps"] / bare["rps"],
        "p50": ours["p50_ms"] / bare["p50_ms"],
        "p99": ours["p99_ms"] / bare["p99_ms"],
        "cpu_per_request": ours["server_cpu_us_per_request"] / bare["server_cpu_us_per_request"],
    }
    print(
        f"training.get_status, {args.concurrency} connections, {args.duration:g} s, {args.jobs} jobs cached, "
        f"median of {args.rounds} alternating rounds"
    )
    print(f"{'server':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'CPU us/req':>12}{'errors':>8}")
    for kind in ("bare", "agentcore"):
        r = results[kind]
        cpu = r["server_cpu_us_per_request"]
        print(
            f"{kind:<12}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{cpu:>12.0f}{r['errors']:>8}"
        )
    ratio = results["ratio"]
    print(
        f"agentcore/bare: throughput x{ratio['throughput']:.2f}, p50 x{ratio['p50']:.2f}, "
        f"p99 x{ratio['p99']:.2f}, CPU per request x{ratio['cpu_per_request']:.2f}"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return None


if __name__ == "__main__":
    main()
