"""The GRPO loop for a language-model policy: conversations → rewards → token-level update.

The same iteration as `trainer.Trainer` (batch choice, group advantages, μ inner passes, gradient
clipping, deterministic trajectory ids), with `token_grpo` as the loss and torch's Adam. Every
turn is a (prompt, completion) pair; micro-batches of `micro_batch_size` pairs accumulate
gradients, so memory is bounded by the micro-batch, not the batch.

Randomness: the batch choice and a per-iteration sampling seed come from one numpy Generator whose
state is checkpointed, so a resumed run draws the same batches and seeds as an uninterrupted one.

A checkpoint is a zip that *is* a PEFT adapter directory (``adapter_config.json`` and
``adapter_model.safetensors``, what `PeftModel.from_pretrained` reads) plus ``trainer_state.json``
and ``optimizer.safetensors`` for resuming. No pickle anywhere.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from agentcore_trainer.algorithm.grpo import AlgoConfig, BatchTotals, group_advantages
from agentcore_trainer.algorithm.token_grpo import LossParts, token_loss, token_weights
from agentcore_trainer.algorithm.trainer import (
    IterationReport,
    RecordView,
    iteration_metrics,
    pick_batch,
    trajectory_records,
)
from agentcore_trainer.distributed import SINGLE, Collective, shard
from agentcore_trainer.environments.conversation import Conversation, converse
from agentcore_trainer.environments.rollout import Clock, utc_now
from agentcore_trainer.environments.toolcalls import Toolbox
from agentcore_trainer.evaluation.metrics import EvaluationResult, evaluation_result
from agentcore_trainer.policies.adapter import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from agentcore_trainer.policies.causal_lm import CausalLMPolicy, SharedPrefix
from agentcore_trainer.rewards import RewardSpec, score_trajectory

STATE_FORMAT = 1
FULL_WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class Segment:
    """One turn of one trajectory, as the loss sees it."""

    trajectory: int
    prompt: list[int]
    completion: list[int]
    offset: int  # index of the first completion token within the trajectory's tokens


class LLMTrainer:
    """Step-wise GRPO over a causal LM; the runtime drives it like `trainer.Trainer`."""

    def __init__(
        self,
        queries: Sequence[Mapping[str, Any]],
        config: AlgoConfig,
        *,
        policy: CausalLMPolicy,
        toolbox: Toolbox,
        batch_size: int,
        group_size: int,
        max_steps: int,
        seed: int,
        rewards: RewardSpec | None = None,
        state: bytes | None = None,
        run_id: str = "",
        clock: Clock = utc_now,
        comm: Collective = SINGLE,
    ) -> None:
        if not queries or batch_size < 1 or group_size < 1 or max_steps < 1:
            raise ValueError("need queries, batch_size >= 1, group_size >= 1 and max_steps >= 1")
        self.comm = comm
        self.queries, self.config, self.policy, self.toolbox = list(queries), config, policy, toolbox
        self.batch_size, self.group_size, self.max_steps = batch_size, group_size, max_steps
        self.rewards, self.run_id, self.clock = rewards or RewardSpec.default(), run_id, clock
        self.optimizer = torch.optim.Adam(
            policy.trainable_parameters(), lr=config.learning_rate,
            betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_eps,
        )  # fmt: skip
        self.rng = np.random.default_rng(seed)
        self.iteration = 0
        self.counters = {"trajectories_generated": 0, "input_tokens_total": 0, "output_tokens_total": 0,
                         "reward_failures": 0}  # fmt: skip
        if state is not None:
            self.load_checkpoint(state)

    # -- one iteration -----------------------------------------------------------------------------

    def step(self) -> IterationReport:
        """One iteration; with several ranks each converses its shard of the groups, gradients are
        all-reduced (every rank takes the same step) and every rank gets the whole batch's report.

        Rank 0 samples with the one-worker seed; rank r with seed + r. Generation is batched per
        rank, so unlike the built-in policy a group's completions depend on its rank's batch: N
        workers draw other (equally distributed) samples than one. Given the same conversations,
        the update is the same (tests/integration/trainer/test_distributed.py)."""
        started = time.perf_counter()
        picked = pick_batch(self.rng, len(self.queries), self.batch_size)
        seed = int(self.rng.integers(2**31))
        mine = shard(len(picked), self.comm.rank, self.comm.world_size)
        batch = [self.queries[picked[g]] for g in mine for _ in range(self.group_size)]
        torch.manual_seed(seed + self.comm.rank)
        convs = converse(self.policy, self.toolbox, batch, self.max_steps, clock=self.clock)
        results = [
            score_trajectory(c.view(), c.expected_outcome, self.rewards, self.config.gamma) for c in convs
        ]
        shape = (len(mine), self.group_size)
        local_rewards = np.array([r.reward for r in results], dtype=np.float64).reshape(shape)
        local_valid = np.array([not r.failed for r in results], dtype=bool).reshape(shape)
        gathered = self.comm.gather((local_rewards, local_valid))
        rewards = np.concatenate([r for r, _ in gathered])
        valid = np.concatenate([v for _, v in gathered])
        adv = group_advantages(rewards, self.config.scale_rewards, valid)
        own = slice(mine.start, mine.stop)
        update = self._update(convs, adv.advantages[own].ravel(), local_valid.ravel(), int(valid.size))
        self.iteration += 1
        records = trajectory_records(
            convs, results, adv.normalized[own].ravel(), adv.advantages[own].ravel(),
            run_id=self.run_id, iteration=self.iteration, group_size=self.group_size,
            first_group=mine.start,
        )  # fmt: skip
        shares = self.comm.gather((records, results, _turn_counts(convs)))
        records = [rec for recs, _, _ in shares for rec in recs]
        metrics = iteration_metrics(
            [RecordView(rec) for rec in records], [res for _, ress, _ in shares for res in ress],
            rewards[valid], update, adv.frac_reward_zero_std, self.counters, self.iteration,
        )  # fmt: skip
        calls, valid_calls, answered = np.sum([counts for _, _, counts in shares], axis=0)
        metrics["valid_tool_call_fraction"] = float(valid_calls) / max(float(calls), 1.0)
        metrics["answered_fraction"] = float(answered) / max(len(records), 1)
        # Every rank's device time is paid for: the cost model sums them.
        metrics["compute_seconds"] = float(self.comm.sum(np.array([time.perf_counter() - started]))[0])
        return IterationReport(self.iteration, metrics, records, self)  # type: ignore[arg-type]

    def _segments(self, convs: Sequence[Conversation]) -> list[Segment]:
        segments = []
        for k, conv in enumerate(convs):
            offset = 0
            for turn in conv.turns:
                if turn.completion:
                    segments.append(Segment(k, turn.prompt, turn.completion, offset))
                    offset += len(turn.completion)
        return segments

    def _update(
        self, convs: Sequence[Conversation], advantages: np.ndarray, valid: np.ndarray, n_sequences: int
    ) -> dict[str, float]:
        """μ optimiser steps on this rank's share; the loss is aggregated over the whole batch
        (`totals`), so the all-reduced gradient is the batch's, as with one worker."""
        segments = self._segments(convs)
        max_len = self.max_steps * self.policy.config.max_new_tokens
        lengths = [c.completion_tokens for c in convs]
        local_tokens = sum(n for n, ok in zip(lengths, valid, strict=True) if ok)
        totals = BatchTotals(n_sequences, float(self.comm.sum(np.array([float(local_tokens)]))[0]))
        weights = token_weights(lengths, list(valid), self.config.loss_type, max_len, totals)
        micro = self.policy.config.micro_batch_size
        batches = [segments[i : i + micro] for i in range(0, len(segments), micro)]
        fixed = [self._fixed_inputs(mb, weights, advantages) for mb in batches]
        sums: Counter[str] = Counter()
        for _ in range(self.config.num_inner_iterations):
            self.optimizer.zero_grad(set_to_none=True)
            self.policy.model.train()
            # The shared prompt prefix is computed once per pass (not once per sequence); its
            # gradient from every micro-batch flows into the weights when the block ends.
            with self.policy.shared_prefix([s.prompt for s in segments]) as prefix:
                parts = [
                    self._backward(mb, inputs, prefix) for mb, inputs in zip(batches, fixed, strict=True)
                ]
            self.policy.model.eval()
            self._all_reduce_gradients()
            norm = torch.nn.utils.clip_grad_norm_(
                self.policy.trainable_parameters(), self.config.max_grad_norm
            )
            self.optimizer.step()
            # grad_norm is the same on every rank: its shares sum to it.
            sums.update({**_loss_sums(parts), "grad_norm": float(norm) / self.comm.world_size})
        keys = sorted(sums)
        total = dict(zip(keys, self.comm.sum(np.array([float(sums[k]) for k in keys])), strict=True))
        return _loss_metrics(total, self.config.num_inner_iterations)

    def _all_reduce_gradients(self) -> None:
        """Sum the LoRA (or full) gradients over the ranks: one flat all-reduce per update."""
        if self.comm.world_size == 1:
            return
        params = list(self.policy.trainable_parameters())
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.detach().reshape(-1).to("cpu", torch.float64) for g in grads])
        summed = torch.from_numpy(self.comm.sum(flat.numpy()))
        offset = 0
        for param in params:
            n = param.numel()
            param.grad = summed[offset : offset + n].reshape(param.shape).to(param.device, param.dtype)
            offset += n

    def _fixed_inputs(
        self, batch: Sequence[Segment], weights: list[np.ndarray], advantages: np.ndarray
    ) -> dict[str, torch.Tensor | None]:
        """logπold (only when μ > 1: otherwise it equals logπθ), logπref, advantages and weights."""
        prompts, completions = [s.prompt for s in batch], [s.completion for s in batch]
        with torch.no_grad():
            old = (
                torch.cat(self.policy.token_logprobs(prompts, completions))
                if self.config.num_inner_iterations > 1
                else None
            )
            ref = (
                torch.cat(self.policy.token_logprobs(prompts, completions, reference=True))
                if self.config.beta
                else None
            )
        adv = np.concatenate([np.full(len(s.completion), advantages[s.trajectory]) for s in batch])
        w = np.concatenate([weights[s.trajectory][s.offset : s.offset + len(s.completion)] for s in batch])
        device = self.policy.device
        return {"old": old, "ref": ref, "adv": torch.tensor(adv, dtype=torch.float32, device=device),
                "w": torch.tensor(w, dtype=torch.float32, device=device)}  # fmt: skip

    def _backward(
        self, batch: Sequence[Segment], inputs: dict[str, torch.Tensor | None], prefix: SharedPrefix | None
    ) -> LossParts:
        prompts, completions = [s.prompt for s in batch], [s.completion for s in batch]
        logp = torch.cat(self.policy.token_logprobs(prompts, completions, prefix=prefix))
        old = inputs["old"] if inputs["old"] is not None else logp.detach()
        adv, w = inputs["adv"], inputs["w"]
        assert adv is not None and w is not None
        parts = token_loss(logp, old, inputs["ref"], adv, w, self.config)
        parts.loss.backward()
        return parts

    # -- evaluation ----------------------------------------------------------------------------------

    def evaluate(
        self, queries: Sequence[Mapping[str, Any]], *, adapter: bool = True
    ) -> tuple[EvaluationResult, int, int]:
        """Greedy conversations on `queries`; also returns the (input, output) tokens they used."""
        convs = converse(self.policy, self.toolbox, queries, self.max_steps, greedy=True, adapter=adapter)
        results = [
            score_trajectory(c.view(), c.expected_outcome, self.rewards, self.config.gamma) for c in convs
        ]
        usage = (sum(c.input_tokens for c in convs), sum(c.output_tokens for c in convs))
        return evaluation_result(convs, results), *usage

    # -- checkpoints ---------------------------------------------------------------------------------

    def checkpoint(self) -> bytes:
        weights = self.policy.trainable_state()
        adapter_config = self.policy.adapter_config()
        optimizer = self.optimizer.state_dict()
        tensors: dict[str, torch.Tensor] = {}
        steps: dict[str, float] = {}
        for index, entry in optimizer["state"].items():
            tensors[f"{index}.exp_avg"] = entry["exp_avg"].detach().cpu().contiguous()
            tensors[f"{index}.exp_avg_sq"] = entry["exp_avg_sq"].detach().cpu().contiguous()
            steps[str(index)] = float(entry["step"])
        meta = {"format": STATE_FORMAT, "iteration": self.iteration, "counters": self.counters,
                "rng": json.loads(json.dumps(self.rng.bit_generator.state)), "optimizer_steps": steps,
                "param_groups": optimizer["param_groups"]}  # fmt: skip
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            if adapter_config is not None:
                zf.writestr(ADAPTER_CONFIG, json.dumps(adapter_config, indent=2, sort_keys=True))
            zf.writestr(
                ADAPTER_WEIGHTS if adapter_config is not None else FULL_WEIGHTS, save_tensors(weights)
            )
            zf.writestr("optimizer.safetensors", save_tensors(tensors) if tensors else b"")
            zf.writestr("trainer_state.json", json.dumps(meta, sort_keys=True))
        return buf.getvalue()

    def load_checkpoint(self, blob: bytes) -> None:
        try:
            with zipfile.ZipFile(io.BytesIO(blob)) as zf:
                meta = json.loads(zf.read("trainer_state.json"))
                name = ADAPTER_WEIGHTS if ADAPTER_WEIGHTS in zf.namelist() else FULL_WEIGHTS
                weights = load_tensors(zf.read(name))
                raw = zf.read("optimizer.safetensors")
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise ValueError(f"not an LLM trainer checkpoint: {exc}") from exc
        if meta.get("format") != STATE_FORMAT:
            raise ValueError(f"unsupported LLM trainer state format {meta.get('format')!r}")
        self.policy.load_trainable_state(weights)
        self._load_optimizer(load_tensors(raw) if raw else {}, meta)
        self.rng.bit_generator.state = meta["rng"]
        self.iteration = int(meta["iteration"])
        self.counters.update({k: int(v) for k, v in meta["counters"].items()})

    def _load_optimizer(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        device = self.policy.device
        state = {
            int(index): {
                "step": torch.tensor(step),
                "exp_avg": tensors[f"{index}.exp_avg"].to(device),
                "exp_avg_sq": tensors[f"{index}.exp_avg_sq"].to(device),
            }
            for index, step in meta["optimizer_steps"].items()
        }
        self.optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _loss_sums(parts: Sequence[LossParts]) -> dict[str, float]:
    """One pass's sums over its micro-batches (summed again over passes and ranks)."""
    return {
        "policy_loss": sum(p.policy_loss for p in parts),
        "kl_sum": sum(p.kl_sum for p in parts),
        "clipped_low": float(sum(p.clipped_low for p in parts)),
        "clipped_high": float(sum(p.clipped_high for p in parts)),
        "ratio_sum": sum(p.ratio_sum for p in parts),
        "tokens": float(sum(p.tokens for p in parts)),
    }


def _loss_metrics(sums: Mapping[str, float], passes: int) -> dict[str, float]:
    """TRL's metrics from sums over `passes` passes (each pass sees the same tokens)."""
    tokens = max(sums["tokens"], 1.0)
    low, high, loss = sums["clipped_low"], sums["clipped_high"], sums["policy_loss"] / passes
    return {
        "policy_loss": loss,
        "train_loss": loss,
        "kl": sums["kl_sum"] / tokens,
        "clip_ratio/low_mean": low / tokens,
        "clip_ratio/high_mean": high / tokens,
        "clip_ratio/region_mean": (low + high) / tokens,
        "ratio_mean": sums["ratio_sum"] / tokens,
        "grad_norm": sums["grad_norm"] / passes,
    }


def _turn_counts(convs: Sequence[Conversation]) -> tuple[int, int, int]:
    """(tool calls, valid tool calls, answered conversations) of one rank's share."""
    calls = [s for c in convs for s in c.steps if s["action"]["tool"] != "answer"]
    valid = sum("error" not in s["result"] for s in calls)
    return len(calls), valid, sum(c.final_answer is not None for c in convs)
