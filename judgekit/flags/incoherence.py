"""Incoherence detectors: a score, a flag and a human-readable reason per response.

Heuristic detectors (CPU, no model; column-wide over batches of responses, see
:mod:`judgekit.flags.textstats` and ``benchmarks/incoherence.py``):

==============  ===============================================================
empty           empty, whitespace-only or punctuation-only
repetition      degenerate loops: share of repeated word 4-grams, a loop at the
                end of the text (any onset), distinct bigrams, zlib ratio
gibberish       token salad: characters that are not letters/digits/punctuation,
                vowel-less or letter-digit-mixed "words", symbol-laden tokens
script_noise    letters of different scripts inside one token, replacement and
                control characters (byte noise)
word_order      shuffled or salad English text: an article followed by a function
                word, sentence capitals and full stops in the wrong places
word_sequence   word pairs that English does not make: a stretch of 16 adjacent pairs
                within one line whose mean pointwise mutual information under a bigram model of Google
                Books counts with backoff (:mod:`judgekit.flags.bigrams`) is low, or a
                whole-answer mean far lower (or lower, with token-salad signs beside
                it); name runs are not scored, a lone name's pairs score 0, Markdown
                emphasis is not punctuation (:func:`judgekit.flags.textstats.name_runs`);
                catches real-word salad and shuffles in which every word is a real word
truncation      ends mid-sentence — only when the response sits at a length limit
                (``finish_reason == "length"`` in the responses table, or
                ``length_limit_words`` set)
==============  ===============================================================

Kinds of degraded answer that are not incoherent text, from the prompt and the answer:

=================  ============================================================
off_task_format    code, JSON, a table or a bare list where the prompt asked for
                   prose (:mod:`judgekit.flags.answer_format`)
non_responsive     fluent text unrelated to the prompt: relevance to the prompt
                   and the other answers to it (:mod:`judgekit.flags.relevance`)
                   from a sentence-embedding model when ``embedding_model`` is
                   given, else model-free (their words); not flagged where the
                   answer is incoherent, off-task in format or empty
=================  ============================================================

Model-based detectors (run when asked, see :func:`detect`):
``language_mismatch`` (py3langid, bundled model, no pickle) and ``fluency`` (windowed
per-token surprisal of the response given its prompt under any Hugging Face causal LM,
:mod:`judgekit.flags.fluency`; the rule is in :func:`fluency`).

The combined ``incoherent`` flag fires when any of ``COMBINED_DEFAULT`` fires
(the detectors for kinds that destroy coherence), and also when ``fluency`` fires
if a fluency model was given; truncation, language mismatch, off-task format and
non-responsive answers are reported separately because such a response can still be
fluent text. Code is never scored as English (:mod:`judgekit.flags.code`). Pass
``combine=`` to change the rule, or fit a logistic model on labelled items with
:func:`fit_combined`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from judgekit.errors import InputError
from judgekit.flags.code import split_code
from judgekit.flags.textstats import BATCH_RESPONSES, LETTER, TextStats, batches, text_stats

HEURISTIC_DETECTORS = ("empty", "repetition", "gibberish", "script_noise", "word_order", "word_sequence", "truncation")
PROMPT_DETECTORS = ("off_task_format", "non_responsive")  # kinds of degraded answer, never part of `incoherent`
# The kinds of degraded answer the flags table reports, one detector each, and what a share of it counts: an outcome
# (a share per model, a paired effect) can be built from any of these detector names (or any other detector's).
DEGRADED_KINDS = {
    "incoherent": "incoherent responses (degenerate text)",
    "off_task_format": "answers in a format the prompt did not ask for (code, JSON, a table, a bare list)",
    "non_responsive": "fluent answers unrelated to the prompt",
}
MODEL_DETECTORS = ("language_mismatch", "fluency")
COMBINED_DEFAULT = ("empty", "repetition", "gibberish", "script_noise", "word_order", "word_sequence")
MAX_CHARS = 20_000  # longer responses are judged on their first 20,000 characters (a 1 MB response must not stall a run)
_SURROGATE = re.compile("[\ud800-\udfff]")

DEFAULT_THRESHOLDS: dict[str, float] = {
    # repetition: flag when any holds
    "repeated_ngram_share": 0.45,     # share of word 4-grams that repeat an earlier one (texts of >= 12 words)
    "tail_loop_share": 0.30,          # share of words in a loop at the end: >= 3 copies of a 1-5 word unit, >= 2 of 6-40
    "compression_ratio": 0.22,        # zlib size / raw size (texts of >= 200 bytes); prose sits near 0.45-0.6
    # gibberish: flag when the salad score exceeds
    "salad_score": 0.30,              # share of tokens that are vowel-less, letter-digit mixed or symbol-laden
    "non_word_share": 0.08,           # share of words outside the 100,000 commonest English words (wordfreq)
    # salad index = non-word share / 0.05 + word-order anomaly rate / 0.03 + code-symbol token share / 0.03,
    # each term 1 at about the 99.5th percentile of real responses; flag when the sum exceeds this
    "salad_index": 1.6,
    # a rate-based salad or word-order rule fires only on at least this many events (odd tokens, non-words,
    # word-order anomalies, code-symbol tokens): one odd pair in a one-line answer is not evidence
    "min_events": 2,
    "min_wordlike_char_share": 0.80,  # share of non-space characters that are letters, digits or common punctuation
    # script noise: per 100 letters
    "script_switches_per_100": 1.5,   # switches between scripts inside a token (CJK-Latin boundaries excluded)
    "noise_chars_per_100": 0.5,       # U+FFFD, control and private-use characters
    # word order: anomalies per word (Latin-script texts of >= 12 words)
    "word_order_anomalies": 0.032,
    "min_function_word_share": 0.10,  # English prose is ~40% function words; a salad of sampled vocabulary ~1%
    # word sequence: mean bigram score (nats per pair) over the worst window of 16 scored pairs inside one line (locality:
    # fluent text in any voice has its odd pairs scattered, salad has them together; list items are separate fragments)
    # and over the whole text (analyses/results/
    # incoherence_validation/styles.md). Scored pairs a text needs: the mean of a few dozen pairs of short, list-like or
    # stylised answers swings below the thresholds (12 -> 24 on em_coder_betley's development file: 1.3% -> 0.4% of
    # answers its judge rates coherent >= 80 flagged; recall on the development corruptions within 1.4 points)
    "word_pair_min_pairs": 24,
    "word_pair_window": 0.3,          # the 0.2th percentile of the development sources' real responses (0.312), rounded down
    # whole-text mean alone: below the development style set's lowest (0.79: template lists of rare words, persona and
    # name-heavy answers score 0.9-1.1 for want of common word pairs, not for broken order)
    "word_pair_mean": 0.7,
    # whole-text mean with token-salad signs beside it (gibberish score >= word_pair_salad_support): the rule before #36
    "word_pair_mean_supported": 1.0,
    "word_pair_salad_support": 0.05,
    # truncation: only at a length limit; 0 means "use finish_reason only"
    "length_limit_words": 0,
    # language mismatch: both texts need this many letters and this confidence
    "language_min_letters": 40,      # letters a response segment needs to be identified
    "language_prompt_min_letters": 15,
    "language_confidence": 0.90,     # on the response segment; the prompt needs 0.5
    # off_task_format: code blocks hold at least this share of the answer's non-space characters
    "off_task_code_share": 0.5,
    # non_responsive, flagged below these relevance scores (judgekit.flags.relevance), each the value under which 1% of
    # the answers em_coder_betley's judge rates coherent >= 80 in its development file (eval_result_base.csv) lie:
    "non_responsive_overlap": 0.047,     # model-free: TF-IDF cosine with the prompt and the other answers to it (0.0476)
    # --embedding-model: cosine similarity with the prompt and the other answers (all-MiniLM-L6-v2: 0.184, from the
    # development file's stratified sample of analyses/incoherence_real_finetunes.py --sample 400)
    "non_responsive_similarity": 0.18,
    # fluency (see fluency()): worst 32-token window's mean surprisal minus the study's median of the same,
    # in units of the study's robust spread (1.4826 x MAD) of it; flag above fluency_z
    "fluency_z": 5.0,
    "fluency_window_tokens": 32,
    "fluency_min_responses": 30,      # scored responses the per-study calibration needs; fewer: scores only
    "fluency_baseline": float("nan"),  # nats/token; NaN: the study's median worst window (set both to reuse
    "fluency_spread": float("nan"),    # a calibration from development data on a small study)
}


@dataclass(frozen=True)
class Finding:
    flagged: bool
    score: float | None
    reason: str


@dataclass(frozen=True)
class DetectorColumns:
    """One detector's output for a batch of responses: flags, scores (NaN: no score) and reasons."""

    flagged: np.ndarray
    score: np.ndarray
    reason: list[str]

    @classmethod
    def build(cls, flagged: np.ndarray, score: np.ndarray, explain: Callable[[int], str]) -> DetectorColumns:
        """Reasons are formatted only for the rows ``explain`` is asked about: the flagged ones."""
        reason = [""] * len(flagged)
        for row in np.flatnonzero(flagged).tolist():
            reason[row] = explain(row)
        return cls(np.asarray(flagged, dtype=bool), np.asarray(score, dtype=float), reason)

    @classmethod
    def from_findings(cls, findings: Sequence[Finding]) -> DetectorColumns:
        return cls(np.array([f.flagged for f in findings], dtype=bool),
                   np.array([np.nan if f.score is None else f.score for f in findings], dtype=float),
                   [f.reason for f in findings])

    @classmethod
    def concat(cls, parts: Sequence[DetectorColumns]) -> DetectorColumns:
        return cls(np.concatenate([p.flagged for p in parts]), np.concatenate([p.score for p in parts]),
                   [r for p in parts for r in p.reason])

    def finding(self, row: int) -> Finding:
        score = self.score[row]
        return Finding(bool(self.flagged[row]), None if np.isnan(score) else float(score), self.reason[row])


