"""The in-memory GRPO training loop, with state that checkpoints and resumes bit-identically.

One iteration: draw `batch_size` queries, sample `group_size` trajectories each, reward them,
compute group-relative advantages, then take `num_inner_iterations` Adam steps on the clipped
objective with logπold frozen at the sampling policy and logπref at the initial policy.

Everything random comes from one numpy Generator whose state is part of `TrainerState`; the
environment and rewards are deterministic; evaluation uses its own seeded generator.  So
"train k → save → load → train n-k" performs the same floating-point operations in the same order
as "train n", and ends with identical bytes.  Storage, cost and Kubernetes are layered on top
through `on_iteration` and `Trainer.state()`.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from agentcore_trainer.algorithm.grpo import (
    Adam,
    AlgoConfig,
    BatchTotals,
    group_advantages,
    grpo_loss,
    kl_terms,
)
from agentcore_trainer.algorithm.grpo import clip_grad_norm as clip_norm
from agentcore_trainer.distributed import SINGLE, Collective, shard
from agentcore_trainer.environments.rollout import Clock, Episode, GroupStreams, rollout, utc_now
from agentcore_trainer.environments.tooluse import ACTIONS, EnvFactory, ToolUseEnvironment
from agentcore_trainer.evaluation.metrics import evaluate
from agentcore_trainer.policies.builtin import Policy, builtin_policy
from agentcore_trainer.rewards import RewardResult, RewardSpec, score_trajectory

FloatArray = NDArray[np.float64]
_TRAJECTORY_NS = uuid.UUID("6f1c8a52-3d0e-4b7a-9a43-2f5d7c1e9b10")
STATE_FORMAT = 1


@dataclass
class TrainerState:
    """Everything needed to continue a run: to_bytes() is an .npz (no pickle)."""

    iteration: int
    policy: dict[str, NDArray[Any]]
    reference: dict[str, NDArray[Any]]
    optimizer: dict[str, NDArray[Any]]
    rng: dict[str, Any]  # numpy BitGenerator.state (plain JSON: ints and strings)
    counters: dict[str, int] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        meta = {
            "format": STATE_FORMAT,
            "iteration": self.iteration,
            "rng": self.rng,
            "counters": self.counters,
        }
        arrays: dict[str, NDArray[Any]] = {"meta": np.array(json.dumps(meta, sort_keys=True))}
        for prefix, group in (
            ("policy", self.policy),
            ("reference", self.reference),
            ("optimizer", self.optimizer),
        ):
            arrays.update({f"{prefix}.{k}": v for k, v in group.items()})
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainerState:
        """Parse to_bytes() output; anything else raises ValueError (a corrupt checkpoint)."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            meta = json.loads(str(arrays.pop("meta")))
            groups: dict[str, dict[str, NDArray[Any]]] = {"policy": {}, "reference": {}, "optimizer": {}}
            for key, value in arrays.items():
                prefix, _, name = key.partition(".")
                groups[prefix][name] = value
            counters = {k: int(v) for k, v in meta["counters"].items()}
            iteration, rng, version = int(meta["iteration"]), meta["rng"], meta.get("format")
        except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a trainer state: {exc}") from exc
        if version != STATE_FORMAT:
            raise ValueError(f"unsupported trainer state format {version!r}")
        return cls(iteration, groups["policy"], groups["reference"], groups["optimizer"], rng, counters)


@dataclass
class IterationReport:
    iteration: int  # 1-based: the number of iterations completed
    metrics: dict[str, float]
    trajectories: list[dict[str, Any]]  # the records training.export_trajectories returns
    trainer: Trainer


@dataclass
class TrainResult:
    state: TrainerState
    history: list[dict[str, float]]
    policy: Policy


