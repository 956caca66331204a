"""Incoherence detectors: each returns a score, a flag and a reason per response.

Thresholds are module-level constants, documented beside each detector, and
overridable through :func:`detect`'s ``thresholds`` argument. The combined
``incoherent`` flag fires when any detector fires.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from judgekit.errors import InputError

_WORD = re.compile(r"\w+", re.UNICODE)
_VOWELS = set("aeiouyAEIOUYàáâäèéêëìíîïòóôöùúûüÿ")


@dataclass(frozen=True)
class Finding:
    flagged: bool
    score: float | None
    reason: str


DEFAULT_THRESHOLDS: dict[str, float] = {
    # repetition: share of word 4-grams that repeat an earlier 4-gram (texts of >= 12 words)
    "repeated_ngram_share": 0.5,
    # repetition: zlib-compressed size / raw size (texts of >= 200 bytes); natural prose sits near 0.5-0.6
    "compression_ratio": 0.25,
    # gibberish: share of non-space characters that are letters, digits or common punctuation
    "min_wordlike_char_share": 0.75,
    # gibberish: share of alphabetic words of >= 4 Latin letters with no vowel
    "max_vowelless_word_share": 0.25,
    # gibberish: share of letters outside the dominant script
    "max_minority_script_share": 0.2,
}


def _empty(text: str, t: dict[str, float]) -> Finding:
    stripped = text.strip()
    if not stripped:
        return Finding(True, 1.0, "empty or whitespace-only response")
    if not any(ch.isalnum() for ch in stripped):
        return Finding(True, 1.0, "punctuation-only response")
    return Finding(False, 0.0, "")


def _repetition(text: str, t: dict[str, float]) -> Finding:
    words = text.split()
    share = 0.0
    if len(words) >= 12:
        grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
        share = 1.0 - len(set(grams)) / len(grams)
    raw = text.encode("utf-8")
    ratio = len(zlib.compress(raw, 6)) / len(raw) if len(raw) >= 200 else 1.0
    if share > t["repeated_ngram_share"]:
        return Finding(True, share, f"{share:.0%} of word 4-grams repeat earlier ones")
    if ratio < t["compression_ratio"]:
        return Finding(True, share, f"text compresses to {ratio:.0%} of its size (repetitive)")
    return Finding(False, share, "")


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def _gibberish(text: str, t: dict[str, float]) -> Finding:
    chars = [ch for ch in text if not ch.isspace()]
    if len(chars) < 20:
        return Finding(False, 0.0, "")
    wordlike = sum(ch.isalnum() or ch in ".,;:!?'\"()-–—/%$&*#@[]{}<>=+_`~|\\" for ch in chars) / len(chars)
    words = [w for w in _WORD.findall(text) if w.isalpha() and w.isascii() and len(w) >= 4]
    vowelless = sum(not (set(w) & _VOWELS) for w in words) / len(words) if words else 0.0
    letters = [ch for ch in chars if ch.isalpha()]
    scripts = pd.Series([_script(ch) for ch in letters]).value_counts() if letters else pd.Series(dtype=int)
    minority = 1.0 - scripts.iloc[0] / len(letters) if len(scripts) else 0.0
    score = max(1.0 - wordlike, vowelless, minority)
    if wordlike < t["min_wordlike_char_share"]:
        return Finding(True, score, f"only {wordlike:.0%} of characters are letters, digits or punctuation")
    if vowelless > t["max_vowelless_word_share"]:
        return Finding(True, score, f"{vowelless:.0%} of words have no vowel (token salad)")
    if minority > t["max_minority_script_share"]:
        return Finding(True, score, f"{minority:.0%} of letters are outside the main script ({scripts.index[0].lower()})")
    return Finding(False, score, "")


Detector = Callable[[str, dict[str, float]], Finding]
EMPTY: Detector = _empty
REPETITION: Detector = _repetition
GIBBERISH: Detector = _gibberish
BASE_DETECTORS: dict[str, Detector] = {"empty": EMPTY, "repetition": REPETITION, "gibberish": GIBBERISH}
INCOHERENT = "combined: any of " + ", ".join(BASE_DETECTORS)


def detect(responses: pd.DataFrame, *, thresholds: dict[str, float] | None = None) -> pd.DataFrame:
    """Run every detector on ``responses`` and return the long ``flags`` table."""
    settings = dict(DEFAULT_THRESHOLDS)
    unknown = sorted(set(thresholds or {}) - set(settings))
    if unknown:
        raise InputError(f"unknown thresholds {unknown}; known: {sorted(settings)}")
    settings.update(thresholds or {})
    rows = []
    for item_id, text in zip(responses["item_id"], responses["response"], strict=True):
        findings = {name: detector(text, settings) for name, detector in BASE_DETECTORS.items()}
        for name, finding in findings.items():
            rows.append((item_id, name, finding.flagged, finding.score, finding.reason))
        fired = [name for name, f in findings.items() if f.flagged]
        rows.append((item_id, "incoherent", bool(fired), float(len(fired)), "; ".join(f"{n}: {findings[n].reason}" for n in fired)))
    return pd.DataFrame(rows, columns=["item_id", "detector", "flagged", "score", "reason"])