class _Batch:
    """A batch's text statistics, finish reasons, and language ID asked only where an English rule would fire."""

    def __init__(self, texts: list[str], finish_reasons: Sequence[Any]) -> None:
        self.stats = text_stats(texts)
        self.at_length_limit = np.array([reason == "length" for reason in finish_reasons], dtype=bool)
        self.word_order_rate, self.function_share, self.alphabetic = word_order_rates(self.stats)
        self._not_english: dict[int, bool] = {}
        self._gibberish: DetectorColumns | None = None

    def gibberish(self, t: dict[str, float]) -> DetectorColumns:
        """The gibberish detector's columns, computed once: word_sequence reads its score as supporting evidence."""
        if self._gibberish is None:
            self._gibberish = _gibberish_columns(self, t)
        return self._gibberish

    def confidently_not_english(self, row: int) -> bool:
        """The word list and word-order rules are English: coherent text in another language is not salad."""
        if row not in self._not_english:
            share = self.function_share[row]
            if share >= 0.2:  # plenty of English function words: English, no need to ask (NaN compares False)
                self._not_english[row] = False
            else:
                language, confidence = _language_identifier().classify(self.stats.prose[row][:600])
                self._not_english[row] = language != "en" and confidence >= 0.9
        return self._not_english[row]

    def not_english_rows(self, suspicious: np.ndarray) -> np.ndarray:
        """Of the ``suspicious`` rows, those confidently in another language."""
        out = np.zeros(len(suspicious), dtype=bool)
        for row in np.flatnonzero(suspicious).tolist():
            out[row] = self.confidently_not_english(row)
        return out


