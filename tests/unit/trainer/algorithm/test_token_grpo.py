"""The torch token-level GRPO loss against the numpy implementation and TRL's definitions.

Same inputs, padded (trajectories x tokens): the loss must equal `grpo.grpo_loss`'s, and autograd's
gradient with respect to logπθ must equal the numpy code's analytic `grad_logp`, for every loss
type, with clipping active on both sides and beta > 0. TRL's GRPOTrainer loss (trl/trainer/
grpo_trainer.py, `_compute_loss`) is restated below from its documented formulas as a third check.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agentcore_trainer.algorithm.grpo import AlgoConfig, grpo_loss
from agentcore_trainer.algorithm.token_grpo import token_loss, token_weights

LOSS_TYPES = ["grpo", "dapo", "dr_grpo"]


def _inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = np.array([5, 3, 7, 1, 6, 4])
    width = 9  # dr_grpo's constant normaliser: wider than the longest trajectory
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(float)
    logp_old = rng.normal(-1.5, 0.5, size=mask.shape)
    logp = logp_old + rng.normal(0.0, 0.4, size=mask.shape)  # ratios well outside [0.8, 1.2] too
    logp_ref = logp_old + rng.normal(0.0, 0.2, size=mask.shape)
    adv = rng.normal(0.0, 1.0, size=len(lengths))
    return {"mask": mask, "logp": logp, "old": logp_old, "ref": logp_ref, "adv": adv, "lengths": lengths}


def _flat(x: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.concatenate([x[i, :n] for i, n in enumerate(lengths)]), dtype=torch.float64)


def _torch_loss(d: dict[str, np.ndarray], config: AlgoConfig) -> tuple[torch.Tensor, torch.Tensor, float]:
    lengths = d["lengths"]
    weights = token_weights(list(lengths), [True] * len(lengths), config.loss_type, d["mask"].shape[1])
    logp = _flat(d["logp"], lengths).requires_grad_(True)
    adv = torch.tensor(np.repeat(d["adv"], lengths), dtype=torch.float64)
    w = torch.tensor(np.concatenate(weights), dtype=torch.float64)
    parts = token_loss(logp, _flat(d["old"], lengths), _flat(d["ref"], lengths), adv, w, config)
    parts.loss.backward()
    assert logp.grad is not None
    return parts.loss.detach(), logp.grad, parts.kl_sum / parts.tokens


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_numpy_loss_and_gradient(loss_type: str, seed: int) -> None:
    d = _inputs(seed)
    config = AlgoConfig(beta=0.04, epsilon_low=0.2, epsilon_high=0.28, loss_type=loss_type)  # type: ignore[arg-type]
    ref = grpo_loss(d["logp"], d["old"], d["ref"], d["adv"], d["mask"], config)
    loss, grad, kl = _torch_loss(d, config)
    assert float(loss) == pytest.approx(ref.loss, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(
        grad.numpy(), _flat(ref.grad_logp, d["lengths"]).numpy(), rtol=1e-10, atol=1e-12
    )
    assert kl == pytest.approx(ref.metrics["kl"], rel=1e-12)
    assert ref.metrics["clip_ratio/region_mean"] > 0  # the clipped branches were exercised


def _trl_loss(d: dict[str, np.ndarray], config: AlgoConfig, max_completion_length: int) -> torch.Tensor:
    """TRL's per-token GRPO loss (coef_1 = ratio, coef_2 = clipped ratio) and its three reductions."""
    mask = torch.tensor(d["mask"])
    logp, old, ref = (torch.tensor(d[k]) for k in ("logp", "old", "ref"))
    adv = torch.tensor(d["adv"])[:, None]
    coef_1 = torch.exp(logp - old)
    coef_2 = torch.clamp(coef_1, 1 - config.epsilon_low, 1 + config.epsilon_high)
    per_token = -torch.min(coef_1 * adv, coef_2 * adv)
    per_token = per_token + config.beta * (torch.exp(ref - logp) - (ref - logp) - 1)
    if config.loss_type == "grpo":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if config.loss_type == "dapo":
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    return (per_token * mask).sum() / (per_token.size(0) * max_completion_length)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_matches_trl_definitions(loss_type: str) -> None:
    d = _inputs(7)
    config = AlgoConfig(beta=0.1, epsilon_low=0.2, epsilon_high=0.2, loss_type=loss_type)  # type: ignore[arg-type]
    loss, _, _ = _torch_loss(d, config)
    assert float(loss) == pytest.approx(float(_trl_loss(d, config, d["mask"].shape[1])), rel=1e-12)


def test_micro_batches_accumulate_the_full_gradient() -> None:
    """Splitting tokens into parts and calling backward on each gives the one-shot gradient."""
    d = _inputs(3)
    config = AlgoConfig(beta=0.04, loss_type="grpo")
    lengths = d["lengths"]
    weights = np.concatenate(token_weights(list(lengths), [True] * len(lengths), "grpo", 9))
    flat = {k: _flat(d[k], lengths) for k in ("logp", "old", "ref")}
    adv = torch.tensor(np.repeat(d["adv"], lengths), dtype=torch.float64)
    whole = flat["logp"].clone().requires_grad_(True)
    token_loss(whole, flat["old"], flat["ref"], adv, torch.tensor(weights), config).loss.backward()
    parted = flat["logp"].clone().requires_grad_(True)
    for part in (slice(0, 7), slice(7, 15), slice(15, None)):
        token_loss(parted[part], flat["old"][part], flat["ref"][part], adv[part],
                   torch.tensor(weights[part]), config).loss.backward()  # fmt: skip
    assert whole.grad is not None and parted.grad is not None
    torch.testing.assert_close(parted.grad, whole.grad, rtol=1e-12, atol=1e-14)


def test_invalid_trajectories_carry_no_weight() -> None:
    weights = token_weights([3, 2], [True, False], "dapo", 4)
    assert weights[0].tolist() == pytest.approx([1 / 3] * 3) and weights[1].tolist() == [0.0, 0.0]
