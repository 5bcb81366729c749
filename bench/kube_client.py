"""Benchmark the Kubernetes client: the hand-written one on main against the kubernetes-asyncio one.

    PYTHONPATH=operator:trainer-image python bench/kube_client.py [--gets 1000] [--events 1000]

A fake apiserver (aiohttp) runs in its own process on loopback and answers a ~2 KB Pod for GET
and a watch that streams ``--events`` Pod events and closes. In this process both clients, in
alternating rounds, do ``--gets`` sequential GETs and one full watch; the old client is
``git show main:operator/agentcore/kube/{client,config}.py`` imported as a temporary package. Per
client the best round is reported as wall time and this process's CPU time (the server's work is
not in it), then the ratio new/old (above 1: the new client is slower).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
POD_PATH = "/api/v1/namespaces/bench/pods"


def pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"trainer-{i}",
            "namespace": "bench",
            "resourceVersion": str(1000 + i),
            "labels": {f"label-{k}": "x" * 20 for k in range(10)},
            "annotations": {f"training.agentcore.io/a{k}": "y" * 60 for k in range(10)},
        },
        "spec": {"containers": [{"name": "main", "image": "trainer:1", "args": ["--x"] * 20}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}] * 4},
    }


def run_server(port_out: Any, events: int) -> None:
    body = json.dumps(pod(0)).encode()
    lines = [json.dumps({"type": "MODIFIED", "object": pod(i)}).encode() + b"\n" for i in range(events)]

    async def get(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def watch(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for line in lines:
            await resp.write(line)
        await resp.write_eof()
        return resp

    async def main() -> None:
        app = web.Application()
        app.router.add_get(POD_PATH + "/p", get)
        app.router.add_get(POD_PATH, watch)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_out.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


def old_client(tmp: Path) -> ModuleType:
    """main's client and config as the package ``oldkube``, importing each other."""
    package = tmp / "oldkube"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("client", "config"):
        source = subprocess.run(
            ["git", "-C", str(REPO), "show", f"main:operator/agentcore/kube/{name}.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (package / f"{name}.py").write_text(source.replace("agentcore.kube.config", "oldkube.config"))
    sys.path.insert(0, str(tmp))
    importlib.import_module("oldkube.client")
    return importlib.import_module("oldkube")


async def timed(action: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    count = await action()
    return time.perf_counter() - wall, time.process_time() - cpu, count


async def one_round(client: Any, pods: Any, gets: int) -> dict[str, tuple[float, float, int]]:
    async def do_gets() -> int:
        for _ in range(gets):
            await client.get(pods, "p", "bench")
        return gets

    async def do_watch() -> int:
        return sum([1 async for _ in client.watch(pods, "bench", timeout_seconds=60)])

    return {"get": await timed(do_gets), "watch": await timed(do_watch)}


async def measure(clients: dict[str, tuple[Any, Any]], gets: int, rounds: int) -> dict[str, Any]:
    best: dict[str, dict[str, tuple[float, float, int]]] = {}
    for client, pods in clients.values():
        await one_round(client, pods, 50)  # warm-up: connections and first-call imports
    for _ in range(rounds):
        for name, (client, pods) in clients.items():
            result = await one_round(client, pods, gets)
            for op, figures in result.items():
                if op not in best.setdefault(name, {}) or figures[1] < best[name][op][1]:
                    best[name][op] = figures
    return best


def report(best: dict[str, Any]) -> None:
    for op in ("get", "watch"):
        for name in ("old", "new"):
            wall, cpu, count = best[name][op]
            print(
                f"{op:5} {name}: {count} in {wall * 1000:7.1f} ms wall, {cpu * 1000:7.1f} ms CPU"
                f" ({cpu / count * 1e6:6.1f} µs CPU each)"
            )
        old, new = best["old"][op], best["new"][op]
        print(f"{op:5} ratio new/old: wall {new[0] / old[0]:.2f}, CPU {new[1] / old[1]:.2f}")


async def amain(args: argparse.Namespace, port: int, tmp: Path) -> None:
    from agentcore.kube import client as new
    from agentcore.kube import config as new_config

    old = old_client(tmp)
    path = tmp / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "current-context": "bench",
                "clusters": [{"name": "bench", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "bench", "user": {"token": "bench-token"}}],
                "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
            }
        )
    )
    old_kube = old.client.KubeClient(old.config.load(path))
    new_kube = new.KubeClient(await asyncio.to_thread(new_config.load, path))
    try:
        clients = {"old": (old_kube, old.client.PODS), "new": (new_kube, new.PODS)}
        report(await measure(clients, args.gets, args.rounds))
    finally:
        await old_kube.close()
        await new_kube.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gets", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ports: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=run_server, args=(ports, args.events), daemon=True)
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(amain(args, ports.get(timeout=30), Path(tmp)))
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
