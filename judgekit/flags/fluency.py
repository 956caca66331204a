"""Per-token surprisal of a response under a causal language model, for the ``fluency`` detector.

The model is any Hugging Face causal LM, from a local directory or a hub id, loaded
through :mod:`judgekit.guards.model_gate`: never code from the checkpoint, never an
interactive prompt, and only from safetensors weights (a pickled ``.bin`` checkpoint
is refused, because unpickling runs code).

What is scored
--------------
Each response is scored *conditioned on its prompt*, as the model would have
produced it: with the model's chat template when the tokenizer has one (the prompt
as a user turn, then the generation prompt), else the text ``prompt + "\\n\\n"``.
The response is tokenized on its own and appended, so its tokens are the ones the
model would have emitted. The surprisal of response token :math:`t_i` is
:math:`-\\log p(t_i \\mid \\text{prompt}, t_{<i})` in nats; prompt tokens are never
scored. Only the first ``max_tokens`` tokens (prompt included; the prompt keeps its
last ``MAX_PROMPT_TOKENS``) are read, so one very long response cannot stall a run.

Windows
-------
:func:`window_surprisal` slides a window of ``window`` tokens over the response's
surprisals (stride 1) and returns the **worst** window's mean. A salad tail or a
burst of noise in an otherwise fluent response raises the worst window even when the
whole-response mean (perplexity) stays ordinary; a whole-response shuffle raises every
window.

Batching
--------
Rows are sorted longest first and packed so that ``rows × longest ≤ token_budget``
(:func:`judgekit.judges.transformers_judge.pack_by_budget`, as the judges batch); the
default budget batches on CUDA and runs one response per pass on CPU. Padding
is on the right with an attention mask: a causal model's real tokens never attend to
padding that comes after them, and their positions are 0..n-1 exactly as unbatched,
so a response's surprisals do not depend on which rows share its batch (tested against
batch size 1). The budget is also capped so that one batch's logits (rows × length ×
vocabulary, in float32) stay under ``LOGITS_BYTES`` for the device. A batch that runs
out of GPU memory is split in halves and retried; a single row that still does not
fit gets no score. Weights are float32 on CPU and bfloat16 on CUDA (float16 where the
GPU has no bfloat16); surprisals are always computed from float32 logits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from judgekit.judges.rendering import apply_template
from judgekit.guards.model_gate import check_model_source, load_model, load_tokenizer

log = logging.getLogger(__name__)

WINDOW_TOKENS = 32
MIN_TOKENS = 8           # fewer scored response tokens: no score (a handful of tokens says little about fluency)
MAX_TOKENS = 1024        # prompt + response tokens read per row
MAX_PROMPT_TOKENS = 256  # the prompt's last tokens kept as context
# Padded tokens per forward pass. CPU: 1, one response per pass, as the judges run on CPU: batching bought
# nothing on CPU (the unpadded pass takes the faster unmasked attention path; BENCHMARKS.md, fluency).
DEFAULT_TOKEN_BUDGET = {"cuda": 32_768, "cpu": 1}
LOGITS_BYTES = {"cuda": 8 * 2**30, "cpu": 2**30}       # cap on one batch's float32 logits


def check_causal_lm(source: str) -> None:
    """Refuse, before any work, a ``--fluency-model`` that cannot be loaded safely (see
    :func:`judgekit.guards.model_gate.check_model_source`)."""
    check_model_source(source, option="--fluency-model")


@dataclass
class CausalLM:
    """A loaded causal LM, its tokenizer, and the batching plan for its device."""

    source: str
    tokenizer: Any
    model: Any
    device: Any
    token_budget: int
    max_tokens: int
    n_oom_splits: int = 0


@cache
def load_causal_lm(source: str, *, device: str | None = None, token_budget: int | None = None) -> CausalLM:
    """Load ``source`` (checked by :func:`check_causal_lm`) for scoring; one copy per process and options."""
    check_causal_lm(source)
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    on_gpu = device.startswith("cuda")
    dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if on_gpu else torch.float32
    tokenizer = load_tokenizer(source, option="--fluency-model")
    model = load_model("AutoModelForCausalLM", source, option="--fluency-model", dtype=dtype)
    model = model.to(device).eval()
    vocabulary = int(model.get_output_embeddings().weight.shape[0])
    kind = "cuda" if on_gpu else "cpu"
    logits_cap = max(LOGITS_BYTES[kind] // (vocabulary * 4), MAX_TOKENS)
    budget = min(token_budget or DEFAULT_TOKEN_BUDGET[kind], logits_cap)  # an item longer than the budget runs alone
    positions = getattr(model.config, "max_position_embeddings", None) or MAX_TOKENS
    return CausalLM(source, tokenizer, model, model.get_input_embeddings().weight.device, int(budget),
                    int(min(MAX_TOKENS, positions)))


def encode(lm: CausalLM, prompts: Sequence[str], responses: Sequence[str]) -> list[tuple[list[int], int]]:
    """Per row: (token ids of context + response, index of the first response token).

    The first response token is at index >= 1, so it always has a context to be predicted
    from: with an empty context the tokenizer's BOS (else EOS, GPT-2's start-of-text) is used.
    """
    tokenizer = lm.tokenizer
    start_token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    rows = []
    for prompt, response in zip(prompts, responses, strict=True):
        context = _context_ids(tokenizer, prompt)[-MAX_PROMPT_TOKENS:]
        if not context and start_token is not None:
            context = [start_token]
        # A response is data: a literal "<|im_end|>" in it is text, not the end-of-turn token.
        answer = tokenizer(response, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        if not context:  # no start token at all: the first response token becomes the context
            context, answer = answer[:1], answer[1:]
        rows.append((context + answer[: max(lm.max_tokens - len(context), 0)], len(context)))
    return rows


def _context_ids(tokenizer: Any, prompt: str) -> list[int]:
    if tokenizer.chat_template:
        # Rendered to text, then tokenized without special tokens: the template writes its own BOS.
        text = apply_template(tokenizer, [{"role": "user", "content": prompt}], add_generation_prompt=True,
                              name=f"--fluency-model {tokenizer.name_or_path}: the chat template")
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt + "\n\n" if prompt else "", add_special_tokens=True)["input_ids"]


def token_surprisals(lm: CausalLM, prompts: Sequence[str], responses: Sequence[str]) -> list[np.ndarray | None]:
    """Surprisal (nats) of each response token given the prompt and the tokens before it.

    Returns one float64 array per response (empty when the response has no tokens), or None
    for a row that ran out of GPU memory on its own.
    """
    rows = encode(lm, prompts, responses)
    out: list[np.ndarray | None] = [np.zeros(0) for _ in rows]
    pending = plan_batches(lm, rows)
    while pending:
        batch = pending.pop(0)
        scored = _attempt(lm, [rows[k] for k in batch])
        if scored is not None:
            for k, values in zip(batch, scored, strict=True):
                out[k] = values
            continue
        _release(lm)
        if len(batch) == 1:
            log.warning("fluency: out of memory on one response of %d tokens; it gets no score", len(rows[batch[0]][0]))
            out[batch[0]] = None
            continue
        # Retried after the handler has returned, so the failed attempt's tensors are freed first.
        lm.n_oom_splits += 1
        half = len(batch) // 2
        pending[:0] = [batch[:half], batch[half:]]
    return out


def plan_batches(lm: CausalLM, rows: list[tuple[list[int], int]]) -> list[list[int]]:
    """Row indices per forward pass: rows with response tokens, longest first, ``rows × longest ≤ token_budget``."""
    from judgekit.judges.transformers_judge import pack_by_budget

    scorable = [k for k, (ids, start) in enumerate(rows) if len(ids) > start]
    lengths = np.array([len(rows[k][0]) for k in scorable])
    batches = pack_by_budget(lengths, budget=lm.token_budget, max_items=max(len(scorable), 1))
    return [[scorable[i] for i in batch.tolist()] for batch in batches]


def _attempt(lm: CausalLM, rows: list[tuple[list[int], int]]) -> list[np.ndarray] | None:
    import torch

    try:
        return _forward(lm, rows)
    except torch.OutOfMemoryError:
        return None


def _release(lm: CausalLM) -> None:
    if lm.device.type == "cuda":
        import torch

        torch.cuda.empty_cache()


def _forward(lm: CausalLM, rows: list[tuple[list[int], int]]) -> list[np.ndarray]:
    """One padded forward pass; right padding, so real tokens see exactly what they see unbatched."""
    import torch

    pad = next((t for t in (lm.tokenizer.pad_token_id, lm.tokenizer.eos_token_id) if t is not None), 0)
    longest = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for b, (ids, _) in enumerate(rows):
        input_ids[b, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[b, : len(ids)] = 1
    input_ids = input_ids.to(lm.device)
    attention = None if bool(mask.all()) else mask.to(lm.device)  # unpadded: the model's faster unmasked path
    with torch.inference_mode():
        logits = lm.model(input_ids=input_ids, attention_mask=attention, use_cache=False).logits
        out = []
        for b, (ids, start) in enumerate(rows):
            # the logits at position j predict token j + 1
            predicted = logits[b, start - 1 : len(ids) - 1].float()
            out.append(torch.nn.functional.cross_entropy(predicted, input_ids[b, start : len(ids)], reduction="none")
                       .double().cpu().numpy())
    return out


def window_surprisal(surprisal: np.ndarray, *, window: int = WINDOW_TOKENS, min_tokens: int = MIN_TOKENS) -> float:
    """Mean surprisal (nats/token) of the worst run of ``window`` consecutive tokens.

    Responses shorter than ``window`` are one window; fewer than ``min_tokens`` tokens give NaN.

    Examples
    --------
    >>> window_surprisal(np.array([1.0] * 40 + [5.0] * 4), window=4)
    5.0
    >>> window_surprisal(np.array([2.0] * 10), window=32)
    2.0
    """
    if window < 1 or min_tokens < 1:
        raise ValueError(f"window and min_tokens must be positive, got {window} and {min_tokens}")
    n = len(surprisal)
    if n < min_tokens:
        return float("nan")
    width = min(window, n)
    sums = np.concatenate([[0.0], np.cumsum(surprisal)])
    return float(np.max(sums[width:] - sums[:-width]) / width)


def worst_windows(lm: CausalLM, prompts: Sequence[str], responses: Sequence[str], *, window: int = WINDOW_TOKENS) -> np.ndarray:
    """:func:`window_surprisal` of every response given its prompt; NaN: too short, or out of memory alone."""
    return np.array([np.nan if s is None else window_surprisal(s, window=window)
                     for s in token_surprisals(lm, prompts, responses)], dtype=float)
