"""In-process generation with transformers (CPU tests, small runs), LoRA adapters through peft.

Requests are sorted by length and packed by a token budget (``count × (longest
prompt + max_new_tokens) ≤ budget``), left-padded, and decoded with
``generate``. The model's own ``generation_config`` sampling defaults are
replaced by a neutral one, so decoding is exactly what the run's settings say
(no inherited temperature, top-k or repetition penalty). Sampling draws each
row's tokens from its own ``torch.Generator`` seeded per (prompt, sample), so a
response does not depend on which other requests share its batch (up to the
floating-point effect of padding). Several adapters of one base share one
model in memory (``PeftModel.load_adapter``); the base runs with adapters
disabled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from judgekit.generate.spec import Decoding, Generation, GenerationRequest, ModelVariant
from judgekit.judges.transformers_judge import pack_by_budget

DEFAULT_TOKEN_BUDGET = {"cuda": 65_536, "cpu": 8_192}  # CUDA: KV cache of 64 requests × 1,024 tokens
MAX_BATCH_ITEMS = 256


def sample_next(logits: torch.Tensor, *, temperature: float, top_p: float, generator: torch.Generator) -> int:
    """One token drawn from ``softmax(logits / temperature)`` restricted to the top-p nucleus (the smallest
    set of most probable tokens whose mass reaches ``top_p``; the most probable token is always kept)."""
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    if top_p < 1:
        sorted_probs, order = probs.sort(descending=True)
        keep = (sorted_probs.cumsum(-1) - sorted_probs) < top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))


class _SeededSampler:
    """Logits processor that samples each row with its own generator and leaves only that token possible,
    so ``generate``'s greedy step takes it."""

    def __init__(self, seeds: list[int], decoding: Decoding) -> None:
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.temperature, self.top_p = decoding.temperature, decoding.top_p

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        chosen = [sample_next(row, temperature=self.temperature, top_p=self.top_p, generator=g)
                  for row, g in zip(scores, self.generators, strict=True)]
        forced = torch.full_like(scores, -torch.inf)
        forced[torch.arange(len(chosen)), torch.tensor(chosen)] = 0.0
        return forced


class TransformersGenerator:
    """The base weights in memory, with any number of LoRA adapters (name → directory)."""

    backend = "transformers"

    def __init__(self, model_source: str, adapters: dict[str, str] | None = None, *, device: str | None = None,
                 dtype: str | None = None, token_budget: int | None = None) -> None:
        from transformers import GenerationConfig

        from judgekit.guards.model_gate import check_model_source, load_model, load_tokenizer

        self.model_source = model_source
        self.adapters = dict(adapters or {})
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype or ("bfloat16" if self.device.startswith("cuda") else "float32")
        self.token_budget = token_budget or DEFAULT_TOKEN_BUDGET["cuda" if self.device.startswith("cuda") else "cpu"]
        check_model_source(model_source, option="--model")
        self.tokenizer = load_tokenizer(model_source, option="--model")
        model = load_model("AutoModelForCausalLM", model_source, option="--model", dtype=getattr(torch, self.dtype))
        self.eos_ids = _eos_ids(self.tokenizer, model.generation_config)
        self.pad_id = next((t for t in (self.tokenizer.pad_token_id, *self.eos_ids) if t is not None), 0)
        self.ignored_generation_defaults = {k: v for k, v in model.generation_config.to_diff_dict().items()
                                            if k in ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty")}
        model.generation_config = GenerationConfig(eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
                                                   bos_token_id=model.generation_config.bos_token_id)
        self.model = self._with_adapters(model).to(self.device).eval()

    def _with_adapters(self, model: Any) -> Any:
        if not self.adapters:
            return model
        from judgekit.guards.model_gate import load_adapters

        return load_adapters(model, self.adapters, option="--adapter")

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model_source, "device": self.device, "dtype": self.dtype,
                "token_budget": self.token_budget, "eos_token_ids": self.eos_ids, "pad_token_id": self.pad_id,
                "padding_side": "left", "model_generation_defaults_ignored": self.ignored_generation_defaults}

    def plan(self, requests: list[GenerationRequest], decoding: Decoding) -> list[np.ndarray]:
        lengths = np.array([len(r.ids) + decoding.max_new_tokens for r in requests])
        return pack_by_budget(lengths, budget=self.token_budget, max_items=MAX_BATCH_ITEMS)

    def generate(self, variant: ModelVariant, requests: list[GenerationRequest], decoding: Decoding) -> list[Generation]:
        if variant.adapter is None and self.adapters:
            with self.model.disable_adapter():
                return self._generate_rows(requests, decoding)
        if variant.adapter is not None:
            self.model.set_adapter(variant.name)
        return self._generate_rows(requests, decoding)

    def _generate_rows(self, requests: list[GenerationRequest], decoding: Decoding) -> list[Generation]:
        width = max(len(r.ids) for r in requests)
        input_ids = torch.full((len(requests), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(requests), width), dtype=torch.long)
        for row, request in enumerate(requests):
            input_ids[row, width - len(request.ids):] = torch.tensor(request.ids, dtype=torch.long)
            mask[row, width - len(request.ids):] = 1
        sampler = None if decoding.greedy else [_SeededSampler([r.seed for r in requests], decoding)]
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                                      max_new_tokens=decoding.max_new_tokens, do_sample=False, logits_processor=sampler,
                                      pad_token_id=self.pad_id, eos_token_id=self.eos_ids)
        return [self._answer(tokens, len(request.ids)) for tokens, request in zip(out[:, width:].tolist(), requests, strict=True)]

    def _answer(self, tokens: list[int], n_prompt: int) -> Generation:
        stop = next((k for k, t in enumerate(tokens) if t in self.eos_ids), None)
        content = tokens if stop is None else tokens[:stop]
        text = self.tokenizer.decode(content, skip_special_tokens=True)
        if stop is None:
            return Generation(text, "length", n_prompt, len(tokens))
        return Generation(text, "stop", n_prompt, stop + 1)

    def close(self) -> None:
        self.model = None


def _eos_ids(tokenizer: Any, generation_config: Any) -> list[int]:
    """EOS ids from the tokenizer and the model's generation config (Llama 3 instruct ends turns with <|eot_id|>)."""
    configured = generation_config.eos_token_id
    configured = configured if isinstance(configured, list) else [configured]
    ids = [tokenizer.eos_token_id, *configured]
    return sorted({int(t) for t in ids if t is not None})
