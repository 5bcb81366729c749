"""Benchmark the numpy GRPO loop against a pure-Python implementation of the same math.

    python bench/trainer.py            # about two minutes on 2 cores

Prints, for both implementations: trajectories/s (sampling with the policy, stepping the built-in
environment, scoring rewards), optimizer steps/s (forward, clipped GRPO loss with k3 KL, backward,
gradient clipping, Adam) and iterations-to-target held-out accuracy (median of 3 seeds), then the
numpy/pure-Python ratios.  Before timing, it checks that both compute the same loss, the same
gradient and the same Adam step on one identical batch.

The pure-Python side uses lists and loops only (no numpy): the same hashed features, softmax policy,
group advantages, loss, gradient, clipping and Adam.  Its Adam visits only parameters whose moments
are non-zero; for the others the textbook update is exactly zero, so the result is identical (this
makes the baseline faster, not different).  Environment and reward code is shared: it is not
"the math" and is pure Python in both.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import multiprocessing
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agentcore_trainer.algorithm.grpo import STD_EPS, TIE_TOL, AlgoConfig, group_advantages
from agentcore_trainer.algorithm.trainer import Trainer
from agentcore_trainer.datasets import generate
from agentcore_trainer.environments.rollout import Episode, rollout
from agentcore_trainer.environments.tooluse import ACTIONS, Observation, ToolUseEnvironment
from agentcore_trainer.evaluation.metrics import evaluate
from agentcore_trainer.policies.builtin import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_LOGIT_SCALE,
    builtin_policy,
    tokenize,
)
from agentcore_trainer.rewards import RewardSpec, score_trajectory

M64 = (1 << 64) - 1
MUL_A, MUL_B = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F
MAX_STEP_FEATURE = 15
REWARDS = RewardSpec.default()


# ------------------------------------------------------------------------------------------------
# Pure-Python policy: the same features and softmax as agentcore_trainer.policies.builtin.HashedSoftmaxPolicy


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _mix(a: int, b: int) -> int:
    return ((a ^ ((b * MUL_B) & M64)) * MUL_A) & M64


class PyPolicy:
    def __init__(self, n_features: int, logit_scale: float = DEFAULT_LOGIT_SCALE) -> None:
        tools = list(dict.fromkeys(t for t, _ in ACTIONS))
        groups = [tools.index(t) for t, _ in ACTIONS]
        self.n_actions, self.shift = len(ACTIONS), 64 - (n_features.bit_length() - 1)
        self.weights = [[0.0] * self.n_actions for _ in range(n_features)]
        self.prev_hash = [_hash(f"prev={a}") for a in range(-1, self.n_actions)]
        self.group_hash = [_hash("group=none")] + [_hash(f"group={g}") for g in groups]
        self.step_hash = [_hash(f"step={t}") for t in range(MAX_STEP_FEATURE + 1)]
        self.bias = _hash("bias") >> self.shift
        self.logit_scale = logit_scale
        self._words: dict[str, list[int]] = {}

    def features(self, obs: Observation) -> list[int]:
        words = self._words.get(obs.query)
        if words is None:
            words = self._words[obs.query] = [_hash(f"w={w}") for w in tokenize(obs.query)]
        p, g = self.prev_hash[obs.prev_action + 1], self.group_hash[obs.prev_action + 1]
        s = self.shift
        fixed = [self.bias, p >> s, g >> s, self.step_hash[min(obs.step, MAX_STEP_FEATURE)] >> s]
        return (
            fixed
            + [w >> s for w in words]
            + [_mix(w, p) >> s for w in words]
            + [_mix(w, g) >> s for w in words]
        )

    def log_softmax(self, feats: list[int]) -> list[float]:
        z = [0.0] * self.n_actions
        for f in feats:
            row = self.weights[f]
            for a in range(self.n_actions):
                z[a] += row[a]
        z = [v * self.logit_scale / len(feats) for v in z]  # each feature's value is c / n
        top = max(z)
        log_norm = math.log(sum(math.exp(v - top) for v in z))
        return [v - top - log_norm for v in z]

    def sample(self, feats: list[int], rnd: random.Random) -> int:
        probs = [math.exp(v) for v in self.log_softmax(feats)]
        total, u, acc = sum(probs), rnd.random(), 0.0
        for a, p in enumerate(probs):
            acc += p
            if acc >= u * total:
                return a
        return self.n_actions - 1

    def greedy(self, feats: list[int], rnd: random.Random) -> int:
        z = self.log_softmax(feats)
        top = max(z)
        tied = [a for a, v in enumerate(z) if v >= top - TIE_TOL]
        return tied[rnd.randrange(len(tied))]


# ------------------------------------------------------------------------------------------------
# Pure-Python GRPO math


def py_advantages(groups: list[list[float]]) -> list[list[float]]:
    """Group scaling, sample std (ddof=1), zero for tied groups: as grpo.group_advantages."""
    out = []
    for r in groups:
        mean = sum(r) / len(r)
        if len(r) < 2 or max(r) - min(r) <= TIE_TOL:
            out.append([0.0] * len(r))
            continue
        std = math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1))
        out.append([(x - mean) / (std + STD_EPS) for x in r])
    return out


def py_loss_grad(
    logp: list[float], old: list[float], ref: list[float], adv: list[float], cfg: AlgoConfig
) -> tuple[float, list[float]]:
    """DAPO aggregation over a flat list of policy actions: loss and dLoss/dlogp per action."""
    lo, hi, n = 1.0 - cfg.epsilon_low, 1.0 + cfg.epsilon_high, max(len(logp), 1)
    loss, grads = 0.0, []
    for lp, lo_p, rf, a in zip(logp, old, ref, adv, strict=True):
        ratio = math.exp(lp - lo_p)
        clipped = min(max(ratio, lo), hi)
        delta = rf - lp
        loss += (-min(ratio * a, clipped * a) + cfg.beta * (math.exp(delta) - delta - 1.0)) / n
        is_clipped = (ratio < lo and a < 0) or (ratio > hi and a > 0)
        g = 0.0 if is_clipped else -a * ratio
        grads.append((g + cfg.beta * (1.0 - math.exp(delta))) / n)
    return loss, grads


@dataclass
class PyAdam:
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    t: int = 0
    m: dict[int, list[float]] = field(default_factory=dict)
    v: dict[int, list[float]] = field(default_factory=dict)

    def step(self, weights: list[list[float]], grad: dict[int, list[float]], n_actions: int) -> None:
        self.t += 1
        bc1, bc2 = 1.0 - self.beta1**self.t, 1.0 - self.beta2**self.t
        for row in grad:
            self.m.setdefault(row, [0.0] * n_actions)
            self.v.setdefault(row, [0.0] * n_actions)
        for row, m in self.m.items():
            v, w, g = self.v[row], weights[row], grad.get(row)
            for a in range(n_actions):
                ga = g[a] if g is not None else 0.0
                m[a] = self.beta1 * m[a] + (1.0 - self.beta1) * ga
                v[a] = self.beta2 * v[a] + (1.0 - self.beta2) * ga * ga
                w[a] -= self.lr * (m[a] / bc1) / (math.sqrt(v[a] / bc2) + self.eps)


def py_gradient(
    policy: PyPolicy, feats: list[list[int]], actions: list[int], coeff: list[float]
) -> dict[int, list[float]]:
    grad: dict[int, list[float]] = {}
    for fs, act, c in zip(feats, actions, coeff, strict=True):
        if c == 0.0:
            continue
        c *= policy.logit_scale / len(fs)  # the features' value
        dz = [-c * math.exp(v) for v in policy.log_softmax(fs)]
        dz[act] += c
        for f in fs:
            row = grad.setdefault(f, [0.0] * policy.n_actions)
            for a in range(policy.n_actions):
                row[a] += dz[a]
    return grad


def py_clip(grad: dict[int, list[float]], max_norm: float) -> None:
    norm = math.sqrt(sum(x * x for row in grad.values() for x in row))
    if norm > max_norm:
        scale = max_norm / norm
        for row in grad.values():
            for a in range(len(row)):
                row[a] *= scale


@dataclass
class PyBatch:
    feats: list[list[int]]
    actions: list[int]
    adv: list[float]


def py_update(policy: PyPolicy, ref: PyPolicy, opt: PyAdam, batch: PyBatch, cfg: AlgoConfig) -> float:
    old = [policy.log_softmax(f)[a] for f, a in zip(batch.feats, batch.actions, strict=True)]
    ref_lp = [ref.log_softmax(f)[a] for f, a in zip(batch.feats, batch.actions, strict=True)]
    loss = 0.0
    for _ in range(cfg.num_inner_iterations):
        logp = [policy.log_softmax(f)[a] for f, a in zip(batch.feats, batch.actions, strict=True)]
        loss, coeff = py_loss_grad(logp, old, ref_lp, batch.adv, cfg)
        grad = py_gradient(policy, batch.feats, batch.actions, coeff)
        py_clip(grad, cfg.max_grad_norm)
        opt.step(policy.weights, grad, policy.n_actions)
    return loss


def py_rollout(
    policy: PyPolicy,
    queries: Sequence[Mapping[str, Any]],
    max_steps: int,
    rnd: random.Random,
    greedy: bool = False,
) -> list[Episode]:
    episodes = []
    for q in queries:
        env, ep = ToolUseEnvironment(), Episode(q)
        obs = env.reset(q)
        for _ in range(max_steps):
            fs = policy.features(obs)
            a = policy.greedy(fs, rnd) if greedy else policy.sample(fs, rnd)
            t = env.step(a)
            ep.observations.append(obs)
            ep.actions.append(a)
            ep.transitions.append(t)
            ep.steps.append(
                {"action": env.describe_action(a), "result": t.result, "duration_ms": t.duration_ms}
            )
            obs = t.observation
            if t.done:
                break
        episodes.append(ep)
    return episodes


class PyTrainer:
    def __init__(
        self, queries: list[dict[str, Any]], cfg: AlgoConfig, args: argparse.Namespace, seed: int
    ) -> None:
        self.queries, self.cfg, self.args = queries, cfg, args
        self.policy, self.ref = PyPolicy(args.n_features), PyPolicy(args.n_features)
        self.opt = PyAdam(cfg.learning_rate)
        self.rnd = random.Random(seed)

    def sample_batch(self) -> tuple[list[Episode], list[list[float]]]:
        picked = self.rnd.sample(range(len(self.queries)), self.args.batch_size)
        batch = [self.queries[i] for i in picked for _ in range(self.args.group_size)]
        episodes = py_rollout(self.policy, batch, self.args.max_steps, self.rnd)
        rewards = [
            score_trajectory(ep.view(), ep.expected_outcome, REWARDS, self.cfg.gamma).reward
            for ep in episodes
        ]
        g = self.args.group_size
        return episodes, [rewards[i : i + g] for i in range(0, len(rewards), g)]

    def to_batch(self, episodes: list[Episode], groups: list[list[float]]) -> PyBatch:
        adv = [a for row in py_advantages(groups) for a in row]
        feats, actions, per_action = [], [], []
        for ep, a in zip(episodes, adv, strict=True):
            feats += [self.policy.features(o) for o in ep.observations]
            actions += ep.actions
            per_action += [a] * len(ep.actions)
        return PyBatch(feats, actions, per_action)

    def step(self) -> None:
        episodes, groups = self.sample_batch()
        py_update(self.policy, self.ref, self.opt, self.to_batch(episodes, groups), self.cfg)

    def accuracy(self, held_out: list[dict[str, Any]]) -> float:
        episodes = py_rollout(self.policy, held_out, self.args.max_steps, random.Random(0), greedy=True)
        results = [
            score_trajectory(ep.view(), ep.expected_outcome, REWARDS, self.cfg.gamma) for ep in episodes
        ]
        return sum(r.success for r in results) / len(results)


# ------------------------------------------------------------------------------------------------
# Measurements


def _np_trainer(
    queries: list[dict[str, Any]], cfg: AlgoConfig, args: argparse.Namespace, seed: int
) -> Trainer:
    return Trainer(
        queries, cfg, batch_size=args.batch_size, group_size=args.group_size, max_steps=args.max_steps,
        seed=seed, policy=builtin_policy(args.n_features),
    )  # fmt: skip


def check_same_math(queries: list[dict[str, Any]], cfg: AlgoConfig, args: argparse.Namespace) -> float:
    """Run one numpy update and one pure-Python update on the same batch; return the max weight gap."""
    trainer = _np_trainer(queries, cfg, args, seed=0)
    py = PyTrainer(queries, cfg, args, seed=0)
    for _ in range(2):  # a second round so that ratios != 1 and the KL term are exercised
        batch = [q for q in queries[: args.batch_size] for _ in range(args.group_size)]
        episodes = rollout(trainer.policy, ToolUseEnvironment, batch, args.max_steps, trainer.rng)
        rewards = np.array(
            [score_trajectory(e.view(), e.expected_outcome, REWARDS, cfg.gamma).reward for e in episodes]
        )
        adv = group_advantages(rewards.reshape(args.batch_size, args.group_size), cfg.scale_rewards)
        trainer._update(episodes, adv.advantages.ravel(), np.ones(len(episodes), dtype=bool))
        groups = rewards.reshape(args.batch_size, args.group_size).tolist()
        py_update(py.policy, py.ref, py.opt, py.to_batch(episodes, groups), cfg)
    w = trainer.policy.parameters()
    return max(abs(w[i][a] - py.policy.weights[i][a]) for i in range(len(w)) for a in range(w.shape[1]))


def throughput_numpy(
    queries: list[dict[str, Any]], cfg: AlgoConfig, args: argparse.Namespace
) -> tuple[float, float]:
    trainer = _np_trainer(queries, cfg, args, seed=0)
    for _ in range(3):
        trainer.step()  # a partly trained policy: realistic trajectory lengths
    batch = [q for q in queries[: args.batch_size] for _ in range(args.group_size)]
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        episodes = rollout(trainer.policy, ToolUseEnvironment, batch, args.max_steps, trainer.rng)
        rewards = [
            score_trajectory(e.view(), e.expected_outcome, REWARDS, cfg.gamma).reward for e in episodes
        ]
        n += len(rewards)
    traj_rate = n / (time.perf_counter() - start)
    arr = np.array(rewards).reshape(args.batch_size, args.group_size)
    adv = group_advantages(arr, cfg.scale_rewards).advantages.ravel()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        trainer._update(episodes, adv, np.ones(len(episodes), dtype=bool))
        steps += cfg.num_inner_iterations
    return traj_rate, steps / (time.perf_counter() - start)


def throughput_python(
    queries: list[dict[str, Any]], cfg: AlgoConfig, args: argparse.Namespace
) -> tuple[float, float]:
    py = PyTrainer(queries, cfg, args, seed=0)
    for _ in range(3):
        py.step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        episodes, groups = py.sample_batch()
        n += len(episodes)
    traj_rate = n / (time.perf_counter() - start)
    batch = py.to_batch(episodes, groups)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        py_update(py.policy, py.ref, py.opt, batch, cfg)
        steps += cfg.num_inner_iterations
    return traj_rate, steps / (time.perf_counter() - start)


Run = tuple[int | None, float]  # (iterations to target or None, wall seconds)


def iterations_to_target(
    step: Callable[[], None], accuracy: Callable[[], float], args: argparse.Namespace
) -> Run:
    start = time.perf_counter()
    for it in range(1, args.max_iterations + 1):
        step()
        if it % args.eval_every == 0 and accuracy() >= args.target:
            return it, time.perf_counter() - start
        if time.perf_counter() - start > args.time_cap:
            break
    return None, time.perf_counter() - start


def _python_seed(
    job: tuple[list[dict[str, Any]], list[dict[str, Any]], AlgoConfig, argparse.Namespace, int],
) -> Run:
    queries, held_out, cfg, args, seed = job
    py = PyTrainer(queries, cfg, args, seed)
    return iterations_to_target(py.step, lambda: py.accuracy(held_out), args)


def steps_to_target(
    queries: list[dict[str, Any]], held_out: list[dict[str, Any]], cfg: AlgoConfig, args: argparse.Namespace
) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {"numpy": [], "python": []}
    for seed in range(3):
        trainer = _np_trainer(queries, cfg, args, seed)

        def np_step(t: Trainer = trainer) -> None:
            t.step()

        def np_accuracy(t: Trainer = trainer) -> float:
            return evaluate(t.policy, held_out, max_steps=args.max_steps).success_rate

        out["numpy"].append(iterations_to_target(np_step, np_accuracy, args))
    # The pure-Python seeds are single-threaded: run two at a time, one per core, to keep the
    # benchmark near two minutes.  Each run's seconds are its own wall time.
    with multiprocessing.get_context("fork").Pool(2) as pool:
        out["python"] = pool.map(_python_seed, [(queries, held_out, cfg, args, seed) for seed in range(3)])
    return out


def _median(runs: list[Run]) -> str:
    reached = [it for it, _ in runs if it is not None]
    if len(reached) < 2:
        return f"not reached in 2 of 3 seeds (cap {runs[0][1]:.0f} s)"
    iters = statistics.median([it if it is not None else math.inf for it, _ in runs])
    secs = statistics.median([s if it is not None else math.inf for it, s in runs])
    return f"{iters:.0f} iterations, {secs:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-features", type=int, default=2**14)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--inner", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=DEFAULT_LEARNING_RATE)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per throughput measurement")
    parser.add_argument("--target", type=float, default=0.4, help="held-out success rate to reach")
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--max-iterations", type=int, default=300)
    parser.add_argument("--time-cap", type=float, default=60.0, help="seconds per seed and implementation")
    args = parser.parse_args()
    cfg = AlgoConfig(learning_rate=args.learning_rate, num_inner_iterations=args.inner)
    queries, held_out = generate(400, seed=1), generate(100, seed=2, split="held_out")
    print(f"config: B={args.batch_size} G={args.group_size} mu={args.inner} features={args.n_features} "
          f"max_steps={args.max_steps} lr={args.learning_rate}")  # fmt: skip
    gap = check_same_math(queries, cfg, args)
    print(f"same math check: max |W_numpy - W_python| after 2 updates = {gap:.2e}")
    np_traj, np_steps = throughput_numpy(queries, cfg, args)
    py_traj, py_steps = throughput_python(queries, cfg, args)
    print(f"{'':24}{'numpy':>12}{'pure Python':>14}{'ratio':>9}")
    print(f"{'trajectories/s':24}{np_traj:12.0f}{py_traj:14.0f}{np_traj / py_traj:8.1f}x")
    print(f"{'optimizer steps/s':24}{np_steps:12.1f}{py_steps:14.2f}{np_steps / py_steps:8.1f}x")
    runs = steps_to_target(queries, held_out, cfg, args)
    print(f"iterations to held-out success >= {args.target} (median of 3 seeds):")
    for name, r in runs.items():
        detail = ", ".join(f"{it if it else '-'}@{s:.1f}s" for it, s in r)
        print(f"  {name:8} {_median(r)}   [{detail}]")
    np_s, py_s = (statistics.median(s if it else math.inf for it, s in runs[k]) for k in ("numpy", "python"))
    print(f"  wall time to target, pure Python / numpy: {py_s / np_s:.1f}x")


if __name__ == "__main__":
    main()
