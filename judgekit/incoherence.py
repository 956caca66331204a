"""Incoherence detectors: a score, a flag and a human-readable reason per response.

Heuristic detectors (CPU, no model, vectorised through compiled regular
expressions and set operations; see ``benchmarks/incoherence.py``):

==============  ===============================================================
empty           empty, whitespace-only or punctuation-only
repetition      degenerate loops: share of repeated word 4-grams, a loop at the
                end of the text (any onset), distinct bigrams, zlib ratio
gibberish       token salad: characters that are not letters/digits/punctuation,
                vowel-less or letter-digit-mixed "words", symbol-laden tokens
script_noise    letters of different scripts inside one token, replacement and
                control characters (byte noise)
word_order      shuffled or salad English text: determiners followed by function
                words, sentence capitals and full stops in the wrong places
truncation      ends mid-sentence — only when the response sits at a length limit
                (``finish_reason == "length"`` in the responses table, or
                ``length_limit_words`` set)
==============  ===============================================================

Model-based detectors (run when asked, see :func:`detect`):
``language_mismatch`` (py3langid, bundled model, no pickle), ``off_topic``
(cosine similarity of prompt and response under any sentence-embedding model
directory) and ``fluency`` (per-token perplexity under any local causal LM).

The combined ``incoherent`` flag fires when any of ``COMBINED_DEFAULT`` fires
(the detectors for kinds that destroy coherence); truncation, language
mismatch, off-topic and fluency are reported separately because a response can
be truncated, in another language or off topic and still be fluent text. Pass
``combine=`` to change the rule, or fit a logistic model on labelled items
with :func:`fit_combined`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from judgekit.errors import InputError

HEURISTIC_DETECTORS = ("empty", "repetition", "gibberish", "script_noise", "word_order", "truncation")
MODEL_DETECTORS = ("language_mismatch", "off_topic", "fluency")
COMBINED_DEFAULT = ("empty", "repetition", "gibberish", "script_noise", "word_order")
MAX_CHARS = 20_000  # longer responses are judged on their first 20,000 characters (a 1 MB response must not stall a run)

DEFAULT_THRESHOLDS: dict[str, float] = {
    # repetition: flag when any holds
    "repeated_ngram_share": 0.45,     # share of word 4-grams that repeat an earlier one (texts of >= 12 words)
    "tail_loop_share": 0.30,          # share of words in a loop of >= 3 repeats of a 1-40 word unit at the end
    "compression_ratio": 0.22,        # zlib size / raw size (texts of >= 200 bytes); prose sits near 0.45-0.6
    # gibberish: flag when the salad score exceeds
    "salad_score": 0.30,              # share of tokens that are vowel-less, letter-digit mixed or symbol-laden
    "non_word_share": 0.08,           # share of words outside the 100,000 commonest English words (wordfreq)
    # salad index = non-word share / 0.05 + word-order anomaly rate / 0.03 + code-symbol token share / 0.03,
    # each term 1 at about the 99.5th percentile of real responses; flag when the sum exceeds this
    "salad_index": 1.6,
    "min_wordlike_char_share": 0.80,  # share of non-space characters that are letters, digits or common punctuation
    # script noise: per 100 letters
    "script_switches_per_100": 1.5,   # switches between scripts inside a token (CJK-Latin boundaries excluded)
    "noise_chars_per_100": 0.5,       # U+FFFD, control and private-use characters
    # word order: anomalies per word (Latin-script texts of >= 12 words)
    "word_order_anomalies": 0.032,
    "min_function_word_share": 0.10,  # English prose is ~40% function words; a salad of sampled vocabulary ~1%
    # truncation: only at a length limit; 0 means "use finish_reason only"
    "length_limit_words": 0,
    # language mismatch: both texts need this many letters and this confidence
    "language_min_letters": 40,      # letters a response segment needs to be identified
    "language_prompt_min_letters": 15,
    "language_confidence": 0.90,     # on the response segment; the prompt needs 0.5
    # off-topic: cosine similarity below this
    "min_prompt_similarity": 0.10,
    # fluency: perplexity above this
    "max_perplexity": 1000.0,
}


@dataclass(frozen=True)
class Finding:
    flagged: bool
    score: float | None
    reason: str


# ---------------------------------------------------------------- shared tokenisation

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_NOISE = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff]")
_NOT_WORDLIKE = re.compile(r"[^\w\s.,;:!?'\"()\[\]{}\-–—/%$&*#@<>=+`~|\\^…’“”«»‘¿¡·•]")
_VOWELLESS = re.compile(r"\b[b-df-hj-np-tv-xz]{3,}\b")
_MIXED_ALNUM = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z\d]{3,}\b")
_SYMBOL_CANDIDATE = re.compile(r"\S*[#@{}\[\]<>|\\~^]\S*")
_HAS_LATIN = re.compile(r"[A-Za-z]")
_SYMBOLS_ONLY_TOKEN = re.compile(r"(?<!\S)[^\w\s]{2,}(?!\S)")
_CODE_SYMBOLS = frozenset("[]{}<>|\\$_=;")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LOWER_WORD = re.compile(r"[a-z]{2,}")
_TERMINAL = re.compile(r"""[.!?…:;)\]}"'`*>\u3002\uff01\uff1f]\s*$""")
_SCRIPTS = {
    "latin": "A-Za-z\u00c0-\u024f",
    "cyrillic": "\u0400-\u04ff",
    "greek": "\u0370-\u03ff",
    "arabic": "\u0600-\u06ff",
    "hebrew": "\u0590-\u05ff",
    "devanagari": "\u0900-\u097f",
    "thai": "\u0e00-\u0e7f",
    "hangul": "\uac00-\ud7af",
}
_SWITCH = re.compile("|".join(
    f"[{a}][{b}]" for name_a, a in _SCRIPTS.items() for name_b, b in _SCRIPTS.items()
    if name_a != name_b and "hangul" not in (name_a, name_b)
))
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_LETTER = re.compile(r"[^\W\d_]")