class Trainer:
    """Step-wise GRPO trainer; `train()` drives it, storage layers can drive it themselves."""

    def __init__(
        self,
        queries: Sequence[Mapping[str, Any]],
        config: AlgoConfig,
        *,
        batch_size: int,
        group_size: int,
        max_steps: int,
        seed: int,
        policy: Policy | None = None,
        env_factory: EnvFactory = ToolUseEnvironment,
        rewards: RewardSpec | None = None,
        state: TrainerState | None = None,
        run_id: str = "",
        clock: Clock = utc_now,
        comm: Collective = SINGLE,
    ) -> None:
        if not queries or batch_size < 1 or group_size < 1 or max_steps < 1:
            raise ValueError("need queries, batch_size >= 1, group_size >= 1 and max_steps >= 1")
        self.comm = comm
        self.queries, self.config = list(queries), config
        self.batch_size, self.group_size, self.max_steps = batch_size, group_size, max_steps
        self.policy: Policy = policy if policy is not None else builtin_policy()
        self.reference: Policy = self.policy.copy()  # frozen initial policy for the KL term
        self.env_factory, self.rewards = env_factory, rewards or RewardSpec.default()
        self.run_id, self.clock = run_id, clock
        shape = self.policy.parameters().shape
        self.optimizer = Adam(
            shape, config.learning_rate, config.adam_beta1, config.adam_beta2, config.adam_eps
        )
        self.rng = np.random.default_rng(seed)
        self.iteration = 0
        self.counters = {
            "trajectories_generated": 0,
            "input_tokens_total": 0,
            "output_tokens_total": 0,
            "reward_failures": 0,
        }
        if state is not None:
            self.load_state(state)

    # -- state -------------------------------------------------------------------------------

    def state(self) -> TrainerState:
        return TrainerState(
            iteration=self.iteration,
            policy=self.policy.state_dict(),
            reference=self.reference.state_dict(),
            optimizer=self.optimizer.state_dict(),
            rng=json.loads(json.dumps(self.rng.bit_generator.state)),
            counters=dict(self.counters),
        )

    def load_state(self, state: TrainerState) -> None:
        self.policy.load_state_dict(state.policy)
        self.reference.load_state_dict(state.reference)
        self.optimizer.load_state_dict(state.optimizer)
        self.rng.bit_generator.state = state.rng
        self.iteration = state.iteration
        self.counters.update(state.counters)

    # -- one iteration -----------------------------------------------------------------------

    def step(self) -> IterationReport:
        """One iteration; with several ranks each plays its shard of the groups (see distributed.py)
        and every rank ends with the same parameters and the whole batch's report."""
        picked = pick_batch(self.rng, len(self.queries), self.batch_size)
        sampling_seed = int(self.rng.integers(2**63))
        mine = shard(len(picked), self.comm.rank, self.comm.world_size)
        batch = [self.queries[picked[g]] for g in mine for _ in range(self.group_size)]
        streams = GroupStreams([np.random.default_rng([sampling_seed, g]) for g in mine], self.group_size)
        episodes = rollout(self.policy, self.env_factory, batch, self.max_steps, streams, clock=self.clock)
        results = [
            score_trajectory(ep.view(), ep.expected_outcome, self.rewards, self.config.gamma)
            for ep in episodes
        ]
        shape = (len(mine), self.group_size)
        local_rewards = np.array([r.reward for r in results], dtype=np.float64).reshape(shape)
        local_valid = np.array([not r.failed for r in results], dtype=bool).reshape(shape)
        # Every rank needs the whole batch's rewards (batch-scaled advantages, metrics): tiny.
        gathered = self.comm.gather((local_rewards, local_valid))
        rewards = np.concatenate([r for r, _ in gathered])
        valid = np.concatenate([v for _, v in gathered])
        adv = group_advantages(rewards, self.config.scale_rewards, valid)
        own = slice(mine.start, mine.stop)
        update = self._update(episodes, adv.advantages[own].ravel(), local_valid.ravel(), valid)
        self.iteration += 1
        records = trajectory_records(
            episodes, results, adv.normalized[own].ravel(), adv.advantages[own].ravel(),
            run_id=self.run_id, iteration=self.iteration, group_size=self.group_size,
            first_group=mine.start,
        )  # fmt: skip
        shares = self.comm.gather((records, results))
        records = [rec for recs, _ in shares for rec in recs]
        all_results = [res for _, ress in shares for res in ress]
        views = [RecordView(rec) for rec in records]
        metrics = iteration_metrics(views, all_results, rewards[valid], update, adv.frac_reward_zero_std,
                                    self.counters, self.iteration)  # fmt: skip
        metrics.update(_tool_frequencies(views))
        return IterationReport(self.iteration, metrics, records, self)

    def _update(
        self,
        episodes: list[Episode],
        advantages: FloatArray,
        valid: NDArray[np.bool_],
        batch_valid: NDArray[np.bool_] | None = None,
    ) -> dict[str, float]:
        """μ Adam steps on one batch; logπold and logπref are computed once, before the first.

        `episodes` are this rank's share (of the batch whose validity is `batch_valid`; default:
        the share is the batch); the loss is aggregated over the whole batch (`totals`), so the
        ranks' gradients sum (all-reduce) to the batch's and every rank takes the same step.
        """
        lengths = np.array([len(ep.actions) for ep in episodes], dtype=np.intp)
        seq = np.repeat(np.arange(len(episodes)), lengths)
        pos = np.arange(seq.size) - (np.cumsum(lengths) - lengths)[seq]
        actions = np.array([a for ep in episodes for a in ep.actions], dtype=np.int64)
        encoded = self.policy.encode([o for ep in episodes for o in ep.observations])
        mask = np.zeros((len(episodes), self.max_steps))
        mask[seq, pos] = valid[seq]  # trajectories whose reward failed take no part
        n_sequences = int((valid if batch_valid is None else batch_valid).size)
        totals = BatchTotals(n_sequences, float(self.comm.sum(np.array([mask.sum()]))[0]))

        def padded(values: FloatArray) -> FloatArray:
            out = np.zeros_like(mask)
            out[seq, pos] = values
            return out

        old_dist = self.policy.log_softmax(encoded)
        logp_old = padded(old_dist[np.arange(actions.size), actions])
        logp_ref = padded(self.reference.log_probs(encoded, actions))
        region = TrustRegion(self, encoded, old_dist, mask[seq, pos], totals.actions)
        sums: Counter[str] = Counter()
        for _ in range(self.config.num_inner_iterations):
            logp = padded(self.policy.log_probs(encoded, actions))
            out = grpo_loss(logp, logp_old, logp_ref, advantages, mask, self.config, totals)
            grad = self.comm.sum(self.policy.gradient(encoded, actions, out.grad_logp[seq, pos]))
            grad, norm = clip_norm(grad, self.config.max_grad_norm)
            before = region.save()
            self.optimizer.step(self.policy.parameters(), grad)
            halvings, kl = region.enforce(before)
            # grad_norm is the same on every rank: its shares sum to it.
            share = 1.0 / self.comm.world_size
            sums.update({**out.metrics, "train_loss": out.loss, "grad_norm": norm * share,
                         "trust_region_halvings": halvings * share, "update_kl": kl * share})  # fmt: skip
        entropy = self.policy.entropy(encoded)
        sums.update({"entropy_sum": float(entropy.sum()), "entropy_count": float(entropy.size)})
        keys = sorted(sums)
        totals_by_key = dict(zip(keys, self.comm.sum(np.array([sums[k] for k in keys])), strict=True))
        mu = self.config.num_inner_iterations
        stats = {k: float(v) / mu for k, v in totals_by_key.items() if not k.startswith("entropy")}
        count = totals_by_key["entropy_count"]
        stats["entropy"] = float(totals_by_key["entropy_sum"] / count) if count else 0.0
        return stats


