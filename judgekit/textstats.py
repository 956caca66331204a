"""Column-wide text statistics of a batch of responses: the inputs of the heuristic incoherence detectors.

All responses of a batch are split once. Their tokens go through one process-wide
vocabulary, where a single dictionary lookup per token gives an integer id and, by
array indexing, the token's packed features. Every per-response quantity is then a
segment reduction (``np.bincount`` over the response index) of one array holding the
whole batch. Python-level work per response is limited to what C does per string
anyway: ``str.split``, ``zlib.compress`` and byte-table counts (``bytes.translate``).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import repeat

import numpy as np

MAX_LOOP_UNIT = 40           # longest repeated unit (in words) the tail-loop search looks for
MIN_WORDS_NGRAMS = 12        # texts shorter than this get a repeated-4-gram share of 0
MIN_WORDS_TAIL_LOOP = 9
MIN_BYTES_COMPRESSION = 200  # zlib ratios of shorter texts say little
BATCH_RESPONSES = 2048
BATCH_CHARS = 2_000_000      # bounds a batch's token arrays however long its responses are

FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_NOISE = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff]")
_NOT_WORDLIKE = re.compile(r"[^\w\s.,;:!?'\"()\[\]{}\-–—/%$&*#@<>=+`~|\\^…’“”«»‘¿¡·•]")
_VOWELLESS = re.compile(r"\b[b-df-hj-np-tv-xz]{3,}\b")
_MIXED_ALNUM = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z\d]{3,}\b")
_SYMBOL_CANDIDATE = re.compile(r"\S*[#@{}\[\]<>|\\~^]\S*")
_HAS_LATIN = re.compile(r"[A-Za-z]")
_SYMBOLS_ONLY_TOKEN = re.compile(r"(?<!\S)[^\w\s]{2,}(?!\S)")
_CODE_SYMBOLS = frozenset("[]{}<>|\\$_=;")
_LOWER_WORD = re.compile(r"[a-z]{2,}")
_TERMINAL_CHARS = frozenset(""".!?…:;)]}"'`*>\u3002\uff01\uff1f""")
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
LETTER = re.compile(r"[^\W\d_]")


def _ascii_matching(pattern: re.Pattern[str]) -> bytes:
    """The ASCII bytes a one-character pattern matches, so ASCII texts are counted with ``bytes.translate``."""
    return bytes(c for c in range(128) if pattern.fullmatch(chr(c)))


_ASCII_LETTERS = _ascii_matching(re.compile("[A-Za-z]"))
_ASCII_ALNUM = bytes(c for c in range(128) if chr(c).isalnum())
_ASCII_NOISE = _ascii_matching(_NOISE)
_ASCII_NOT_WORDLIKE = _ascii_matching(_NOT_WORDLIKE)

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


@cache
def english_words() -> frozenset[str]:
    """The 100,000 commonest English words (wordfreq's bundled lists, read with msgpack, no pickle)."""
    import wordfreq

    return frozenset(wordfreq.top_n_list("en", 100_000))


# ---------------------------------------------------------------- per-token features

# Feature bits of a token, computed once per distinct token.
DET, FUNC, PREP, JOIN, ENDS, LOWER_START, STARTER_UPPER, COLON, ALPHA, FUNC_ALPHA, DET_END = (1 << k for k in range(11))
_TOKEN_LIMIT = 2_000_000


