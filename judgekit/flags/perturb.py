"""Seeded corruptions of a response: the shapes of an incoherent answer, each at three severities.

The same functions make the corrupted copies of the detector validation
(``analyses/incoherence_validation.py``) and the perturbed copies of ``judgekit stress``.
Every function is pure given its ``rng``: the same text, severity and generator state give
the same output.

================  ==============================================================================
loop              the last 25/50/75% of the words replaced by a repeated 3-12 word unit of the text
salad             25/50/100% of the words replaced by random tokens: half whole words of the
                  vocabulary, half sub-word pieces, 10% code-like symbol tokens
word_salad        a coherent opening, then real words in random order: the last 25/50/90% of the
                  words replaced by draws from the vocabulary (half by corpus frequency, half
                  uniformly over distinct words), so every word is a real word
shuffle           words shuffled within 25%/50% of the sentences / across the whole text
truncate          cut inside a word at 90/60/30% of the characters
script_noise      1/3/8% of characters inserted from other scripts, replacement and control chars
language_switch   the last 25/50/100% replaced by distinct sentences in six other languages
================  ==============================================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

SEVERITIES = ("mild", "moderate", "severe")
FOREIGN = (
    "Primero hay que preparar todo con cuidado y después seguir los pasos uno por uno hasta terminar el trabajo.",
    "Zuerst muss man alles sorgfältig vorbereiten und danach die Schritte der Reihe nach befolgen.",
    "Il faut d'abord tout préparer soigneusement, puis suivre les étapes une par une jusqu'à la fin.",
    "Сначала нужно всё тщательно подготовить, а затем выполнять шаги один за другим до конца работы.",
    "首先需要仔细准备所有东西，然后按照步骤一步一步地完成整个工作，最后检查结果是否正确。",
    "Prima bisogna preparare tutto con cura e poi seguire i passaggi uno alla volta fino alla fine.",
)
SYMBOL_TOKENS = ("}[", "\\(", "/**", "_{", "=\"", ");", "]]>", "::", "\u0120the", "<|", "|>", "${", "%%")
NOISE_POOL = tuple("ЖЯБЩЮΩΨΣλπدشعקשडकษ") + ("\ufffd", "\x07", "\x1b", "\ue001", "\u200b")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Vocabulary:
    """Real words to draw from: the alphabetic tokens of a corpus, as a stream (by frequency) and as distinct words."""

    def __init__(self, texts: Sequence[str]) -> None:
        stream = [w for text in texts for w in str(text).split() if w.isalpha()]
        if not stream:
            raise ValueError("the vocabulary needs at least one alphabetic word")
        self.stream = np.array(stream, dtype=object)
        self.distinct = np.array(sorted(set(stream)), dtype=object)

    def by_frequency(self, rng: np.random.Generator) -> str:
        return self.stream[int(rng.integers(0, len(self.stream)))]

    def uniform(self, rng: np.random.Generator) -> str:
        return self.distinct[int(rng.integers(0, len(self.distinct)))]


def _share(severity: str, shares: tuple[float, float, float]) -> float:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    return dict(zip(SEVERITIES, shares, strict=True))[severity]


def loop(text: str, severity: str, rng: np.random.Generator, vocabulary: Vocabulary | None = None) -> str:
    words = text.split()
    share = _share(severity, (0.25, 0.5, 0.75))
    onset = max(3, int(len(words) * (1 - share)))  # the loop starts later for milder corruption
    size = int(rng.integers(3, 13))
    start = int(rng.integers(0, max(1, onset - size)))
    unit = words[start : start + size]
    looped = (unit * (len(words) // max(len(unit), 1) + 2))[: len(words) - onset]
    return " ".join(words[:onset] + looped)


def shuffle(text: str, severity: str, rng: np.random.Generator, vocabulary: Vocabulary | None = None) -> str:
    if _share(severity, (0.25, 0.5, 1.0)) == 1.0:
        return " ".join(rng.permutation(text.split()).tolist())
    sentences = _SENTENCE_END.split(text)
    chosen = rng.random(len(sentences)) < _share(severity, (0.25, 0.5, 1.0))
    if not chosen.any():
        chosen[int(rng.integers(0, len(sentences)))] = True
    return " ".join(" ".join(rng.permutation(s.split()).tolist()) if c else s for s, c in zip(sentences, chosen, strict=True))


def salad(text: str, severity: str, rng: np.random.Generator, vocabulary: Vocabulary) -> str:
    words = text.split()
    share = _share(severity, (0.25, 0.5, 1.0))
    out = list(words)
    for k in np.flatnonzero(rng.random(len(words)) < share).tolist():
        token = vocabulary.uniform(rng)
        draw = rng.random()
        if draw < 0.5 and len(token) > 4:  # a sub-word piece, as a BPE/WordPiece vocabulary holds about as many as words
            cut = int(rng.integers(1, len(token) - 2))
            token = ("##" if rng.random() < 0.3 else "") + token[cut : cut + int(rng.integers(2, 6))]
        elif draw < 0.6:
            token = SYMBOL_TOKENS[int(rng.integers(0, len(SYMBOL_TOKENS)))]
        out[k] = token
    return " ".join(out)


def word_salad(text: str, severity: str, rng: np.random.Generator, vocabulary: Vocabulary) -> str:
    words = text.split()
    onset = max(1, round(len(words) * (1 - _share(severity, (0.25, 0.5, 0.9)))))
    tail = [vocabulary.by_frequency(rng) if rng.random() < 0.5 else vocabulary.uniform(rng) for _ in range(len(words) - onset)]
    return " ".join(words[:onset] + tail)


def truncate(text: str, severity: str, rng: np.random.Generator, vocabulary: Vocabulary | None = None) -> str:
    cut = int(len(text) * _share(severity, (0.9, 0.6, 0.3)))
    while cut < len(text) - 1 and not text[cut].isalpha():  # stop inside a word, as a token limit does
        cut += 1
    return text[: cut + 1]


def language_switch(text: str, severity: str, rng: np.random.Generator, vocabulary: Vocabulary | None = None) -> str:
    share = _share(severity, (0.25, 0.5, 1.0))
    keep = text[: int(len(text) * (1 - share))]
    count = min(len(FOREIGN), max(1, int(len(text) * share / 90)))
    foreign = " ".join(FOREIGN[int(i)] for i in rng.permutation(len(FOREIGN))[:count])  # distinct sentences: no artificial loop
    return (keep + " " + foreign).strip()


def script_noise(text: str, severity: str, rng: np.random.Generator, vocabulary: Vocabulary | None = None) -> str:
    rate = _share(severity, (0.01, 0.03, 0.08))
    chars = list(text)
    for k in sorted(np.flatnonzero(rng.random(len(chars)) < rate).tolist(), reverse=True):
        chars.insert(k, NOISE_POOL[int(rng.integers(0, len(NOISE_POOL)))])
    return "".join(chars)


PERTURBATIONS: dict[str, Callable[[str, str, np.random.Generator, Vocabulary | None], str]] = {
    "loop": loop,
    "salad": salad,
    "word_salad": word_salad,
    "shuffle": shuffle,
    "truncate": truncate,
    "script_noise": script_noise,
    "language_switch": language_switch,
}


def perturb(text: str, kind: str, severity: str, rng: np.random.Generator, *, vocabulary: Vocabulary | None = None) -> str:
    """``text`` corrupted by ``kind`` at ``severity`` (see the module table); ``salad``/``word_salad`` need a vocabulary."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(PERTURBATIONS)}")
    if kind in ("salad", "word_salad") and vocabulary is None:
        raise ValueError(f"perturbation {kind!r} needs a vocabulary")
    return PERTURBATIONS[kind](str(text), severity, rng, vocabulary)
