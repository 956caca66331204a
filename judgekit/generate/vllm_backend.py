"""Generation with vLLM's offline engine: one ``LLM`` for the base weights, LoRA adapters as ``LoRARequest``s.

Several adapters of one base run in one engine (``enable_lora``, ``max_loras``),
tensor parallelism over the GPUs of a node with ``tensor_parallel_size``; for
several nodes start vLLM on a Ray cluster (vLLM's own multi-node support) or
serve replicas and use ``--backend http``. Prompts go in as the token ids of the
model's own chat template (rendered by :class:`judgekit.generate.spec.ChatRenderer`),
each with its own ``SamplingParams(seed=...)``. vLLM is imported only here, when
this backend is chosen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from judgekit.errors import InputError
from judgekit.generate.spec import Decoding, Generation, GenerationRequest, ModelVariant

BATCH_REQUESTS = 1024  # commit to the cache at least this often; vLLM schedules inside a batch itself


def sampling_arguments(request: GenerationRequest, decoding: Decoding) -> dict[str, Any]:
    """``SamplingParams`` keyword arguments of one request (greedy is temperature 0)."""
    return {"n": 1, "temperature": decoding.temperature, "top_p": decoding.top_p, "max_tokens": decoding.max_new_tokens,
            "seed": request.seed, "skip_special_tokens": True}


def lora_arguments(adapters: dict[str, str]) -> dict[str, tuple[str, int, str]]:
    """``LoRARequest(name, int_id, path)`` arguments per adapter name; ids from 1, in the given order."""
    return {name: (name, k, path) for k, (name, path) in enumerate(adapters.items(), start=1)}


class VllmGenerator:
    backend = "vllm"

    def __init__(self, model_source: str, adapters: dict[str, str] | None = None, *, tensor_parallel_size: int = 1,
                 dtype: str | None = None, max_lora_rank: int = 64, gpu_memory_utilization: float = 0.9) -> None:
        try:
            from vllm import LLM, SamplingParams
            from vllm.lora.request import LoRARequest
        except ImportError:
            raise InputError("--backend vllm needs vLLM on a GPU machine (pip install vllm); use --backend transformers "
                             "or --backend http otherwise") from None
        from judgekit.guards.model_gate import check_adapter_dir, check_model_source

        check_model_source(model_source, option="--model")
        for directory in (adapters or {}).values():
            check_adapter_dir(directory, option="--adapter")
        self.model_source = model_source
        self.adapters = dict(adapters or {})
        self._sampling_params = SamplingParams
        self.lora_requests = {name: LoRARequest(*args) for name, args in lora_arguments(self.adapters).items()}
        self.options = {"tensor_parallel_size": tensor_parallel_size, "dtype": dtype or "auto",
                        "enable_lora": bool(self.adapters), "max_loras": max(len(self.adapters), 1),
                        "max_lora_rank": max_lora_rank, "gpu_memory_utilization": gpu_memory_utilization,
                        "trust_remote_code": False, "load_format": "safetensors"}
        self.llm = LLM(model=model_source, **self.options)
        self.tokenizer = self.llm.get_tokenizer()

    def describe(self) -> dict[str, Any]:
        import vllm

        return {"backend": self.backend, "model": self.model_source, "vllm_version": vllm.__version__, **self.options,
                "adapters": self.adapters}

    def plan(self, requests: list[GenerationRequest], decoding: Decoding) -> list[np.ndarray]:
        return [np.arange(b, min(b + BATCH_REQUESTS, len(requests))) for b in range(0, len(requests), BATCH_REQUESTS)]

    def generate(self, variant: ModelVariant, requests: list[GenerationRequest], decoding: Decoding) -> list[Generation]:
        prompts = [{"prompt_token_ids": list(r.ids)} for r in requests]
        params = [self._sampling_params(**sampling_arguments(r, decoding)) for r in requests]
        lora = self.lora_requests[variant.name] if variant.adapter is not None else None
        outputs = self.llm.generate(prompts, params, lora_request=lora, use_tqdm=False)
        return [Generation(o.outputs[0].text, o.outputs[0].finish_reason or "unknown", len(o.prompt_token_ids),
                           len(o.outputs[0].token_ids)) for o in outputs]

    def close(self) -> None:
        self.llm = None
