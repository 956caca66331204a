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
    resolution: tuple[str, ...] = ()

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


def resolve_token_readout(spec: dict[str, Any], pieces: Callable[[str], list[int]]) -> TokenReadout:
    """Look up the spec's label tokens in a vocabulary.

    ``pieces(token)`` gives the vocabulary ids that spell ``token``: one id for a
    single token, several for a string the vocabulary splits, none when the
    string cannot be written in it (a variant of another tokenizer family, such as
    ``ĠYes`` in a SentencePiece vocabulary); see :func:`vocab_lookup`.

    Variants of one label (``Yes``, ``▁Yes``, ``yes``: the same word up to case and
    a leading space marker) are summed. A label with no single-token variant is
    read by the first sub-token of its variants (Qwen3Guard's ``" Controversial"``
    is ``' Cont' 'rovers' 'ial'``); that sub-token must belong to no other label,
    else the judge refuses to run, naming the label. So does a label that resolves
    to no token id. :attr:`TokenReadout.resolution` says how each label was read.
    """
    judge_id = spec["judge_id"]
    readout = spec.get("readout") or {}
    kind = readout.get("kind")
    threshold = float(readout.get("threshold", DEFAULT_THRESHOLD))
    min_coverage = float(readout.get("min_coverage", DEFAULT_MIN_COVERAGE))
    if kind == "label_tokens":
        labels = _label_groups(judge_id, readout)
        resolved = [_resolve_label(judge_id, label, pieces) for label in labels]
        _check_unambiguous(judge_id, resolved)
        pairs = {side: [pair for r in resolved if r.side == side for pair in r.pairs] for side in ("unsafe", "safe")}
        ids, tokens = _unique(pairs["unsafe"] + pairs["safe"])
        return TokenReadout(
            kind=kind,
            ids=ids,
            unsafe_cols=tuple(dict.fromkeys(ids.index(i) for _, i in pairs["unsafe"])),
            safe_cols=tuple(dict.fromkeys(ids.index(i) for _, i in pairs["safe"])),
            threshold=threshold,
            min_coverage=min_coverage,
            tokens=tokens,
            resolution=tuple(r.note for r in resolved),
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
            found = pieces(token)
            if len(found) != 1:
                raise InputError(f"{judge_id}: score token {token!r} is not a single token of the tokenizer's vocabulary")
            ids.append(found[0])
        if len(set(ids)) != len(ids):
            raise InputError(f"{judge_id}: two score tokens share a token id")
        return TokenReadout(
            kind=kind, ids=tuple(ids), values=tuple(float(v) for v in values), threshold=threshold,
            min_coverage=min_coverage, tokens=tuple(tokens),
        )
    raise InputError(f"{judge_id}: readout.kind {kind!r} reads no label tokens")


SPACE_MARKERS = ("Ġ", "▁", " ")


@dataclass(frozen=True)
class _Label:
    side: str
    word: str
    variants: tuple[str, ...]


@dataclass(frozen=True)
class _ResolvedLabel:
    side: str
    word: str
    pairs: tuple[tuple[str, int], ...]
    by_first_subtoken: bool
    note: str


def label_word(token: str) -> str:
    """The label a token variant spells: without a leading space marker, case-folded."""
    for marker in SPACE_MARKERS:
        if token.startswith(marker):
            token = token[len(marker):]
            break
    return token.casefold()


def _label_groups(judge_id: str, readout: dict[str, Any]) -> list[_Label]:
    groups: dict[str, _Label] = {}
    for side in ("unsafe", "safe"):
        tokens = readout.get(side)
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t for t in tokens):
            raise InputError(f"{judge_id}: readout.{side} must be a non-empty list of tokens")
        for token in tokens:
            word = label_word(token)
            known = groups.get(word)
            if known is not None and known.side != side:
                raise InputError(f"{judge_id}: the label {word!r} is listed as both unsafe and safe")
            groups[word] = _Label(side, word, (known.variants if known else ()) + (token,))
    return list(groups.values())


def _resolve_label(judge_id: str, label: _Label, pieces: Callable[[str], list[int]]) -> _ResolvedLabel:
    spelled = [(variant, pieces(variant)) for variant in label.variants]
    single = tuple((v, ids[0]) for v, ids in spelled if len(ids) == 1)
    split = [(v, ids) for v, ids in spelled if len(ids) > 1]
    absent = [v for v, ids in spelled if not ids]
    if single:
        pairs, first = single, False
        note = f"{label.side} {label.word!r}: " + ", ".join(f"{v!r}={i}" for v, i in single)
        if split:
            note += "; not read (several tokens, the label has a single-token form): " + ", ".join(repr(v) for v, _ in split)
    elif split:
        pairs, first = tuple((v, ids[0]) for v, ids in split), True
        note = f"{label.side} {label.word!r}: read by its first sub-token: " + ", ".join(
            f"{v!r}={ids[0]} (of {len(ids)} tokens {ids})" for v, ids in split
        )
    else:
        raise InputError(
            f"{judge_id}: the {label.side} label {label.word!r} ({', '.join(map(repr, label.variants))}) "
            "resolves to no token of the tokenizer's vocabulary"
        )
    if absent:
        note += "; not in this vocabulary: " + ", ".join(map(repr, absent))
    return _ResolvedLabel(label.side, label.word, pairs, first, note)


def _check_unambiguous(judge_id: str, resolved: list[_ResolvedLabel]) -> None:
    """A token id may stand for one label only when a sub-token is involved, and never for both sides."""
    for k, one in enumerate(resolved):
        for other in resolved[k + 1 :]:
            shared = {i for _, i in one.pairs} & {i for _, i in other.pairs}
            if not shared:
                continue
            if one.by_first_subtoken or other.by_first_subtoken or one.side != other.side:
                named, partner = (other, one) if other.by_first_subtoken and not one.by_first_subtoken else (one, other)
                raise InputError(
                    f"{judge_id}: the label {named.word!r} is ambiguous: token id {min(shared)} also reads the "
                    f"label {partner.word!r}"
                )


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


def vocab_lookup(tokenizer: Any) -> Callable[[str], list[int]]:
    """``token string -> ids that spell it`` over a Hugging Face tokenizer's vocabulary.

    A string in the vocabulary is its own id. Otherwise the tokenizer's own
    subword model splits it (fast tokenizers); the split counts only when its
    pieces, all in the vocabulary, join back to exactly the string, so a variant
    written for another tokenizer family (``▁Yes`` in a byte-level vocabulary,
    which would lose its ``▁`` or fall back to bytes) gives no ids.
    """
    vocab = tokenizer.get_vocab()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = getattr(backend, "model", None)

    def pieces(token: str) -> list[int]:
        if token in vocab:
            return [vocab[token]]
        if model is None:
            return []
        parts = [piece.value for piece in model.tokenize(token)]
        if "".join(parts) != token or not all(part in vocab for part in parts):
            return []
        return [vocab[part] for part in parts]

    return pieces
