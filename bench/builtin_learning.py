"""Learning-rate grid for the built-in policy on the duplicate-free held-out split.

    python bench/builtin_learning.py                 # about two minutes on 2 cores

For each learning rate x seed: train on `generate(400, seed=10s+1)` for 60 iterations of 16 queries
x 8 trajectories, then evaluate greedily on `generate(200, seed=10s+2, split="held_out")` and print
held-out success of the initial policy, the keyword heuristic and the trained policy, with exact
McNemar p-values of trained vs each (two-sided, on per-query success).  Seeds 3-5 are not used by
the unit tests (which train on seed 1), so the figures are not tuned to them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
from typing import Any

from agentcore_trainer.algorithm.grpo import AlgoConfig
from agentcore_trainer.algorithm.trainer import train
from agentcore_trainer.datasets import generate
from agentcore_trainer.evaluation.metrics import evaluate_against_baselines
from agentcore_trainer.policies.builtin import builtin_policy
from agentcore_trainer.policies.heuristic import KeywordHeuristicPolicy

MAX_STEPS = 6


def run(job: tuple[float, int, int, int]) -> dict[str, Any]:
    lr, inner, seed, iterations = job
    config = AlgoConfig(learning_rate=lr, num_inner_iterations=inner)
    queries, held_out = generate(400, seed=10 * seed + 1), generate(200, seed=10 * seed + 2, split="held_out")
    result = train(queries, config, iterations, batch_size=16, group_size=8, max_steps=MAX_STEPS, seed=seed)
    baselines = {"initial": builtin_policy(), "heuristic": KeywordHeuristicPolicy()}
    body = evaluate_against_baselines(result.policy, baselines, held_out, max_steps=MAX_STEPS)
    out: dict[str, Any] = {"lr": lr, "inner": inner, "seed": seed, "trained": body["metrics"]["success_rate"]}
    for name, b in body["baselines"].items():
        out[name] = b["metrics"]["success_rate"]
        out[f"p_{name}"] = b["comparison"]["p_value"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2, 0.05, 0.1])
    parser.add_argument("--inner", type=int, nargs="+", default=[1, 4], help="num_inner_iterations (mu)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    parser.add_argument("--iterations", type=int, default=60)
    args = parser.parse_args()
    jobs = [
        (lr, mu, s, args.iterations) for mu in args.inner for lr in args.learning_rates for s in args.seeds
    ]
    with multiprocessing.Pool(2) as pool:
        rows = pool.map(run, jobs)
    print(f"{'mu':>3} {'lr':>7} {'seed':>4} {'initial':>8} {'heuristic':>9} {'trained':>8} "
          f"{'gain':>6} {'p(initial)':>11} {'p(heuristic)':>12}")  # fmt: skip
    for r in rows:
        print(f"{r['inner']:>3} {r['lr']:>7g} {r['seed']:>4} {r['initial']:>8.3f} {r['heuristic']:>9.3f} "
              f"{r['trained']:>8.3f} {r['trained'] - r['initial']:>+6.3f} {r['p_initial']:>11.2g} "
              f"{r['p_heuristic']:>12.2g}")  # fmt: skip
    print("median gain over the initial policy per (mu, lr):")
    for mu in args.inner:
        for lr in args.learning_rates:
            gains = [r["trained"] - r["initial"] for r in rows if r["inner"] == mu and r["lr"] == lr]
            print(f"  mu={mu} lr={lr:g}: {statistics.median(gains):+.3f}")


if __name__ == "__main__":
    main()
