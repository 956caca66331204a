"""Guard models on vLLM's offline engine (``judgekit judge --backend vllm``): prefill-only label scoring.

The input is rendered, BOS-checked and read out exactly as on the ``transformers``
path (:class:`judgekit.judges.transformers_judge.TransformersJudge`, from the same
preset data); only the forward pass moves to vLLM. For an item rendered to ids
``x`` (forced suffix included) and each label token ``t`` of the read-out, one
request is the prompt ``x + [t]`` with ``prompt_logprobs=0`` and one output token:
vLLM returns, at prompt position ``len(x)``, the log-probability of ``t`` after
``x`` over the full vocabulary (``PromptLogprobs`` in ``vllm/logprobs.py``: one
``{token_id: Logprob}`` per prompt position, None at position 0). With prefix
caching the shared prefix ``x`` is computed once per item. One more request,
``x`` with one greedy token, gives the most probable token (the ``raw_output``
column). The label log-probabilities then go through the same
:meth:`judgekit.judges.readout.TokenReadout.p_unsafe` as on the ``transformers``
path.

vLLM is imported only when a model is loaded; only read-outs of label-token
probabilities are supported (not generated verdicts, classifier heads or
generated prefixes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from judgekit.errors import InputError
from judgekit.judges.transformers_judge import TransformersJudge

MISSING_VLLM = "--backend vllm needs vLLM on a GPU machine (pip install vllm); use the transformers backend otherwise"


@dataclass(frozen=True)
class LabelRequest:
    """One prefill: ``prompt_token_ids`` = an item's ids + one label token, read at ``position``."""

    item: int
    label_column: int
    prompt_token_ids: list[int]
    position: int
    label_id: int


def label_requests(rows: list[list[int]], label_ids: tuple[int, ...] | list[int]) -> list[LabelRequest]:
    """The prefill requests that score every label token after every row of ids."""
    return [LabelRequest(item, column, [*row, token], len(row), token)
            for item, row in enumerate(rows) for column, token in enumerate(label_ids)]


def label_logprobs(requests: list[LabelRequest], prompt_logprobs: list[list[dict[int, Any] | None]],
                   n_rows: int) -> np.ndarray:
    """``[n_rows, n_labels]`` log-probabilities from each request's ``prompt_logprobs`` (entries with ``.logprob``)."""
    n_labels = 1 + max((r.label_column for r in requests), default=-1)
    out = np.full((n_rows, n_labels), -math.inf)
    for request, positions in zip(requests, prompt_logprobs, strict=True):
        out[request.item, request.label_column] = positions[request.position][request.label_id].logprob
    return out


class VllmGuardJudge(TransformersJudge):
    """A guard preset scored by ``vllm.LLM`` (see the module doc); options as the transformers judge's."""

    backend = "vllm"

    def __init__(self, spec: dict[str, Any], *, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 **options: Any) -> None:
        super().__init__(spec, **options)
        self.engine_options = {"tensor_parallel_size": tensor_parallel_size,
                               "gpu_memory_utilization": gpu_memory_utilization}

    def _check_readout(self) -> None:
        if self.readout_kind in ("generate", "max_sigmoid") or self.spec.get("prefix_generation") or self.loader != "causal_lm":
            raise InputError(f"{self.judge_id}: --backend vllm scores label-token read-outs of causal LMs only; "
                             "use the transformers backend for this judge")

    def _load_model(self) -> None:
        if self._model is not None:
            return
        self._load_tokenizer()
        self._check_readout()
        try:
            from vllm import LLM
        except ImportError:
            raise InputError(MISSING_VLLM) from None
        import torch

        dtype = self.dtype_request or "bfloat16"
        self._model = LLM(model=str(self.model_source), tokenizer=str(self.model_source), revision=self.revision,
                          dtype=dtype, trust_remote_code=False, load_format="safetensors", enable_prefix_caching=True,
                          **self.engine_options)
        self.device = torch.device("cuda")
        self.dtype = dtype
        self.attention = "vllm"
        self.token_budget = self._planned_budget()

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "backend": self.backend, "dtype": self.dtype_request or "bfloat16"}

    def run_info(self) -> dict[str, Any]:
        return {**super().run_info(), "backend": self.backend, **self.engine_options}

    def close(self) -> None:
        self._model = None

    def _score_rows(self, rows: list[list[int]]) -> dict[str, Any]:
        from vllm import SamplingParams

        requests = label_requests(rows, self._readout.ids)
        prompts = [{"prompt_token_ids": r.prompt_token_ids} for r in requests] + [{"prompt_token_ids": row} for row in rows]
        params = ([SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)] * len(requests)
                  + [SamplingParams(max_tokens=1, temperature=0.0)] * len(rows))
        outputs = self._model.generate(prompts, params, use_tqdm=False)
        logprobs = label_logprobs(requests, [o.prompt_logprobs for o in outputs[: len(requests)]], len(rows))
        p, coverage = self._readout.p_unsafe(logprobs)
        top = [o.outputs[0].token_ids[0] for o in outputs[len(requests):]]
        return {"p_unsafe": p, "coverage": coverage, "raw": self._tokenizer.batch_decode([[t] for t in top])}