def _token_features(token: str) -> int:
    """Packed: feature bits | [a-z]{2,} pieces << 12 | pieces outside the English list << 22 | odd << 32 | code << 42."""
    word = token.strip("\"'()[]*_,;:").lower()
    bits = 0
    if word in DETERMINERS:
        bits |= DET
    if word in FUNCTION_WORDS or not word:
        bits |= FUNC
    if word in PREPOSITIONS:
        bits |= PREP
    if word in PREPOSITIONS or word in CONJUNCTIONS:
        bits |= JOIN
    if token[-1] in ".!?" and word.rstrip(".!?") not in ABBREVIATIONS and not token[:-1].replace(".", "").isdigit():
        bits |= ENDS
    if token[0].isalpha() and token[0].islower():
        bits |= LOWER_START
    if token[0].isupper() and word in SENTENCE_STARTERS and word != "i":
        bits |= STARTER_UPPER
    if token[-1] == ":":
        bits |= COLON
    if word.isalpha():
        bits |= ALPHA
        if word in FUNCTION_WORDS:
            bits |= FUNC_ALPHA
    if word.rstrip(".!?") in DETERMINERS:
        bits |= DET_END
    pieces = _LOWER_WORD.findall(token.lower())
    vocabulary = english_words()
    odd = len(_VOWELLESS.findall(token)) + len(_MIXED_ALNUM.findall(token)) + bool(_SYMBOL_CANDIDATE.fullmatch(token) and _HAS_LATIN.search(token))
    code = bool(_SYMBOLS_ONLY_TOKEN.fullmatch(token)) and not _CODE_SYMBOLS.isdisjoint(token)
    nonword = sum(1 for w in pieces if w not in vocabulary)
    return bits | min(len(pieces), 1023) << 12 | min(nonword, 1023) << 22 | min(odd, 1023) << 32 | int(code) << 42


