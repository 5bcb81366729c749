"""A Hugging Face causal language model as the policy, trained through a LoRA adapter (peft).

The reference policy of the KL term is the same model with the adapter disabled
(`peft`'s ``disable_adapter()``), so there is no second copy in memory or in checkpoints; only full
fine-tuning keeps a frozen copy, and only when beta > 0.

Sampling and log-probabilities use the same temperature: the loss's logπ is the tempered
distribution the tokens were drawn from (TRL does the same). Everything here is synchronous torch
work; the runtime calls it in a worker thread.

Shared prefix: every conversation of a run starts with the same system prompt, tool schemas and
worked example (~430 tokens, most of each prompt). Its keys and values are computed once (batch 1)
and expanded into a `DynamicCache` for the batch; each row is laid out as
``[prefix][left padding][suffix]``, with the attention mask hiding the padding and position ids
counted from the mask, so every real token sees the same positions and context as in the plain
left-padded layout. Without gradients the prefix is memoised per weights version; with gradients
it is recomputed per call, or shared across micro-batches through `shared_prefix` (one forward and
one backward of the prefix per update).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from agentcore.api.training import Device, DType, PolicyConfig
from agentcore_trainer.policies.weights import LocalModel, converted

log = logging.getLogger("agentcore.trainer")
_DTYPES = {DType.FLOAT32: torch.float32, DType.BFLOAT16: torch.bfloat16, DType.FLOAT16: torch.float16}
Messages = Sequence[dict[str, str]]
KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values of shape [1, heads, P, dim]
MIN_PREFIX = 32  # below this, a cached prefix saves less than the cache's copies cost


def common_prefix(seqs: Sequence[Sequence[int]], limit: int) -> int:
    """Length of the longest prefix every sequence shares, at most `limit`."""
    first = seqs[0]
    n = min(limit, *(len(s) for s in seqs))
    for seq in seqs[1:]:
        k = 0
        while k < n and seq[k] == first[k]:
            k += 1
        n = k
    return n


@dataclass
class SharedPrefix:
    """A prefix's K/V computed once with autograd; `keys`/`values` are leaves that collect the
    gradient of every use, pushed back through the prefix computation once by `backward`."""

    ids: tuple[int, ...]
    computed: KV
    leaves: KV

    def matches(self, prompts: Sequence[Sequence[int]]) -> bool:
        n = len(self.ids)
        return all(len(p) > n and tuple(p[:n]) == self.ids for p in prompts)

    def backward(self) -> None:
        outputs, grads = [], []
        for pair, leaf_pair in zip(self.computed, self.leaves, strict=True):
            for out, leaf in zip(pair, leaf_pair, strict=True):
                if leaf.grad is not None:
                    outputs.append(out)
                    grads.append(leaf.grad)
        if outputs:
            torch.autograd.backward(outputs, grads)


def load_pretrained(model: LocalModel, dtype: str | torch.dtype) -> tuple[PreTrainedTokenizerBase, Any]:
    """Tokenizer and model from a local directory (GGUF files are de-quantised by transformers)."""
    hf_logging.disable_progress_bar()
    kwargs: dict[str, Any] = {"gguf_file": model.gguf_file} if model.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(model.directory, **kwargs)
    lm = AutoModelForCausalLM.from_pretrained(model.directory, dtype=dtype, **kwargs)
    quantizer = getattr(lm, "hf_quantizer", None)
    if quantizer is not None:
        # A GGUF model is flagged as quantised although its weights are now plain floats; the flag
        # makes transformers refuse training and saving, so drop it.
        quantizer.remove_quantization_config(lm)
    return tokenizer, lm


def pick_device(device: Device) -> torch.device:
    if device == Device.CUDA or (device == Device.AUTO and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def pick_dtype(dtype: DType, device: torch.device) -> torch.dtype:
    if dtype == DType.AUTO:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[dtype]


class CausalLMPolicy:
    """Generation, tempered log-probabilities and the trainable state of one causal LM."""

    def __init__(self, config: PolicyConfig, model: LocalModel, seed: int, *, keep_reference: bool) -> None:
        self.config = config
        self.device = pick_device(config.device)
        dtype = pick_dtype(config.dtype, self.device)
        torch.set_num_threads(max(1, int(os.environ.get("AGENTCORE_TORCH_THREADS", os.cpu_count() or 1))))
        self.tokenizer, lm = load_pretrained(converted(model), dtype)
        self.model_name = model.name
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.stop_ids = sorted({i for i in (self.tokenizer.eos_token_id, self._im_end()) if i is not None})
        lm.to(self.device)
        if config.gradient_checkpointing:
            lm.gradient_checkpointing_enable()
            lm.config.use_cache = False
        adapter = config.adapter
        torch.manual_seed(seed)  # LoRA's A matrices are random: the same seed, the same adapter
        self.reference: Any = None
        if adapter is not None:
            peft_config = PeftLoraConfig(
                r=adapter.r, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
                target_modules=list(adapter.target_modules), task_type="CAUSAL_LM",
            )  # fmt: skip
            self.model: Any = get_peft_model(lm, peft_config)
        else:
            self.model = lm
            if keep_reference:
                self.reference = copy.deepcopy(lm).eval().requires_grad_(False)
        self.model.eval()
        self.prefix_caching = True  # off: the plain left-padded computation (tests compare the two)
        self._memo: dict[tuple[Any, ...], KV] = {}

    def _im_end(self) -> int | None:
        token_id = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        return token_id if isinstance(token_id, int) and token_id != self.tokenizer.unk_token_id else None

    # -- text ----------------------------------------------------------------------------------------

    def render(self, messages: Messages) -> list[int]:
        """The prompt ids of a conversation, ending with the assistant's generation prompt."""
        ids = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        tokens: Any = ids["input_ids"] if isinstance(ids, dict) else ids
        return [int(i) for i in tokens]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- sampling ------------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self, prompts: Sequence[Sequence[int]], *, greedy: bool, adapter: bool = True
    ) -> list[list[int]]:
        """One completion per prompt (batched, left-padded, with the KV cache), ending at a stop id.

        The stop token is kept: the policy must learn to end its turn.
        """
        if not prompts:
            return []
        pad = int(self.tokenizer.pad_token_id)
        n = self._prefix_length(prompts, prompts)
        ids, mask = self._padded_after(prompts, n)
        width = ids.shape[1]
        sampling: dict[str, Any] = (
            {"do_sample": False}
            if greedy
            else {
                "do_sample": True,
                "temperature": self.config.temperature,
                "top_p": self.config.top_p,
                "top_k": 0,
            }
        )
        with self._adapter(adapter):
            if n:
                kv = self._memo_prefix(tuple(prompts[0][:n]), self.model, adapter)
                sampling["cache"] = _expanded(kv, len(prompts))
            out = self.model.generate(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                max_new_tokens=self.config.max_new_tokens, pad_token_id=pad,
                eos_token_id=self.stop_ids, **sampling,
            )  # fmt: skip
        return [self._until_stop(row[width:].tolist()) for row in out.cpu()]

    def _until_stop(self, tokens: list[int]) -> list[int]:
        for k, token in enumerate(tokens):
            if token in self.stop_ids:
                return tokens[: k + 1]
        return tokens

    # -- log-probabilities -----------------------------------------------------------------------------

    def token_logprobs(
        self,
        prompts: Sequence[Sequence[int]],
        completions: Sequence[Sequence[int]],
        *,
        reference: bool = False,
        prefix: SharedPrefix | None = None,
    ) -> list[torch.Tensor]:
        """logπ(completion token | prefix) at the sampling temperature, one 1-D tensor per sequence.

        Runs with autograd unless called under ``torch.no_grad()``; ``reference=True`` uses the
        reference policy (adapter disabled, or the frozen copy). `prefix` (from `shared_prefix`)
        supplies the shared prompt prefix's K/V when it fits these prompts.
        """
        seqs = [list(p) + list(c) for p, c in zip(prompts, completions, strict=True)]
        # Every completion ends its row, so only the last `keep` positions need the vocabulary
        # projection and softmax (most of a row is prompt).
        keep = max(len(c) for c in completions) + 1
        model = self.reference if reference and self.reference is not None else self.model
        context = self._adapter(False) if reference and self.reference is None else nullcontext()
        use_shared = prefix is not None and not reference and prefix.matches(prompts)
        n = len(prefix.ids) if use_shared and prefix is not None else self._prefix_length(prompts, seqs)
        ids, mask = self._padded_after(seqs, n)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with context:
            kwargs: dict[str, Any] = {}
            if n:
                kv = self._prefix_kv(tuple(seqs[0][:n]), model, not reference, prefix if use_shared else None)
                kwargs["cache"] = _expanded(kv, len(seqs))
            logits = model(
                input_ids=ids[:, n:].to(self.device), attention_mask=mask.to(self.device),
                position_ids=positions[:, n:].to(self.device), logits_to_keep=keep, **kwargs,
            ).logits  # fmt: skip
        logp = torch.log_softmax(logits.float() / self.config.temperature, dim=-1)
        out = []
        for row, completion in enumerate(completions):
            k = len(completion)
            targets = ids[row, ids.shape[1] - k :].to(self.device)
            out.append(logp[row, keep - 1 - k : keep - 1].gather(-1, targets[:, None]).squeeze(-1))
        return out

    # -- the shared prefix -----------------------------------------------------------------------------

    def _prefix_length(self, prompts: Sequence[Sequence[int]], seqs: Sequence[Sequence[int]]) -> int:
        """How many leading tokens to serve from a cache (0: none). At least one prompt token stays
        outside the prefix: its logits predict the first completion token."""
        if not self.prefix_caching or (self.config.gradient_checkpointing and torch.is_grad_enabled()):
            return 0  # checkpointed layers drop the cache in training
        n = common_prefix(seqs, min(len(p) for p in prompts) - 1)
        return n if n >= MIN_PREFIX else 0

    def _prefix_kv(self, ids: tuple[int, ...], model: Any, adapter: bool, shared: SharedPrefix | None) -> KV:
        if shared is not None:
            return shared.leaves
        if torch.is_grad_enabled():
            return self._compute_prefix(ids, model)  # the gradient must flow through the prefix
        return self._memo_prefix(ids, model, adapter)

    def _compute_prefix(self, ids: Sequence[int], model: Any) -> KV:
        cache = DynamicCache()
        # logits_to_keep=1: the prefix's vocabulary projection is never read
        model(
            input_ids=torch.tensor([list(ids)], device=self.device),
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        layers: Any = cache.layers  # DynamicLayer: keys/values of shape [1, heads, n, dim]
        return [(layer.keys, layer.values) for layer in layers]

    def _memo_prefix(self, ids: tuple[int, ...], model: Any, adapter: bool) -> KV:
        """The no-grad prefix K/V, recomputed only when the weights it depends on changed."""
        key = (ids, id(model), adapter, model.training, self._weights_version(model, adapter))
        if key not in self._memo:
            self._memo = {k: v for k, v in self._memo.items() if k[1:3] != key[1:3]}  # drop stale
            with torch.no_grad():
                self._memo[key] = self._compute_prefix(ids, model)
        return self._memo[key]

    def _weights_version(self, model: Any, adapter: bool) -> int:
        """Changes whenever a trainable weight is modified in place (optimizer step, checkpoint load):
        torch bumps a tensor's version counter on every in-place write."""
        if model is self.reference or (not adapter and isinstance(self.model, PeftModel)):
            return 0  # the frozen base model
        return sum(p._version for p in self.trainable_parameters())

    @contextmanager
    def shared_prefix(self, prompts: Sequence[Sequence[int]]) -> Iterator[SharedPrefix | None]:
        """The prompts' common prefix computed once with autograd, for every `token_logprobs` call
        inside the block; on leaving it, the gradient their backward passes left on the prefix's
        K/V flows on into the weights (the same total gradient as recomputing it per sequence)."""
        n = self._prefix_length(prompts, prompts) if torch.is_grad_enabled() else 0
        if not n:
            yield None
            return
        computed = self._compute_prefix(prompts[0][:n], self.model)
        leaves = [(k.detach().requires_grad_(), v.detach().requires_grad_()) for k, v in computed]
        shared = SharedPrefix(tuple(prompts[0][:n]), computed, leaves)
        yield shared
        shared.backward()

    def _padded_after(self, seqs: Sequence[Sequence[int]], n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``[first n tokens][padding][rest]``: left padding when n is 0."""
        if not n:
            return self._left_padded(seqs)
        ids, mask = self._left_padded([s[n:] for s in seqs])
        head = torch.tensor([list(seqs[0][:n])] * len(seqs), dtype=torch.long)
        return torch.cat([head, ids], dim=1), torch.cat([torch.ones_like(head), mask], dim=1)

    def _left_padded(self, seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        pad = int(self.tokenizer.pad_token_id)
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(seqs):
            ids[row, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq) :] = 1
        return ids, mask

    @contextmanager
    def _adapter(self, enabled: bool) -> Iterator[None]:
        if enabled or not isinstance(self.model, PeftModel):
            yield
            return
        with self.model.disable_adapter():
            yield

    # -- trainable state -------------------------------------------------------------------------------

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint keeps: the adapter's, or every weight under full fine-tuning."""
        if isinstance(self.model, PeftModel):
            state = get_peft_model_state_dict(self.model)
        else:
            state = self.model.state_dict()
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        if isinstance(self.model, PeftModel):
            result = set_peft_model_state_dict(self.model, state)
            missing = [k for k in getattr(result, "unexpected_keys", [])]
            if missing:
                raise ValueError(f"checkpoint adapter does not fit the model: unexpected keys {missing[:3]}")
        else:
            self.model.load_state_dict(state)

    def adapter_config(self) -> dict[str, Any] | None:
        """adapter_config.json of the PEFT adapter directory (None under full fine-tuning)."""
        if not isinstance(self.model, PeftModel):
            return None
        config = self.model.peft_config["default"].to_dict()
        config["base_model_name_or_path"] = self.model_name
        return {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}


def _expanded(kv: KV, batch: int) -> DynamicCache:
    """A fresh cache holding the prefix for every row (expand is a view; the cache copies on update)."""
    return DynamicCache(
        ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv]
    )