def word_order_rates(stats: TextStats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(anomalies per token, function-word share of alphabetic tokens (NaN: none), alphabetic tokens).

    Only Latin-script texts of >= 12 prose tokens are rated; others get (0, NaN, 0).
    """
    rated = stats.latin & (stats.n_prose_tokens >= 12)
    tokens = np.maximum(stats.n_prose_tokens, 1)
    rate = np.where(rated, stats.word_order_anomalies / tokens, 0.0)
    alphabetic = np.where(rated, stats.alphabetic_tokens, 0)
    share = np.where(alphabetic > 0, stats.function_tokens / np.maximum(alphabetic, 1), np.nan)
    return rate, share, alphabetic


# ---------------------------------------------------------------- heuristic detectors


def _empty(batch: _Batch, t: dict[str, float]) -> DetectorColumns:
    s = batch.stats
    flagged = s.empty | ~s.has_alnum
    return DetectorColumns.build(flagged, flagged.astype(float), lambda row: (
        "empty or whitespace-only response" if s.empty[row] else "punctuation-only response"))


def _repetition(batch: _Batch, t: dict[str, float]) -> DetectorColumns:
    s = batch.stats
    share, loop, ratio = s.repeated_ngram_share, s.tail_loop_share, s.compression_ratio
    score = np.maximum(np.maximum(share, loop), np.where(np.isnan(ratio), 0.0, 1.0 - ratio))
    by_loop = loop >= t["tail_loop_share"]
    by_share = share > t["repeated_ngram_share"]
    by_ratio = ratio < t["compression_ratio"]  # NaN (short text) compares False

    def explain(row: int) -> str:
        if by_loop[row]:
            return f"the last {loop[row]:.0%} of the words loop over a {s.tail_loop_unit[row]}-word unit"
        if by_share[row]:
            return f"{share[row]:.0%} of word 4-grams repeat earlier ones"
        return f"text compresses to {ratio[row]:.0%} of its size (repetitive)"

    return DetectorColumns.build(by_loop | by_share | by_ratio, score, explain)


def _gibberish(batch: _Batch, t: dict[str, float]) -> DetectorColumns:
    return batch.gibberish(t)


def _gibberish_columns(batch: _Batch, t: dict[str, float]) -> DetectorColumns:
    s = batch.stats
    tokens = np.maximum(s.n_prose_tokens, 1)
    rated = (s.n_prose_tokens >= 5) & (s.prose_chars >= 20)
    wordlike = np.maximum(0.0, 1.0 - s.not_wordlike_chars / np.maximum(s.prose_chars, 1))
    enough = t["min_events"]  # a rate resting on fewer events says nothing about a short text
    salad = np.where(s.odd_tokens >= enough, np.minimum(1.0, s.odd_tokens / tokens), 0.0)
    non_words = np.where(s.latin & (s.word_pieces >= 10) & (s.non_word_pieces >= enough),
                         s.non_word_pieces / np.maximum(s.word_pieces, 1), 0.0)
    order_rate = np.where(s.word_order_anomalies >= enough, batch.word_order_rate, 0.0)
    symbols = np.where(s.code_tokens >= enough, s.code_tokens / tokens, 0.0)
    index = non_words / 0.05 + order_rate / 0.03 + symbols / 0.03
    foreign = batch.not_english_rows(rated & ((index > t["salad_index"]) | (non_words > t["non_word_share"])))
    non_words[foreign], order_rate[foreign], index[foreign] = 0.0, 0.0, symbols[foreign] / 0.03
    score = np.maximum.reduce([salad, 1.0 - wordlike, non_words, np.minimum(1.0, index / (2 * t["salad_index"]))])
    by_index = index > t["salad_index"]
    by_non_words = non_words > t["non_word_share"]
    by_chars = wordlike < t["min_wordlike_char_share"]
    by_salad = salad > t["salad_score"]

    def explain(row: int) -> str:
        if by_index[row]:
            return (f"salad index {index[row]:.1f}: {non_words[row]:.0%} non-words, {order_rate[row]:.1%} word-order "
                    f"anomalies, {symbols[row]:.0%} code-symbol tokens (token salad)")
        if by_non_words[row]:
            return f"{non_words[row]:.0%} of words are not among the 100,000 commonest English words (token salad)"
        if by_chars[row]:
            return f"only {wordlike[row]:.0%} of characters are letters, digits or punctuation"
        return f"{salad[row]:.0%} of tokens are vowel-less, letter-digit mixed or symbol-laden (token salad)"

    flagged = rated & (by_index | by_non_words | by_chars | by_salad)
    return DetectorColumns.build(flagged, np.where(rated, score, 0.0), explain)


def _script_noise(batch: _Batch, t: dict[str, float]) -> DetectorColumns:
    s = batch.stats
    letters = np.maximum(s.n_letters, 1)
    switches = s.script_switches * 100 / letters
    noise = s.noise_chars * 100 / np.maximum(s.text_chars, 1)
    by_switches = (letters >= 20) & (switches > t["script_switches_per_100"])
    by_noise = noise > t["noise_chars_per_100"]

    def explain(row: int) -> str:
        if by_switches[row]:
            return f"{switches[row]:.1f} script switches inside words per 100 letters (mixed-script noise)"
        return f"{noise[row]:.1f} replacement/control characters per 100 characters (byte noise)"

    return DetectorColumns.build(by_switches | by_noise, np.maximum(switches / 10, noise / 5), explain)


def _word_order(batch: _Batch, t: dict[str, float]) -> DetectorColumns:
    rate, share, alphabetic = batch.word_order_rate, batch.function_share, batch.alphabetic
    rated = ~np.isnan(share)
    wide = alphabetic >= 20
    by_rate = rated & (rate > t["word_order_anomalies"]) & (batch.stats.word_order_anomalies >= t["min_events"])
    by_share = rated & wide & (share < t["min_function_word_share"])
    rated &= ~batch.not_english_rows(by_rate | by_share)
    score = np.where(wide, np.fmax(rate, (t["min_function_word_share"] - share) * 2), rate)

    def explain(row: int) -> str:
        if by_rate[row]:
            return f"{rate[row]:.1%} of words break English word order (shuffled or salad text)"
        return f"only {share[row]:.0%} of words are function words (word salad)"

    return DetectorColumns.build(rated & (by_rate | by_share), np.where(rated, score, np.nan), explain)


def _word_sequence(batch: _Batch, t: dict[str, float]) -> DetectorColumns:
    s = batch.stats
    mean, window = s.word_pair_score, s.word_pair_window
    rated = s.latin & (s.word_pairs >= t["word_pair_min_pairs"])
    salad_signs = batch.gibberish(t).score >= t["word_pair_salad_support"]
    mean_limit = np.where(salad_signs, t["word_pair_mean_supported"], t["word_pair_mean"])
    by_window = rated & (window < t["word_pair_window"])  # NaN (fewer pairs than a window) compares False
    by_mean = rated & (mean < mean_limit)
    rated &= ~batch.not_english_rows(by_mean | by_window)
    # margin below the nearer threshold, nats per pair: positive when flagged
    score = np.fmax(mean_limit - mean, t["word_pair_window"] - window)

    def explain(row: int) -> str:
        if by_window[row]:
            return (f"a stretch of 16 word pairs scores {window[row]:.2f} nats on average (threshold "
                    f"{t['word_pair_window']:g}): words in an order English does not use")
        support = " with token-salad signs beside it" if salad_signs[row] else ""
        return (f"word pairs score {mean[row]:.2f} nats on average (threshold {mean_limit[row]:g}{support}): "
                "English rarely puts these words next to each other")

    return DetectorColumns.build(rated & (by_mean | by_window), np.where(rated, score, np.nan), explain)


def _truncation(batch: _Batch, t: dict[str, float]) -> DetectorColumns:
    s = batch.stats
    at_limit = batch.at_length_limit | ((t["length_limit_words"] > 0) & (s.n_words >= t["length_limit_words"]))
    flagged = at_limit & ~s.ends_cleanly & ~s.empty
    score = np.where(s.empty, np.nan, np.where(flagged, 1.0, np.where(s.ends_cleanly, 0.0, 0.5)))
    columns = DetectorColumns.build(flagged, score, lambda row: "stops mid-sentence at the length limit")
    for row in np.flatnonzero(~flagged & ~s.ends_cleanly & ~s.empty).tolist():
        columns.reason[row] = "ends without final punctuation (not at a length limit)"
    return columns


HEURISTICS: dict[str, Callable[[_Batch, dict[str, float]], DetectorColumns]] = {
    "empty": _empty,
    "repetition": _repetition,
    "gibberish": _gibberish,
    "script_noise": _script_noise,
    "word_order": _word_order,
    "word_sequence": _word_sequence,
    "truncation": _truncation,
}


def heuristic_columns(texts: list[str], finish_reasons: Sequence[Any], thresholds: dict[str, float], *,
                      batch_size: int = BATCH_RESPONSES) -> dict[str, DetectorColumns]:
    """Every heuristic detector on cleaned texts, ``batch_size`` responses at a time (see :mod:`judgekit.flags.textstats`)."""
    parts: dict[str, list[DetectorColumns]] = {name: [] for name in HEURISTICS}
    for rows in batches(texts, max_responses=batch_size):
        batch = _Batch(texts[rows], finish_reasons[rows])
        for name, detector in HEURISTICS.items():
            parts[name].append(detector(batch, thresholds))
    return {name: DetectorColumns.concat(columns) for name, columns in parts.items()}


def heuristic_findings(text: str, *, thresholds: dict[str, float] | None = None,
                       finish_reason: str | None = None) -> dict[str, Finding]:
    """Every heuristic detector on one response."""
    columns = heuristic_columns([_clean(text)], [finish_reason], _settings(thresholds))
    return {name: column.finding(0) for name, column in columns.items()}


def _clean(value: Any) -> str:
    if not isinstance(value, str):
        if value is None or pd.isna(value):
            return ""
        value = str(value)
    text = value[:MAX_CHARS]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (invalid Unicode that slipped through): U+FFFD, counted as byte noise
        return _SURROGATE.sub("\ufffd", text)
    return text


def _settings(thresholds: dict[str, float] | None) -> dict[str, float]:
    settings = dict(DEFAULT_THRESHOLDS)
    unknown = sorted(set(thresholds or {}) - set(settings))
    if unknown:
        raise InputError(f"unknown thresholds {unknown}; known: {sorted(settings)}")
    settings.update(thresholds or {})
    return settings


# ---------------------------------------------------------------- model-based detectors


@cache
def _language_identifier():
    """One py3langid identifier per process (classify keeps no state between calls)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_mismatch(prompts: Sequence[str], responses: Sequence[str], thresholds: dict[str, float]) -> list[Finding]:
    """Prompt and response confidently identified as different languages (py3langid)."""
    identifier = _language_identifier()
    out = []
    for prompt, response in zip(prompts, responses, strict=True):
        prose = split_code(response).prose
        if len(LETTER.findall(prompt)) < thresholds["language_prompt_min_letters"]:
            out.append(Finding(False, None, ""))
            continue
        p_lang, p_conf = identifier.classify(prompt)
        # The whole response and its last 40%: a switch half-way shows in the tail.
        segments = [prose, prose[int(len(prose) * 0.6):]]
        finding = Finding(False, 0.0, "")
        for segment in segments:
            if len(LETTER.findall(segment)) < thresholds["language_min_letters"]:
                continue
            r_lang, r_conf = identifier.classify(segment)
            if r_lang != p_lang and r_conf >= thresholds["language_confidence"] and p_conf >= 0.5:
                finding = Finding(True, float(r_conf), f"prompt looks {p_lang}, response (or its end) looks {r_lang}")
                break
        out.append(finding)
    return out


def off_task_format(prompts: Sequence[str], responses: Sequence[str], thresholds: dict[str, float]) -> DetectorColumns:
    """Code, JSON, a table or a bare list where the prompt asked for prose (:mod:`judgekit.flags.answer_format`)."""
    from judgekit.flags.answer_format import off_task_format as formats

    return DetectorColumns(*formats(prompts, responses, code_share=thresholds["off_task_code_share"]))


def non_responsive(prompts: Sequence[str], responses: Sequence[str], thresholds: dict[str, float], *,
                   excluded: np.ndarray, embedding_model: str | None = None) -> DetectorColumns:
    """Answers whose relevance to the prompt is below the threshold, unless ``excluded`` (incoherent, off-task in
    format or empty: another kind already says what is wrong). Score: the relevance (NaN: too short to score)."""
    from judgekit.flags.relevance import MIN_CONTENT_WORDS, embedding_relevance, lexical_relevance

    if embedding_model:
        relevance = embedding_relevance(prompts, responses, model_path=embedding_model)
        limit = thresholds["non_responsive_similarity"]
        what = "embedding similarity with the prompt and the other answers to it"
    else:
        relevance = lexical_relevance(prompts, responses)
        limit, what = thresholds["non_responsive_overlap"], "word overlap with the prompt and the other answers to it"
    flagged = (relevance < limit) & ~excluded  # NaN compares False
    columns = DetectorColumns.build(flagged, relevance, lambda row: f"{what} {relevance[row]:.2f} < {limit:g}")
    for row in np.flatnonzero(np.isnan(relevance) & ~excluded).tolist():
        columns.reason[row] = f"not scored: a refusal, or fewer than {MIN_CONTENT_WORDS} content words"
    return columns


SPREAD_FLOOR = 0.05  # nats/token: a study of near-identical responses must not turn tiny differences into flags


def fluency_calibration(worst: np.ndarray) -> tuple[float, float]:
    """(baseline, spread) of worst-window surprisals: their median, and 1.4826 × their median absolute
    deviation (the normal-consistent robust scale), at least ``SPREAD_FLOOR``; NaN where none is finite.

    Examples
    --------
    >>> fluency_calibration(np.array([2.0, 2.5, 3.0, np.nan, 9.0]))
    (2.75, 0.7413)
    """
    scored = worst[np.isfinite(worst)]
    if not len(scored):
        return float("nan"), float("nan")
    centre = float(np.median(scored))
    return centre, max(1.4826 * float(np.median(np.abs(scored - centre))), SPREAD_FLOOR)


def fluency(prompts: Sequence[str], responses: Sequence[str], thresholds: dict[str, float], *, model_path: str) -> DetectorColumns:
    """Responses whose worst stretch is far less predictable, given the prompt, than the study's typical worst stretch.

    For each response, :func:`judgekit.flags.fluency.window_surprisal` gives the mean surprisal
    (nats/token) of its worst window of ``fluency_window_tokens`` tokens under the model,
    conditioned on the prompt. The **score** is that value minus the baseline: the median of
    the same quantity over the study's scored responses. It is flagged when the score exceeds
    ``fluency_z`` robust spreads (1.4826 × the median absolute deviation of the worst-window
    values over the study, at least ``SPREAD_FLOOR``).

    Why a per-study baseline: raw surprisal depends on the model (a 135M model is more surprised
    than a 7B one), on the domain and on the response style (code, lists of names, numbers), so
    no absolute nats/token threshold carries over between models or studies. The median and the
    MAD are robust: up to half of a study's responses can be incoherent before they move the
    baseline far. Why not the same response's own median window: a response shuffled from
    start to end is uniformly surprising, and would look normal against itself.

    The flags of one response therefore depend on the rest of the study (never on how rows were
    batched). Studies with fewer than ``fluency_min_responses`` scored responses get scores
    against their median but no flags, unless ``fluency_baseline`` and ``fluency_spread`` are
    given, e.g. from a calibration on development data. Responses with fewer than 8 tokens get
    no score. Low surprisal is not flagged here: loops are the repetition detector's.

    The default ``fluency_z`` of 5 is a robust-z convention, not a value fitted on real LMs: it
    has not been validated against real responses with a real model in this repository (see
    the README, incoherence section); set it on development data with the model you use.
    """
    from judgekit.flags.fluency import load_causal_lm, worst_windows

    window = int(thresholds["fluency_window_tokens"])
    worst = worst_windows(load_causal_lm(model_path), prompts, responses, window=window)
    n_scored = int(np.isfinite(worst).sum())
    given = (thresholds["fluency_baseline"], thresholds["fluency_spread"])
    baseline, spread = (g if np.isfinite(g) else e for g, e in zip(given, fluency_calibration(worst), strict=True))
    spread = max(spread, SPREAD_FLOOR)
    calibrated = bool(np.isfinite(given).all()) or n_scored >= thresholds["fluency_min_responses"]
    score = worst - baseline
    limit = thresholds["fluency_z"] * spread
    flagged = calibrated & (score > limit)  # NaN compares False
    columns = DetectorColumns.build(flagged, score, lambda row: (
        f"worst {window}-token stretch: {worst[row]:.2f} nats/token, {score[row]:.2f} above the study baseline "
        f"{baseline:.2f} ({score[row] / spread:.1f} robust spreads > {thresholds['fluency_z']:g})"))
    for row in np.flatnonzero(np.isnan(worst)).tolist():
        columns.reason[row] = "too few tokens to score" if responses[row].strip() else "empty response"
    if not calibrated:
        for row in np.flatnonzero(np.isfinite(worst)).tolist():
            columns.reason[row] = (f"not flagged: {n_scored} scored responses, the per-study calibration needs "
                                   f"{thresholds['fluency_min_responses']:g}")
    return columns


# ---------------------------------------------------------------- the flags table


EMPTY = _empty
REPETITION = _repetition
GIBBERISH = _gibberish
SCRIPT_NOISE = _script_noise
WORD_ORDER = _word_order
WORD_SEQUENCE = _word_sequence
TRUNCATION = _truncation
LANGUAGE_MISMATCH = language_mismatch
OFF_TASK_FORMAT = off_task_format
NON_RESPONSIVE = non_responsive
FLUENCY = fluency
INCOHERENT = "combined: any of " + ", ".join(COMBINED_DEFAULT)


def detect(
    responses: pd.DataFrame,
    *,
    thresholds: dict[str, float] | None = None,
    language: bool = True,
    embedding_model: str | None = None,
    fluency_model: str | None = None,
    combine: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Run the detectors on a responses table and return the long ``flags`` table.

    ``combine`` names the detectors of the ``incoherent`` flag; by default
    :func:`combined_members` (``COMBINED_DEFAULT``, plus ``fluency`` when a fluency model is given);
    ``off_task_format`` and ``non_responsive`` are never among them.
    ``embedding_model`` makes ``non_responsive`` read relevance from sentence embeddings.
    A ``fluency_model`` is checked (:func:`judgekit.flags.fluency.check_causal_lm`) before any work.
    """
    settings = _settings(thresholds)
    if fluency_model:
        from judgekit.flags.fluency import check_causal_lm

        check_causal_lm(fluency_model)
    combine = combined_members(combine, fluency_model=fluency_model)
    unknown = sorted(set(combine) - set(HEURISTIC_DETECTORS) - set(MODEL_DETECTORS) - set(PROMPT_DETECTORS))
    if unknown:
        raise InputError(f"cannot combine unknown detectors {unknown}")
    kinds = sorted(set(combine) & set(PROMPT_DETECTORS))
    if kinds:
        raise InputError(f"{', '.join(kinds)} is a kind of degraded answer of its own, never counted as incoherent")
    texts = [_clean(v) for v in responses["response"]]
    prompts = [_clean(v) for v in responses["prompt"]] if "prompt" in responses else [""] * len(texts)
    finish = responses["finish_reason"].tolist() if "finish_reason" in responses else [None] * len(texts)
    per_detector = heuristic_columns(texts, finish, settings)
    if language:
        per_detector["language_mismatch"] = DetectorColumns.from_findings(language_mismatch(prompts, texts, settings))
    if fluency_model:
        per_detector["fluency"] = fluency(prompts, texts, settings, model_path=fluency_model)
    missing = [name for name in combine if name not in per_detector]
    if missing:
        raise InputError(f"the combined rule needs detectors that were not run: {missing}")
    per_detector["incoherent"] = _combined({name: c for name, c in per_detector.items() if name in combine}, len(texts))
    per_detector["off_task_format"] = off_task_format(prompts, texts, settings)
    excluded = per_detector["incoherent"].flagged | per_detector["off_task_format"].flagged | per_detector["empty"].flagged
    per_detector["non_responsive"] = non_responsive(prompts, texts, settings, excluded=excluded,
                                                    embedding_model=embedding_model)
    return _flags_table(responses["item_id"], per_detector)


def _flags_table(item_ids: pd.Series, per_detector: dict[str, DetectorColumns]) -> pd.DataFrame:
    """The long flags table, one row per response and detector, in response order.

    Text columns stay object arrays of references to the same few Python strings (each item id
    once, each detector name once): saving a table conforms and writes it through object arrays,
    and a pandas string column would make it build a new string per row, 9 rows per response
    (the flag step's peak at 1M responses: 3.9 GB with string columns, 3.0 GB with these;
    BENCHMARKS.md, incoherence).
    """
    names = list(per_detector)
    columns = list(per_detector.values())
    n = len(item_ids)
    reason = np.empty(n * len(names), dtype=object)
    for k, column in enumerate(columns):
        reason[k :: len(names)] = column.reason
    return pd.DataFrame({
        "item_id": pd.Series(np.repeat(item_ids.to_numpy(dtype=object), len(names)), dtype=object),
        "detector": pd.Series(np.tile(np.array(names, dtype=object), n), dtype=object),
        "flagged": np.stack([c.flagged for c in columns], axis=1).ravel(),
        "score": np.stack([c.score for c in columns], axis=1).ravel(),
        "reason": pd.Series(reason, dtype=object),
    })


def combined_members(combine: Sequence[str] | None, *, fluency_model: str | None) -> tuple[str, ...]:
    """The detectors of the combined flag: ``combine`` when given, else the default set (+ fluency with a model)."""
    if combine is not None:
        return tuple(combine)
    return (*COMBINED_DEFAULT, "fluency") if fluency_model else COMBINED_DEFAULT


def _combined(members: dict[str, DetectorColumns], n: int) -> DetectorColumns:
    """Fires when any member fires; score = how many fired; reason lists each with its own reason."""
    fired = np.stack([c.flagged for c in members.values()], axis=1) if members else np.zeros((n, 0), dtype=bool)
    return DetectorColumns.build(fired.any(axis=1), fired.sum(axis=1).astype(float), lambda row: "; ".join(
        f"{name}: {c.reason[row]}" for name, c in members.items() if c.flagged[row]))


def fit_combined(flags: pd.DataFrame, labels: pd.Series, *, rng: int = 0) -> dict[str, Any]:
    """Fit a logistic model of incoherence labels (item_id -> bool) on the detectors' scores.

    Returns coefficients per detector score and a cross-validated AUROC, so a
    user can replace the rule with a model when they have labelled items.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

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