MAX_HALVINGS = 30  # 2⁻³⁰ of an Adam step: below that the step is dropped instead


class TrustRegion:
    """Keeps each update within `max_kl` of the policy that sampled the batch (TRPO's backtracking
    line search on the KL constraint, with Adam's step as the search direction).

    Why the built-in policy has one: Adam moves every weight by about `learning_rate` per step,
    whatever the gradient's scale, so without a bound the step size alone decides whether the
    policy barely moves (1e-4) or collapses onto its first lucky actions (0.1).  With a large logit
    scale and this bound, `learning_rate` only sets how many halvings a step needs.  The KL is the
    mean over the batch's (valid) states of the exact KL between the two action distributions,
    summed over ranks, so every rank takes the same decision and the same step.
    """

    def __init__(
        self, trainer: Trainer, encoded: Any, old_dist: FloatArray, weights: FloatArray, n_states: float
    ) -> None:
        self.trainer, self.encoded, self.old_dist = trainer, encoded, old_dist
        self.weights = weights / max(n_states, 1.0)
        self.limit = trainer.config.max_kl

    def save(self) -> FloatArray | None:
        return None if self.limit is None else self.trainer.policy.parameters().copy()

    def kl(self) -> float:
        policy, comm = self.trainer.policy, self.trainer.comm
        share = kl_terms(self.old_dist, policy.log_softmax(self.encoded), self.weights)
        return float(comm.sum(np.array([share]))[0])

    def enforce(self, before: FloatArray | None) -> tuple[int, float]:
        """Halve the step just taken from `before` until within the region; (halvings, its KL)."""
        if before is None or self.limit is None:
            return 0, 0.0
        params = self.trainer.policy.parameters()
        for halvings in range(MAX_HALVINGS + 1):
            kl = self.kl()
            if kl <= self.limit:
                return halvings, kl
            params -= before
            params *= 0.5
            params += before
        params[...] = before
        return MAX_HALVINGS, self.kl()


