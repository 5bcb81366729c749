"""Scaling of the built-in policy's GRPO iteration across torch.distributed workers (gloo, CPU).

    python bench/distributed.py [--workers 1,2,4] [--iterations 10] [--batch 16] [--group 8]

For each worker count, starts that many real processes (one rank each, rendezvous on loopback, as
the trainer pods of one TrainingJob do), runs the same iterations of `Trainer.step` (same seed,
same global batch), and prints, from rank 0: iteration time, trajectories per second, the time
spent in collectives per update (all-gathers of rewards and reports, all-reduces of the token
count, gradients and metrics), and the ratio of each to one worker. Storage (PostgreSQL, S3) is
left out: rank 0 writes it the same way whatever the worker count.

On a machine with C cores, more than C workers only add contention and communication: read the
ratios with the core count (printed) in mind.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from tempfile import TemporaryDirectory

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy as np
    from agentcore_trainer.algorithm.grpo import AlgoConfig
    from agentcore_trainer.algorithm.trainer import Trainer
    from agentcore_trainer.datasets import generate
    from agentcore_trainer.distributed import World, connect

    args = json.loads(sys.argv[1])
    inner = connect(World.from_env(os.environ))

    class Timed:
        # Every collective of the trainer, timed (the wait for slower ranks is part of it).
        def __init__(self, comm):
            self.comm, self.rank, self.world_size, self.seconds = comm, comm.rank, comm.world_size, 0.0
        def __getattr__(self, name):
            op = getattr(self.comm, name)
            def timed(*a):
                start = time.perf_counter()
                try:
                    return op(*a)
                finally:
                    self.seconds += time.perf_counter() - start
            return timed

    comm = Timed(inner)
    trainer = Trainer(generate(400, seed=3), AlgoConfig(), batch_size=args["batch"], group_size=args["group"],
                      max_steps=args["max_steps"], seed=7, comm=comm)
    for _ in range(args["warmup"]):
        trainer.step()
    comm.barrier()
    comm.seconds, trajectories, start = 0.0, 0, time.perf_counter()
    for _ in range(args["iterations"]):
        trajectories += len(trainer.step().trajectories)
    elapsed = time.perf_counter() - start
    if comm.rank == 0:
        print(json.dumps({"seconds": elapsed, "comm_seconds": comm.seconds, "trajectories": trajectories}))
    inner.close()
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(workers: int, args: argparse.Namespace, script: Path) -> dict[str, float]:
    port = _free_port()
    shape = {k: getattr(args, k) for k in ("batch", "group", "max_steps", "iterations", "warmup")}
    procs = []
    for rank in range(workers):
        env = {**os.environ, "WORLD_SIZE": str(workers), "RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}  # fmt: skip
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), json.dumps(shape)], env=env, stdout=subprocess.PIPE, text=True
            )
        )
    outputs = [proc.communicate(timeout=1800)[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"a worker of the {workers}-worker run failed")
    result: dict[str, float] = json.loads(outputs[0].strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts (1 first)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16, help="queries per iteration (the global batch)")
    parser.add_argument("--group", type=int, default=8, help="trajectories per query")
    parser.add_argument("--max-steps", type=int, default=20)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    print(f"cores: {os.cpu_count()}; batch {args.batch} x group {args.group}, {args.iterations} iterations")
    print(f"{'workers':>7} {'iter s':>8} {'traj/s':>8} {'comm ms/update':>15} {'speed-up':>9}")
    base: float | None = None
    with TemporaryDirectory() as tmp:
        script = Path(tmp) / "worker.py"
        script.write_text(WORKER)
        for workers in counts:
            started = time.perf_counter()
            r = measure(workers, args, script)
            per_iter = r["seconds"] / args.iterations
            rate = r["trajectories"] / r["seconds"]
            base = base or rate
            comm_ms = r["comm_seconds"] / args.iterations * 1000
            print(f"{workers:>7} {per_iter:>8.3f} {rate:>8.1f} {comm_ms:>15.1f} {rate / base:>8.2f}x"
                  f"   ({time.perf_counter() - started:.0f} s with start-up)")  # fmt: skip


if __name__ == "__main__":
    main()