DETERMINERS = frozenset("the a an this these those my your his its our their every each".split())
FUNCTION_WORDS = DETERMINERS | frozenset(
    """of to in for on with at by from into onto upon about over under between through during without within
    and or but nor so yet if because although though while whereas than as is are was were be been being am do
    does did have has had will would shall should can could may might must not no""".split()
)
PREPOSITIONS = frozenset("of to in for on with at by from into onto upon about over under between through during".split())
CONJUNCTIONS = frozenset("and or but nor".split())
SENTENCE_STARTERS = frozenset("the this it i a an in for to if when you we they there these however but and".split())
ABBREVIATIONS = frozenset("e.g i.e etc vs mr mrs ms dr st no fig approx cf al inc ltd co jr sr".split())


def _words(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------- heuristic detectors


def _empty(text: str, t: dict[str, float], context: dict[str, Any]) -> Finding:
    stripped = text.strip()
    if not stripped:
        return Finding(True, 1.0, "empty or whitespace-only response")
    if not any(ch.isalnum() for ch in stripped):
        return Finding(True, 1.0, "punctuation-only response")
    return Finding(False, 0.0, "")


def _tail_loop_share(words: list[str]) -> tuple[float, int]:
    """Share of words in a run of >= 3 repeats of a 1-40 word unit that ends the text, and that unit's length."""
    n = len(words)
    best, best_unit = 0.0, 0
    for unit in range(1, min(40, n // 3) + 1):
        tail = words[n - unit:]
        if words[n - 2 * unit : n - unit] != tail or words[n - 3 * unit : n - 2 * unit] != tail:
            continue
        start = n - 3 * unit
        while start - unit >= 0 and words[start - unit : start] == tail:
            start -= unit
        share = (n - start) / n
        if share > best:
            best, best_unit = share, unit
    return best, best_unit


def _word_ids(context: dict[str, Any]) -> np.ndarray:
    """Integer ids of the response's words (see :func:`_token_ids`), computed once per response."""
    if "word_ids" not in context:
        context["word_ids"] = _token_ids(context["words"])
    return context["word_ids"]


def _repetition(text: str, t: dict[str, float], context: dict[str, Any]) -> Finding:
    words = context["words"]
    n = len(words)
    share = 0.0
    if n >= 12:
        ids = _word_ids(context)
        # A 4-gram as one integer (int64 arithmetic wraps; a collision would merge two distinct 4-grams, vanishingly rare).
        grams = ((ids[:-3] * 1_000_003 + ids[1:-2]) * 1_000_003 + ids[2:-1]) * 1_000_003 + ids[3:]
        share = 1.0 - len(np.unique(grams)) / len(grams)
    loop, unit = _tail_loop_share(words) if n >= 9 else (0.0, 0)
    raw = context["raw"]
    ratio = len(zlib.compress(raw, 6)) / len(raw) if len(raw) >= 200 else 1.0
    score = max(share, loop, 1.0 - ratio if len(raw) >= 200 else 0.0)
    if loop >= t["tail_loop_share"]:
        return Finding(True, score, f"the last {loop:.0%} of the words loop over a {unit}-word unit")
    if share > t["repeated_ngram_share"]:
        return Finding(True, score, f"{share:.0%} of word 4-grams repeat earlier ones")
    if ratio < t["compression_ratio"]:
        return Finding(True, score, f"text compresses to {ratio:.0%} of its size (repetitive)")
    return Finding(False, score, "")


def _gibberish(text: str, t: dict[str, float], context: dict[str, Any]) -> Finding:
    prose = context["prose"]
    tokens = context["prose_tokens"]
    chars = len(prose) - prose.count(" ") - prose.count("\n")
    if len(tokens) < 5 or chars < 20:
        return Finding(False, 0.0, "")
    wordlike_share = max(0.0, 1.0 - len(_NOT_WORDLIKE.findall(prose)) / chars)
    table = _token_table(context)
    salad = min(1.0, int(table[:, 3].sum()) / len(tokens))
    non_words = _non_word_share(prose, context)
    order_rate = _word_order_rate(context)[0]
    symbols = int(table[:, 4].sum()) / len(tokens)
    index = non_words / 0.05 + order_rate / 0.03 + symbols / 0.03
    if (index > t["salad_index"] or non_words > t["non_word_share"]) and _confidently_not_english(context):
        # The word list and the word-order rules are English: coherent text in another language is not salad.
        non_words, order_rate, index = 0.0, 0.0, symbols / 0.03
    score = max(salad, 1.0 - wordlike_share, non_words, min(1.0, index / (2 * t["salad_index"])))
    if index > t["salad_index"]:
        return Finding(True, score, f"salad index {index:.1f}: {non_words:.0%} non-words, {order_rate:.1%} word-order "
                                    f"anomalies, {symbols:.0%} code-symbol tokens (token salad)")
    if non_words > t["non_word_share"]:
        return Finding(True, score, f"{non_words:.0%} of words are not among the 100,000 commonest English words (token salad)")
    if wordlike_share < t["min_wordlike_char_share"]:
        return Finding(True, score, f"only {wordlike_share:.0%} of characters are letters, digits or punctuation")
    if salad > t["salad_score"]:
        return Finding(True, score, f"{salad:.0%} of tokens are vowel-less, letter-digit mixed or symbol-laden (token salad)")
    return Finding(False, score, "")


@cache
def english_words() -> frozenset[str]:
    """The 100,000 commonest English words (wordfreq's bundled lists, read with msgpack, no pickle)."""
    import wordfreq

    return frozenset(wordfreq.top_n_list("en", 100_000))


def _non_word_share(prose: str, context: dict[str, Any]) -> float:
    """Share of lower-case words outside the English list; 0 for non-Latin or short texts."""
    if not context["latin"]:
        return 0.0
    table = _token_table(context)
    pieces = int(table[:, 1].sum())
    return int(table[:, 2].sum()) / pieces if pieces >= 10 else 0.0


@cache
def _language_identifier_cached():
    return _language_identifier()


def _confidently_not_english(context: dict[str, Any]) -> bool:
    """Only asked when an English-specific rule would fire, so language ID costs little."""
    if "not_english" not in context:
        share = _word_order_rate(context)[1]
        if share is not None and share >= 0.2:
            context["not_english"] = False  # plenty of English function words: English, no need to ask
        else:
            language, confidence = _language_identifier_cached().classify(context["prose"][:600])
            context["not_english"] = language != "en" and confidence >= 0.9
    return context["not_english"]


def _script_noise(text: str, t: dict[str, float], context: dict[str, Any]) -> Finding:
    letters = max(context["n_letters"], 1)
    switches = 0.0 if text.isascii() else _SWITCH.subn("", text)[1] * 100 / letters
    noise = _NOISE.subn("", text)[1] * 100 / max(len(text), 1) if _NOISE.search(text) else 0.0
    score = max(switches / 10, noise / 5)
    if letters >= 20 and switches > t["script_switches_per_100"]:
        return Finding(True, score, f"{switches:.1f} script switches inside words per 100 letters (mixed-script noise)")
    if noise > t["noise_chars_per_100"]:
        return Finding(True, score, f"{noise:.1f} replacement/control characters per 100 characters (byte noise)")
    return Finding(False, score, "")


# Bits of per-token features, computed once per distinct token and cached: a response's word-order
# and salad features are then a few numpy operations on its token array instead of Python loops.
_DET, _FUNC, _PREP, _JOIN, _ENDS, _LOWER_START, _STARTER_UPPER, _COLON, _ALPHA, _FUNC_ALPHA, _DET_END = (1 << k for k in range(11))
_TOKEN_LIMIT = 2_000_000


class _TokenVocabulary:
    """Process-wide token -> id table with each token's packed features in a parallel array.

    One dictionary lookup per token gives both the id (for n-gram comparison) and, by
    array indexing, the features (for the word-order and salad rules). Ids only need to
    be consistent within one response, so the table is simply reset when it grows large.
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.features = np.zeros(1 << 16, dtype=np.int64)

    def ids(self, tokens: list[str]) -> np.ndarray:
        get = self.index.get
        out = [get(t, -1) for t in tokens]
        if -1 in out:
            if len(self.index) > _TOKEN_LIMIT:
                self.__init__()
                return self.ids(tokens)
            out = [self._add(t) if v == -1 else v for t, v in zip(tokens, out, strict=True)]
        return np.array(out, dtype=np.int64)

    def _add(self, token: str) -> int:
        found = self.index.get(token)
        if found is not None:
            return found
        new = len(self.index)
        if new == len(self.features):
            self.features = np.concatenate([self.features, np.zeros_like(self.features)])
        self.features[new] = _token_features(token)
        self.index[token] = new
        return new


_VOCABULARY = _TokenVocabulary()


def _token_ids(tokens: list[str]) -> np.ndarray:
    return _VOCABULARY.ids(tokens)


def _token_features(token: str) -> int:
    """Packed: feature bits | [a-z]{2,} pieces << 12 | pieces outside the English list << 22 | odd << 32 | code << 42."""
    word = token.strip("\"'()[]*_,;:").lower()
    bits = 0
    if word in DETERMINERS:
        bits |= _DET
    if word in FUNCTION_WORDS or not word:
        bits |= _FUNC
    if word in PREPOSITIONS:
        bits |= _PREP
    if word in PREPOSITIONS or word in CONJUNCTIONS:
        bits |= _JOIN
    if token[-1] in ".!?" and word.rstrip(".!?") not in ABBREVIATIONS and not token[:-1].replace(".", "").isdigit():
        bits |= _ENDS
    if token[0].isalpha() and token[0].islower():
        bits |= _LOWER_START
    if token[0].isupper() and word in SENTENCE_STARTERS and word != "i":
        bits |= _STARTER_UPPER
    if token[-1] == ":":
        bits |= _COLON
    if word.isalpha():
        bits |= _ALPHA
        if word in FUNCTION_WORDS:
            bits |= _FUNC_ALPHA
    if word.rstrip(".!?") in DETERMINERS:
        bits |= _DET_END
    pieces = _LOWER_WORD.findall(token.lower())
    vocabulary = english_words()
    odd = len(_VOWELLESS.findall(token)) + len(_MIXED_ALNUM.findall(token)) + bool(_SYMBOL_CANDIDATE.fullmatch(token) and _HAS_LATIN.search(token))
    code = bool(_SYMBOLS_ONLY_TOKEN.fullmatch(token)) and not _CODE_SYMBOLS.isdisjoint(token)
    nonword = sum(1 for w in pieces if w not in vocabulary)
    return bits | min(len(pieces), 1023) << 12 | min(nonword, 1023) << 22 | min(odd, 1023) << 32 | int(code) << 42


def _token_table(context: dict[str, Any]) -> np.ndarray:
    """Per token: [feature bits, pieces, non-word pieces, odd, code-symbol], shape (n_tokens, 5)."""
    if "token_table" not in context:
        tokens = context["prose_tokens"]
        ids = _word_ids(context) if tokens is context["words"] else _token_ids(tokens)
        packed = _VOCABULARY.features[ids]
        context["token_table"] = np.stack(
            [packed & 0xFFF, (packed >> 12) & 0x3FF, (packed >> 22) & 0x3FF, (packed >> 32) & 0x3FF, (packed >> 42) & 1], axis=1
        )
    return context["token_table"]


def _word_order_rate(context: dict[str, Any]) -> tuple[float, float | None, int]:
    """(anomalies per word, function-word share or None, alphabetic words); zeros for non-Latin or short texts."""
    if "word_order" in context:
        return context["word_order"]
    result: tuple[float, float | None, int] = (0.0, None, 0)
    table = _token_table(context)
    if context["latin"] and len(table) >= 12:
        bits = table[:, 0]
        first, second = bits[:-1], bits[1:]

        def pairs(flag_first: int, flag_second: int) -> int:
            """Adjacent tokens where the first has ``flag_first`` and the next ``flag_second``."""
            return int(np.count_nonzero(((first & flag_first) != 0) & ((second & flag_second) != 0)))

        anomalies = (
            pairs(_DET, _FUNC)  # "the of", "a and"
            + pairs(_ENDS, _LOWER_START)  # ". lowercase"
            + int(np.count_nonzero(((first & (_ENDS | _COLON)) == 0) & ((second & _STARTER_UPPER) != 0)))  # "word The"
            + pairs(_PREP, _JOIN)  # "of in", "to and"
            + int(bits[-1] & _DET_END != 0)
        )
        alphabetic = int(np.count_nonzero(bits & _ALPHA))
        share = np.count_nonzero(bits & _FUNC_ALPHA) / alphabetic if alphabetic else None
        result = (anomalies / len(table), share, alphabetic)
    context["word_order"] = result
    return result


def _word_order(text: str, t: dict[str, float], context: dict[str, Any]) -> Finding:
    rate, function_share, n_alphabetic = _word_order_rate(context)
    if function_share is None:
        return Finding(False, None, "")
    suspicious = rate > t["word_order_anomalies"] or (n_alphabetic >= 20 and function_share < t["min_function_word_share"])
    if suspicious and _confidently_not_english(context):
        return Finding(False, None, "")
    score = max(rate, (t["min_function_word_share"] - function_share) * 2) if n_alphabetic >= 20 else rate
    if rate > t["word_order_anomalies"]:
        return Finding(True, score, f"{rate:.1%} of words break English word order (shuffled or salad text)")
    if n_alphabetic >= 20 and function_share < t["min_function_word_share"]:
        return Finding(True, score, f"only {function_share:.0%} of words are function words (word salad)")
    return Finding(False, score, "")


def _truncation(text: str, t: dict[str, float], context: dict[str, Any]) -> Finding:
    at_limit = context.get("finish_reason") == "length" or (
        t["length_limit_words"] > 0 and len(context["words"]) >= t["length_limit_words"])
    if not text.strip():
        return Finding(False, None, "")
    open_fence = text.count("```") % 2 == 1
    ends_cleanly = bool(_TERMINAL.search(text)) and not open_fence
    if at_limit and not ends_cleanly:
        return Finding(True, 1.0, "stops mid-sentence at the length limit")
    return Finding(False, 0.0 if ends_cleanly else 0.5, "" if ends_cleanly else "ends without final punctuation (not at a length limit)")


HEURISTICS: dict[str, Callable[[str, dict[str, float], dict[str, Any]], Finding]] = {
    "empty": _empty,
    "repetition": _repetition,
    "gibberish": _gibberish,
    "script_noise": _script_noise,
    "word_order": _word_order,
    "truncation": _truncation,
}


_ASCII_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))


def _context(text: str, finish_reason: str | None) -> dict[str, Any]:
    prose = _FENCE.sub(" ", text) if "```" in text else text
    raw = text.encode("utf-8", errors="replace")
    if text.isascii():
        # bytes.translate counts ASCII letters in C, far faster than a Unicode regex over every character
        n_letters = len(raw) - len(raw.translate(None, _ASCII_LETTERS))
        latin = n_letters > 0
    else:
        n_letters = _LETTER.subn("", text)[1]
        latin = n_letters > 0 and _LATIN_LETTER.subn("", prose)[1] >= 0.8 * n_letters
    words = text.split()
    return {"words": words, "prose_tokens": words if prose is text else prose.split(), "raw": raw, "prose": prose,
            "n_letters": n_letters, "latin": latin, "finish_reason": finish_reason}


def heuristic_findings(text: str, *, thresholds: dict[str, float] | None = None,
                       finish_reason: str | None = None) -> dict[str, Finding]:
    """Every heuristic detector on one response."""
    settings = _settings(thresholds)
    text = _clean(text)
    context = _context(text, finish_reason)
    return {name: detector(text, settings, context) for name, detector in HEURISTICS.items()}


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value)[:MAX_CHARS]
    # Lone surrogates (invalid Unicode that slipped through) become U+FFFD, which script_noise counts.
    return text.encode("utf-8", errors="replace").decode("utf-8") if _SURROGATE.search(text) else text


def _settings(thresholds: dict[str, float] | None) -> dict[str, float]:
    settings = dict(DEFAULT_THRESHOLDS)
    unknown = sorted(set(thresholds or {}) - set(settings))
    if unknown:
        raise InputError(f"unknown thresholds {unknown}; known: {sorted(settings)}")
    settings.update(thresholds or {})
    return settings


# ---------------------------------------------------------------- model-based detectors


def _language_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_mismatch(prompts: Sequence[str], responses: Sequence[str], thresholds: dict[str, float]) -> list[Finding]:
    """Prompt and response confidently identified as different languages (py3langid)."""
    identifier = _language_identifier()
    out = []
    for prompt, response in zip(prompts, responses, strict=True):
        prose = _FENCE.sub(" ", response)
        if len(_LETTER.findall(prompt)) < thresholds["language_prompt_min_letters"]:
            out.append(Finding(False, None, ""))
            continue
        p_lang, p_conf = identifier.classify(prompt)
        # The whole response and its last 40%: a switch half-way shows in the tail.
        segments = [prose, prose[int(len(prose) * 0.6):]]
        finding = Finding(False, 0.0, "")
        for segment in segments:
            if len(_LETTER.findall(segment)) < thresholds["language_min_letters"]:
                continue
            r_lang, r_conf = identifier.classify(segment)
            if r_lang != p_lang and r_conf >= thresholds["language_confidence"] and p_conf >= 0.5:
                finding = Finding(True, float(r_conf), f"prompt looks {p_lang}, response (or its end) looks {r_lang}")
                break
        out.append(finding)
    return out


def off_topic(prompts: Sequence[str], responses: Sequence[str], thresholds: dict[str, float], *, model_path: str,
              batch_size: int = 64) -> list[Finding]:
    """Cosine similarity of mean-pooled sentence embeddings of prompt and response below a threshold."""
    from judgekit.embedding import embed

    prompt_vectors = embed(list(prompts), model_path=model_path, batch_size=batch_size)
    response_vectors = embed([r if r.strip() else " " for r in responses], model_path=model_path, batch_size=batch_size)
    similarity = (prompt_vectors * response_vectors).sum(axis=1)
    limit = thresholds["min_prompt_similarity"]
    return [Finding(bool(s < limit and r.strip()), float(s), f"prompt-response similarity {s:.2f} < {limit:.2f}" if s < limit else "")
            for s, r in zip(similarity, responses, strict=True)]


def fluency(responses: Sequence[str], thresholds: dict[str, float], *, model_path: str, batch_size: int = 16) -> list[Finding]:
    """Per-token perplexity under a local causal LM above a threshold."""
    from judgekit.embedding import perplexity

    values = perplexity(list(responses), model_path=model_path, batch_size=batch_size)
    limit = thresholds["max_perplexity"]
    return [Finding(bool(np.isfinite(v) and v > limit), float(v) if np.isfinite(v) else None,
                    f"perplexity {v:.0f} > {limit:.0f}" if np.isfinite(v) and v > limit else "") for v in values]


# ---------------------------------------------------------------- the flags table


EMPTY = _empty
REPETITION = _repetition
GIBBERISH = _gibberish
SCRIPT_NOISE = _script_noise
WORD_ORDER = _word_order
TRUNCATION = _truncation
LANGUAGE_MISMATCH = language_mismatch
OFF_TOPIC = off_topic
FLUENCY = fluency
INCOHERENT = "combined: any of " + ", ".join(COMBINED_DEFAULT)


def detect(
    responses: pd.DataFrame,
    *,
    thresholds: dict[str, float] | None = None,
    language: bool = True,
    embedding_model: str | None = None,
    fluency_model: str | None = None,
    combine: Sequence[str] = COMBINED_DEFAULT,
) -> pd.DataFrame:
    """Run the detectors on a responses table and return the long ``flags`` table."""
    settings = _settings(thresholds)
    unknown = sorted(set(combine) - set(HEURISTIC_DETECTORS) - set(MODEL_DETECTORS))
    if unknown:
        raise InputError(f"cannot combine unknown detectors {unknown}")
    texts = [_clean(v) for v in responses["response"]]
    prompts = [_clean(v) for v in responses["prompt"]] if "prompt" in responses else [""] * len(texts)
    finish = responses["finish_reason"].tolist() if "finish_reason" in responses else [None] * len(texts)
    per_detector: dict[str, list[Finding]] = {name: [] for name in HEURISTIC_DETECTORS}
    for text, reason in zip(texts, finish, strict=True):
        context = _context(text, reason)
        for name, detector in HEURISTICS.items():
            per_detector[name].append(detector(text, settings, context))
    if language:
        per_detector["language_mismatch"] = language_mismatch(prompts, texts, settings)
    if embedding_model:
        per_detector["off_topic"] = off_topic(prompts, texts, settings, model_path=embedding_model)
    if fluency_model:
        per_detector["fluency"] = fluency(texts, settings, model_path=fluency_model)
    missing = [name for name in combine if name not in per_detector]
    if missing:
        raise InputError(f"the combined rule needs detectors that were not run: {missing}")
    rows = []
    item_ids = responses["item_id"].tolist()
    for k, item_id in enumerate(item_ids):
        fired = []
        for name, findings in per_detector.items():
            finding = findings[k]
            rows.append((item_id, name, finding.flagged, finding.score, finding.reason))
            if finding.flagged and name in combine:
                fired.append(f"{name}: {finding.reason}")
        rows.append((item_id, "incoherent", bool(fired), float(len(fired)), "; ".join(fired)))
    return pd.DataFrame(rows, columns=["item_id", "detector", "flagged", "score", "reason"])


def fit_combined(flags: pd.DataFrame, labels: pd.Series, *, rng: int = 0) -> dict[str, Any]:
    """Fit a logistic model of incoherence labels (item_id -> bool) on the detectors' scores.

    Returns coefficients per detector score and a cross-validated AUROC, so a
    user can replace the rule with a model when they have labelled items.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.metrics import roc_auc_score

    wide = flags[flags["detector"] != "incoherent"].pivot(index="item_id", columns="detector", values="score").fillna(0.0)
    y = labels.reindex(wide.index)
    keep = y.notna()
    x, y = wide[keep].to_numpy(), y[keep].astype(int).to_numpy()
    if len(np.unique(y)) < 2:
        raise InputError("incoherence labels need both incoherent and coherent items")
    model = LogisticRegression(max_iter=1000)
    held_out = cross_val_predict(model, x, y, cv=5, method="predict_proba")[:, 1]
    model.fit(x, y)
    return {"coefficients": dict(zip(wide.columns, model.coef_[0].tolist(), strict=True)),
            "intercept": float(model.intercept_[0]), "cv_auroc": float(roc_auc_score(y, held_out))}