class TrajectoryLike(Protocol):
    """What a trajectory record is built from (built-in episodes and LLM conversations alike)."""

    query: Mapping[str, Any]
    steps: list[dict[str, Any]]

    @property
    def execution_time_ms(self) -> float: ...

    @property
    def input_tokens(self) -> int: ...

    @property
    def output_tokens(self) -> int: ...


class RecordView:
    """A trajectory record (possibly from another rank) as `iteration_metrics` reads a trajectory."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = record
        self.query: Mapping[str, Any] = {"query": record["query"]}
        self.steps: list[dict[str, Any]] = record["steps"]

    @property
    def execution_time_ms(self) -> float:
        return float(self.record["execution_time_ms"])

    @property
    def input_tokens(self) -> int:
        return int(self.record["input_tokens"])

    @property
    def output_tokens(self) -> int:
        return int(self.record["output_tokens"])


def pick_batch(rng: np.random.Generator, n_queries: int, batch_size: int) -> list[int]:
    """The query indices of one iteration (with replacement only when the batch exceeds the data)."""
    return [int(i) for i in rng.choice(n_queries, size=batch_size, replace=batch_size > n_queries)]


def iteration_metrics(
    episodes: Sequence[TrajectoryLike],
    results: Sequence[RewardResult],
    valid_rewards: FloatArray,
    update: dict[str, float],
    frac_zero_std: float,
    counters: dict[str, int],
    iteration: int,
) -> dict[str, float]:
    """One iteration's metrics (TRL's names where TRL has one); adds the iteration to `counters`."""
    n = len(episodes)
    failures = sum(r.failed for r in results)
    input_tokens = sum(ep.input_tokens for ep in episodes)
    output_tokens = sum(ep.output_tokens for ep in episodes)
    counters["trajectories_generated"] += n
    counters["input_tokens_total"] += input_tokens
    counters["output_tokens_total"] += output_tokens
    counters["reward_failures"] += failures
    return {
        "iteration": float(iteration),
        "avg_reward": float(valid_rewards.mean()) if valid_rewards.size else 0.0,
        "reward_std": float(valid_rewards.std()) if valid_rewards.size else 0.0,
        "success_rate": sum(r.success for r in results) / max(n, 1),
        "frac_reward_zero_std": frac_zero_std,
        "clip_ratio": update.get("clip_ratio/region_mean", 0.0),
        "avg_steps": sum(len(ep.steps) for ep in episodes) / max(n, 1),
        "trajectories": float(n),
        "reward_failures": float(failures),
        "input_tokens": float(input_tokens),
        "output_tokens": float(output_tokens),
        **{k: float(v) for k, v in update.items()},
        **{k: float(v) for k, v in counters.items()},
    }


def trajectory_records(
    episodes: Sequence[TrajectoryLike],
    results: Sequence[RewardResult],
    normalized: FloatArray,
    advantages: FloatArray,
    *,
    run_id: str,
    iteration: int,
    group_size: int,
    first_group: int = 0,
) -> list[dict[str, Any]]:
    """The records training.export_trajectories returns, one per trajectory of an iteration (of
    a rank's share of it, whose first group is the batch's `first_group`)."""
    records = []
    for k, (ep, res) in enumerate(zip(episodes, results, strict=True)):
        group, index = divmod(k, group_size)
        group += first_group
        # Deterministic ids: a resumed run re-creating an iteration writes the same ids (upserts).
        tid = uuid.uuid5(_TRAJECTORY_NS, f"{run_id}/{iteration}/{group}/{index}")
        records.append(
            {
                "trajectory_id": str(tid),
                "iteration": iteration,
                "group": group,
                "query": str(ep.query.get("query", "")),
                "steps": ep.steps,
                "reward": res.reward,
                "normalized_reward": float(normalized[k]),
                "advantage": float(advantages[k]),
                "success": res.success,
                "execution_time_ms": ep.execution_time_ms,
                "input_tokens": ep.input_tokens,
                "output_tokens": ep.output_tokens,
                "reward_components": res.components,
                "error": res.error,
            }
        )
    return records


def _tool_frequencies(episodes: Sequence[TrajectoryLike]) -> dict[str, float]:
    calls: Counter[str] = Counter()
    failures = 0
    for ep in episodes:
        calls.update(s["action"]["tool"] for s in ep.steps)
        failures += sum("error" in s["result"] for s in ep.steps)
    total = max(sum(calls.values()), 1)
    out = {
        f"tools/call_frequency/{tool}": calls[tool] / total for tool in dict.fromkeys(t for t, _ in ACTIONS)
    }
    out["tools/failure_frequency"] = failures / total
    return out


IterationCallback = Callable[[IterationReport], "bool | None"]


def train(
    queries: Sequence[Mapping[str, Any]],
    algo_config: AlgoConfig,
    n_iterations: int,
    batch_size: int,
    group_size: int,
    max_steps: int,
    seed: int,
    on_iteration: IterationCallback | None = None,
    *,
    policy: Policy | None = None,
    env_factory: EnvFactory = ToolUseEnvironment,
    rewards: RewardSpec | None = None,
    state: TrainerState | None = None,
    eval_queries: Sequence[Mapping[str, Any]] | None = None,
    evaluation_interval: int = 10,
    run_id: str = "",
) -> TrainResult:
    """Train until `n_iterations` are done (counting those in a resumed `state`).

    `on_iteration(report)` runs after every iteration; returning True stops the run early (how a
    budget check or SIGTERM handler asks for a stop).  With `eval_queries`, the greedy success rate
    on them is added as `validation_accuracy` every `evaluation_interval` iterations and at the end.
    """
    trainer = Trainer(
        queries, algo_config, batch_size=batch_size, group_size=group_size, max_steps=max_steps, seed=seed,
        policy=policy, env_factory=env_factory, rewards=rewards, state=state, run_id=run_id,
    )  # fmt: skip
    history: list[dict[str, float]] = []
    while trainer.iteration < n_iterations:
        report = trainer.step()
        due = report.iteration % max(evaluation_interval, 1) == 0 or report.iteration == n_iterations
        if eval_queries and due:
            result = evaluate(trainer.policy, eval_queries, env_factory, max_steps=max_steps,
                              rewards=trainer.rewards, gamma=algo_config.gamma)  # fmt: skip
            report.metrics["validation_accuracy"] = result.success_rate
        history.append(report.metrics)
        if on_iteration is not None and on_iteration(report) is True:
            break
    return TrainResult(trainer.state(), history, trainer.policy)