class _TokenVocabulary:
    """Process-wide token -> id table with each token's packed features in a parallel array.

    Ids only need to be consistent within one batch, so the table is reset between
    batches once it grows large.
    """

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.features = np.zeros(1 << 16, dtype=np.int64)

    def reset_if_large(self) -> None:
        if len(self.index) > _TOKEN_LIMIT:
            self.__init__()

    def ids(self, tokens: list[str]) -> np.ndarray:
        out = np.fromiter(map(self.index.get, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
        for k in np.flatnonzero(out < 0).tolist():
            out[k] = self._add(tokens[k])
        return out

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


# ---------------------------------------------------------------- the statistics of a batch


@dataclass(frozen=True)
class TextStats:
    """Per-response statistics of a batch of responses; every array has one entry per response.

    Token counts are over whitespace-separated tokens. ``prose`` is the text with fenced
    code blocks blanked out; the salad and word-order counts are over its tokens.
    """

    prose: list[str]
    n_words: np.ndarray                # whitespace tokens of the whole text
    n_prose_tokens: np.ndarray
    n_letters: np.ndarray              # Unicode letters
    latin: np.ndarray                  # has letters, >= 80% of them Latin (in the prose)
    empty: np.ndarray                  # nothing but whitespace
    has_alnum: np.ndarray
    ends_cleanly: np.ndarray           # ends with terminal punctuation, outside an open code fence
    text_chars: np.ndarray
    compression_ratio: np.ndarray      # zlib level 6 size / UTF-8 size; NaN below MIN_BYTES_COMPRESSION bytes
    prose_chars: np.ndarray            # prose characters other than spaces and newlines
    not_wordlike_chars: np.ndarray     # prose characters that are not letters, digits, spaces or common punctuation
    noise_chars: np.ndarray            # U+FFFD, control and private-use characters
    script_switches: np.ndarray        # adjacent letters of two different scripts (Hangul excluded)
    repeated_ngram_share: np.ndarray   # share of word 4-grams repeating an earlier one; 0 below MIN_WORDS_NGRAMS
    tail_loop_share: np.ndarray        # share of words in a run of >= 3 repeats of one unit ending the text
    tail_loop_unit: np.ndarray         # that unit's length in words (0: no loop)
    odd_tokens: np.ndarray             # vowel-less or letter-digit-mixed pieces, symbol-laden tokens
    word_pieces: np.ndarray            # [a-z]{2,} pieces
    non_word_pieces: np.ndarray        # of those, outside english_words()
    code_tokens: np.ndarray            # tokens made only of symbols, some of them code symbols
    word_order_anomalies: np.ndarray   # adjacent-token pairs that break English word order, see _pair_anomalies
    alphabetic_tokens: np.ndarray
    function_tokens: np.ndarray        # alphabetic tokens that are English function words


def batches(texts: Sequence[str], *, max_responses: int = BATCH_RESPONSES) -> Iterator[slice]:
    """Consecutive slices of at most ``max_responses`` responses and about BATCH_CHARS characters."""
    if max_responses < 1:
        raise ValueError(f"max_responses must be >= 1, got {max_responses}")
    start, chars = 0, 0
    for k, text in enumerate(texts):
        if k > start and (k - start >= max_responses or chars + len(text) > BATCH_CHARS):
            yield slice(start, k)
            start, chars = k, 0
        chars += len(text)
    if start < len(texts) or not texts:
        yield slice(start, len(texts))


def text_stats(texts: list[str]) -> TextStats:
    """Statistics of one batch of cleaned texts (valid Unicode; see :func:`batches` for the size).

    One pass over the texts splits each, looks its tokens up at once (the words are not
    kept: holding a batch's strings alive costs more than splitting again the few texts
    that need their words later) and takes the character counts.
    """
    _VOCABULARY.reset_if_large()
    lookup = _VOCABULARY.index.get
    word_ids: list[int] = []
    extend = word_ids.extend
    prose: list[str] = []
    fenced_prose_tokens: dict[int, list[str]] = {}
    counts: list[tuple] = []
    nan = float("nan")
    for row, text in enumerate(texts):
        words = text.split()
        extend(map(lookup, words, repeat(-1)))
        raw = text.encode("utf-8")
        stripped = text.rstrip()
        fenced = "```" in text
        if fenced:
            text_prose = FENCE.sub(" ", text)
            fenced_prose_tokens[row] = text_prose.split()
        else:
            text_prose = text
        prose.append(text_prose)
        if text.isascii():
            n_letters = len(raw) - len(raw.translate(None, _ASCII_LETTERS))
            latin = n_letters > 0
            has_alnum = len(raw.translate(None, _ASCII_ALNUM)) < len(raw)
            noise = len(raw) - len(raw.translate(None, _ASCII_NOISE))
            prose_raw = text_prose.encode("ascii") if fenced else raw
            not_wordlike = len(prose_raw) - len(prose_raw.translate(None, _ASCII_NOT_WORDLIKE))
            switches = 0
        else:
            n_letters = LETTER.subn("", text)[1]
            latin = n_letters > 0 and _LATIN_LETTER.subn("", text_prose)[1] >= 0.8 * n_letters
            has_alnum = any(ch.isalnum() for ch in stripped)
            noise = _NOISE.subn("", text)[1]
            not_wordlike = _NOT_WORDLIKE.subn("", text_prose)[1]
            switches = _SWITCH.subn("", text)[1]
        counts.append((
            len(words), n_letters, latin, not stripped, has_alnum,
            bool(stripped) and stripped[-1] in _TERMINAL_CHARS and (not fenced or text.count("```") % 2 == 0),
            len(text), len(zlib.compress(raw, 6)) / len(raw) if len(raw) >= MIN_BYTES_COMPRESSION else nan,
            len(text_prose) - text_prose.count(" ") - text_prose.count("\n"), not_wordlike, noise, switches,
        ))
    table = np.array(counts, dtype=float).reshape(len(texts), len(_COUNT_COLUMNS))
    columns = {name: table[:, k].astype(kind) for k, (name, kind) in enumerate(_COUNT_COLUMNS.items())}
    n_words = columns.pop("n_words")
    ids = _with_new_tokens(np.fromiter(word_ids, dtype=np.int64, count=len(word_ids)), n_words, texts)
    prose_ids, n_prose = _prose_ids(ids, n_words, fenced_prose_tokens)
    loop_share, loop_unit = _tail_loops(ids, n_words, texts)
    return TextStats(
        prose=prose, n_words=n_words, n_prose_tokens=n_prose, **columns,
        repeated_ngram_share=_repeated_ngram_share(ids, n_words),
        tail_loop_share=loop_share, tail_loop_unit=loop_unit,
        **_token_sums(prose_ids, n_prose),
    )


_COUNT_COLUMNS = {
    "n_words": np.int64, "n_letters": np.int64, "latin": bool, "empty": bool, "has_alnum": bool,
    "ends_cleanly": bool, "text_chars": np.int64, "compression_ratio": float, "prose_chars": np.int64,
    "not_wordlike_chars": np.int64, "noise_chars": np.int64, "script_switches": np.int64,
}


def _with_new_tokens(ids: np.ndarray, lengths: np.ndarray, texts: list[str]) -> np.ndarray:
    """Give the tokens the vocabulary had not seen (id -1) their ids, splitting only the texts that hold them."""
    missing = np.flatnonzero(ids < 0)
    if len(missing):
        starts = np.cumsum(lengths) - lengths
        for row in np.unique(np.searchsorted(starts, missing, side="right") - 1).tolist():
            start = int(starts[row])
            ids[start : start + int(lengths[row])] = _VOCABULARY.ids(texts[row].split())
    return ids


def _prose_ids(word_ids: np.ndarray, n_words: np.ndarray, fenced_prose_tokens: dict[int, list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and counts of the prose: the words, except where code fences were blanked out."""
    if not fenced_prose_tokens:
        return word_ids, n_words
    ends = np.cumsum(n_words).tolist()
    pieces = [_VOCABULARY.ids(fenced_prose_tokens[row]) if row in fenced_prose_tokens else word_ids[end - n : end]
              for row, (end, n) in enumerate(zip(ends, n_words.tolist(), strict=True))]
    return np.concatenate(pieces), np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))


_NGRAM_BASE = 1_000_003
_SEGMENT_SHIFT = 40


def _repeated_ngram_share(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per response: 1 - distinct word 4-grams / all 4-grams (0 below MIN_WORDS_NGRAMS words).

    A 4-gram is hashed to one integer (int64 arithmetic wraps), kept to its low 40 bits
    and prefixed with the response index, so one sort of the batch groups equal 4-grams
    of the same response. Two distinct 4-grams of one response merge only on a 40-bit
    collision: about n^2 / 2^41, under 1e-7 for a 300-word response.
    """
    share = np.zeros(len(lengths))
    if len(ids) < 4:
        return share
    grams = ids[:-3] * _NGRAM_BASE
    for shift in (1, 2, 3):
        grams += ids[shift : len(ids) - 3 + shift]
        if shift < 3:
            grams *= _NGRAM_BASE
    grams &= (1 << _SEGMENT_SHIFT) - 1
    grams |= np.repeat(np.arange(len(lengths), dtype=np.int64) << _SEGMENT_SHIFT, lengths)[:-3]
    counted = lengths >= MIN_WORDS_NGRAMS
    keep = np.repeat(counted, lengths)[:-3]
    crossing = (np.cumsum(lengths)[counted][:, None] - np.arange(1, 4)).ravel()  # 4-grams running into the next response
    keep[crossing[crossing < len(keep)]] = False
    keys = np.sort(grams[keep])
    repeats = keys[1:][keys[1:] == keys[:-1]] >> _SEGMENT_SHIFT
    repeated = np.bincount(repeats, minlength=len(lengths))
    total = np.maximum(lengths - 3, 1)
    return np.where(lengths >= MIN_WORDS_NGRAMS, 1.0 - (total - repeated) / total, 0.0)


def _tail_loops(ids: np.ndarray, lengths: np.ndarray, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per response: share of words in the longest run of >= 3 repeats of a 1-40 word unit ending the text.

    A unit qualifies when the last two units each equal the one before; that test runs for
    all responses and units at once on a matrix of the last 120 word ids. Only the few
    (response, unit) pairs that pass are extended backwards in Python.
    """
    share, unit_of = np.zeros(len(lengths)), np.zeros(len(lengths), dtype=np.int64)
    if len(ids) == 0:
        return share, unit_of
    width = 3 * MAX_LOOP_UNIT
    ends = np.cumsum(lengths)
    columns = np.arange(-width, 0)
    # Padding left of a short text gets distinct negative ids, so it never matches anything.
    tails = np.where(columns >= -lengths[:, None], ids[np.clip(ends[:, None] + columns, 0, None)], -1 - np.arange(width))
    units = np.arange(1, MAX_LOOP_UNIT + 1)
    # Cheap first test: the last word equals the word one unit earlier. Few (response, unit) pairs pass.
    last_repeats = tails[:, -1:] == tails[:, width - 1 - units]
    last_repeats[lengths < MIN_WORDS_TAIL_LOOP] = False
    passes = np.zeros((len(lengths), MAX_LOOP_UNIT + 1), dtype=bool)
    for unit in (np.flatnonzero(last_repeats.any(axis=0)) + 1).tolist():
        rows = np.flatnonzero(last_repeats[:, unit - 1])
        block = tails[rows]
        passes[rows, unit] = (block[:, width - 2 * unit:] == block[:, width - 3 * unit: width - unit]).all(axis=1)
    for row in np.flatnonzero(passes.any(axis=1)).tolist():
        share[row], unit_of[row] = _longest_tail_run(texts[row].split(), np.flatnonzero(passes[row]).tolist())
    return share, unit_of


def _longest_tail_run(words: list[str], units: list[int]) -> tuple[float, int]:
    """Of the units whose last three repeats end the text, the one covering the largest share (ties: shortest)."""
    n = len(words)
    best, best_unit = 0.0, 0
    for unit in units:
        tail = words[n - unit:]
        start = n - 3 * unit
        while start - unit >= 0 and words[start - unit : start] == tail:
            start -= unit
        if (n - start) / n > best:
            best, best_unit = (n - start) / n, unit
    return best, best_unit


def _pair_anomalies(bits: np.ndarray) -> np.ndarray:
    """Per adjacent token pair: how many English word-order rules it breaks."""
    first, second = bits[:-1], bits[1:]

    def both(flag_first: int, flag_second: int) -> np.ndarray:
        return ((first & flag_first) != 0) & ((second & flag_second) != 0)

    return (
        both(DET, FUNC).astype(np.int64)  # "the of", "a and"
        + both(ENDS, LOWER_START)  # ". lowercase"
        + (((first & (ENDS | COLON)) == 0) & ((second & STARTER_UPPER) != 0))  # "word The"
        + both(PREP, JOIN)  # "of in", "to and"
    )


def _token_sums(ids: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
    """Per-response sums of the prose tokens' features (differences of running sums at the responses' ends)."""
    ends = np.cumsum(lengths)
    starts = ends - lengths
    last = ends[lengths > 0] - 1
    packed = _VOCABULARY.features[ids]
    bits = packed & 0xFFF

    def total(values: np.ndarray) -> np.ndarray:
        running = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(values, out=running[1:])
        return running[ends] - running[starts]

    # Pair (i, i+1) counted at i; the pair that would cross into the next response is dropped.
    anomalies = np.zeros(len(ids), dtype=np.int64)
    anomalies[:-1] = _pair_anomalies(bits)
    anomalies[last] = (bits[last] & DET_END) != 0  # ends on a determiner
    return {
        "odd_tokens": total((packed >> 32) & 0x3FF),
        "word_pieces": total((packed >> 12) & 0x3FF),
        "non_word_pieces": total((packed >> 22) & 0x3FF),
        "code_tokens": total((packed >> 42) & 1),
        "word_order_anomalies": total(anomalies),
        "alphabetic_tokens": total((bits & ALPHA) != 0),
        "function_tokens": total((bits & FUNC_ALPHA) != 0),
    }
