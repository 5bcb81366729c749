"""The GRPO objective of `grpo.py`, per completion token and in torch, for language-model policies.

Same definitions (DeepSeekMath §4, TRL's GRPOTrainer): ratio = exp(logπθ - logπold), the clipped
surrogate with epsilon_low/high, β·k3-KL to the reference, and grpo/dapo/dr_grpo aggregation. A
trajectory's "actions" are its completion tokens over all its turns (prompt and tool-output tokens
are never in a completion, so they carry no loss); every token of a trajectory shares its
advantage. The aggregation weights come from `grpo.aggregation_weights` on the padded
(trajectories x tokens) mask, so they are the numpy code's own, and the loss is a weighted sum over
tokens: summing it micro-batch by micro-batch and calling backward on each part accumulates
exactly the full batch's gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from agentcore_trainer.algorithm.grpo import AlgoConfig, BatchTotals, LossType, aggregation_weights


def token_weights(
    lengths: Sequence[int],
    valid: Sequence[bool],
    loss_type: LossType,
    max_len: int,
    totals: BatchTotals | None = None,
) -> list[np.ndarray]:
    """Per trajectory, the loss weight of each of its completion tokens (0 for invalid ones).

    `max_len` is dr_grpo's constant normaliser (the most completion tokens a trajectory can have);
    `totals`, the whole batch's sizes when these trajectories are one rank's share of it.
    """
    width = max(max_len, max(lengths, default=0), 1)
    mask = np.zeros((len(lengths), width))
    for row, (n, ok) in enumerate(zip(lengths, valid, strict=True)):
        mask[row, :n] = 1.0 if ok else 0.0
    w = aggregation_weights(mask, loss_type, totals)
    return [w[row, :n] for row, n in enumerate(lengths)]


@dataclass
class LossParts:
    """Sums over the tokens of one micro-batch (divide the counts by the token total for means)."""

    loss: torch.Tensor  # Σ w·(surrogate + β·kl): differentiable
    policy_loss: float  # Σ w·surrogate + β·kl, detached (the numpy code's "policy_loss")
    kl_sum: float
    clipped_low: int
    clipped_high: int
    ratio_sum: float
    tokens: int


def token_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    logp_ref: torch.Tensor | None,
    advantages: torch.Tensor,
    weights: torch.Tensor,
    config: AlgoConfig,
) -> LossParts:
    """The weighted GRPO loss over a flat run of tokens (all 1-D, aligned)."""
    ratio = torch.exp(logp - logp_old)
    lo, hi = 1.0 - config.epsilon_low, 1.0 + config.epsilon_high
    per_token = -torch.minimum(ratio * advantages, torch.clamp(ratio, lo, hi) * advantages)
    kl = torch.zeros_like(logp)
    if config.beta and logp_ref is not None:
        delta = logp_ref - logp
        kl = torch.exp(delta) - delta - 1.0
        per_token = per_token + config.beta * kl
    loss = (weights * per_token).sum()
    with torch.no_grad():
        low = ((ratio < lo) & (advantages < 0)).sum()
        high = ((ratio > hi) & (advantages > 0)).sum()
    return LossParts(
        loss=loss,
        policy_loss=float(loss.detach()),
        kl_sum=float(kl.detach().sum()),
        clipped_low=int(low),
        clipped_high=int(high),
        ratio_sum=float(ratio.detach().sum()),
        tokens=int(logp.numel()),
    )
