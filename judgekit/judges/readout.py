"""From label-token log-probabilities to P(unsafe), coverage and a verdict.

Shared by the in-process transformers engine and the HTTP backend, so both
turn the same log-probabilities into the same numbers. Torch-free.

Two readouts:

``label_tokens``
    ``p_unsafe = Σ p(unsafe variants) / (Σ p(unsafe) + Σ p(safe))`` with every
    token variant of a label summed; ``coverage = Σ p(unsafe) + Σ p(safe)``.
``score_tokens``
    a graded judge (StrongREJECT fine-tuned): the probabilities of the score
    tokens renormalised, and ``p_unsafe`` = their expected value on the
    declared ``values`` (in [0, 1]); coverage is the score tokens' total mass.

References
----------
.. [1] Inan et al. (2023). Llama Guard: LLM-based Input-Output Safeguard for
   Human-AI Conversations. arXiv:2312.06674 (first-token probability as score).
.. [2] Souly et al. (2024). A StrongREJECT for Empty Jailbreaks. arXiv:2402.10260.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from judgekit.errors import InputError

READOUT_KINDS = ("label_tokens", "score_tokens", "max_sigmoid", "generate")
DEFAULT_THRESHOLD = 0.5
DEFAULT_MIN_COVERAGE = 0.9


@dataclass(frozen=True)
class TokenReadout:
    """Resolved label tokens: ``ids`` are the columns of the log-probability matrix."""

    kind: str
    ids: tuple[int, ...]
    unsafe_cols: tuple[int, ...] = ()
    safe_cols: tuple[int, ...] = ()
    values: tuple[float, ...] = ()
    threshold: float = DEFAULT_THRESHOLD
    min_coverage: float = DEFAULT_MIN_COVERAGE
    tokens: tuple[str, ...] = ()

    def p_unsafe(self, logprobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(p_unsafe, coverage)`` per row of ``logprobs`` (shape ``[n, len(ids)]``; ``-inf`` = absent)."""
        logprobs = np.asarray(logprobs, dtype=np.float64)
        if self.kind == "label_tokens":
            unsafe = _logsumexp(logprobs[:, list(self.unsafe_cols)])
            safe = _logsumexp(logprobs[:, list(self.safe_cols)])
            total = np.logaddexp(unsafe, safe)
            with np.errstate(invalid="ignore"):
                p = np.exp(unsafe - total)
            return p, np.exp(total)
        total = _logsumexp(logprobs)
        with np.errstate(invalid="ignore"):
            weights = np.exp(logprobs - total[:, None])
        return weights @ np.asarray(self.values), np.exp(total)

    def label(self, p_unsafe: float) -> str:
        return "unsafe" if p_unsafe >= self.threshold else "safe"

    def label_texts(self, decode: Callable[[list[int]], str]) -> dict[str, str]:
        """``decoded label token (stripped) -> unsafe/safe``, to read a verdict from generated text."""
        return {decode([i]).strip(): ("unsafe" if c in self.unsafe_cols else "safe") for c, i in enumerate(self.ids)}


def _logsumexp(values: np.ndarray) -> np.ndarray:
    peak = np.max(values, axis=1)
    safe_peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):
        return safe_peak + np.log(np.sum(np.exp(values - safe_peak[:, None]), axis=1))


def resolve_token_readout(spec: dict[str, Any], token_id: Callable[[str], int | None]) -> TokenReadout:
    """Look up the spec's label tokens in a vocabulary (``token_id`` returns None when absent).

    Variants absent from this vocabulary are skipped (a preset lists the variants
    of several tokenizer families); a label with none present is an error.
    """
    judge_id = spec["judge_id"]
    readout = spec.get("readout") or {}
    kind = readout.get("kind")
    threshold = float(readout.get("threshold", DEFAULT_THRESHOLD))
    min_coverage = float(readout.get("min_coverage", DEFAULT_MIN_COVERAGE))
    if kind == "label_tokens":
        groups = {}
        for name in ("unsafe", "safe"):
            tokens = readout.get(name)
            if not isinstance(tokens, list) or not tokens:
                raise InputError(f"{judge_id}: readout.{name} must be a non-empty list of tokens")
            found = [(t, token_id(t)) for t in tokens]
            found = [(t, i) for t, i in found if i is not None]
            if not found:
                raise InputError(f"{judge_id}: none of the {name} label tokens {tokens} is in the tokenizer's vocabulary")
            groups[name] = found
        ids, tokens = _unique(groups["unsafe"] + groups["safe"])
        if set(i for _, i in groups["unsafe"]) & set(i for _, i in groups["safe"]):
            raise InputError(f"{judge_id}: a token id is listed as both unsafe and safe")
        return TokenReadout(
            kind=kind,
            ids=ids,
            unsafe_cols=tuple(ids.index(i) for _, i in groups["unsafe"]),
            safe_cols=tuple(ids.index(i) for _, i in groups["safe"]),
            threshold=threshold,
            min_coverage=min_coverage,
            tokens=tokens,
        )
    if kind == "score_tokens":
        tokens = readout.get("tokens")
        values = readout.get("values")
        if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values) or len(tokens) < 2:
            raise InputError(f"{judge_id}: readout.tokens and readout.values must be lists of equal length (≥ 2)")
        if not all(0.0 <= float(v) <= 1.0 for v in values):
            raise InputError(f"{judge_id}: readout.values must lie in [0, 1]")
        ids = []
        for token in tokens:
            found = token_id(token)
            if found is None:
                raise InputError(f"{judge_id}: score token {token!r} is not in the tokenizer's vocabulary")
            ids.append(found)
        if len(set(ids)) != len(ids):
            raise InputError(f"{judge_id}: two score tokens share a token id")
        return TokenReadout(
            kind=kind, ids=tuple(ids), values=tuple(float(v) for v in values), threshold=threshold,
            min_coverage=min_coverage, tokens=tuple(tokens),
        )
    raise InputError(f"{judge_id}: readout.kind {kind!r} reads no label tokens")


def _unique(pairs: list[tuple[str, int]]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    ids: list[int] = []
    tokens: list[str] = []
    for token, token_id in pairs:
        if token_id not in ids:
            ids.append(token_id)
            tokens.append(token)
    return tuple(ids), tuple(tokens)


def verdict_detail(clipped: int, *notes: str) -> str:
    """The ``detail`` of a successful verdict: how much of the response was clipped, and any notes."""
    return "; ".join(d for d in (f"response clipped by {clipped} tokens" if clipped else "", *notes) if d)


def vocab_lookup(tokenizer: Any) -> Callable[[str], int | None]:
    """``token string -> id`` over a Hugging Face tokenizer's vocabulary (None when absent)."""
    vocab = tokenizer.get_vocab()
    return vocab.get
