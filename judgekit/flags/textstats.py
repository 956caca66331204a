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

from judgekit.flags.bigrams import bigram_model
from judgekit.flags.code import split_code

MAX_LOOP_UNIT = 40           # longest repeated unit (in words) the tail-loop search looks for
MIN_WORDS_NGRAMS = 12        # texts shorter than this get a repeated-4-gram share of 0
MIN_WORDS_TAIL_LOOP = 9
# A unit of this many words or more needs two back-to-back copies at the end, a shorter one three: fluent
# text rarely ends by repeating a 6-word stretch verbatim, but it does repeat short phrases and list items.
MIN_UNIT_TWICE = 6
MIN_BYTES_COMPRESSION = 200  # zlib ratios of shorter texts say little
BATCH_RESPONSES = 2048
BATCH_CHARS = 2_000_000      # bounds a batch's token arrays however long its responses are
PAIR_WINDOW = 16             # scored word pairs per window: a salad tail after a coherent opening shows in a window
_EMPHASIS = "*_"             # Markdown emphasis around a word is not punctuation between words ("**Ethics", "*right*")

_NOISE = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff]")
_NOT_WORDLIKE = re.compile(r"[^\w\s.,;:!?'\"()\[\]{}\-–—/%$&*#@<>=+`~|\\^…’“”«»‘¿¡·•]")
_VOWELLESS = re.compile(r"\b[b-df-hj-np-tv-xz]{3,}\b")
_MIXED_ALNUM = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z\d]{3,}\b")
_SYMBOL_CANDIDATE = re.compile(r"\S*[#@{}\[\]<>|\\~^]\S*")
_HAS_LATIN = re.compile(r"[A-Za-z]")
_SYMBOLS_ONLY_TOKEN = re.compile(r"(?<!\S)[^\w\s]{2,}(?!\S)")
_CODE_SYMBOLS = frozenset("[]{}<>|\\$_=;")
_LOWER_WORD = re.compile(r"[a-z]{2,}")
_ADDRESS = re.compile(r"[a-z]\.[a-z]|/|@|://")
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
# Determiners that are never pronouns ("this will", "those who" are English; "the will" is not).
ARTICLES = frozenset("the a an my your its our their every".split())
FUNCTION_WORDS = DETERMINERS | frozenset(
    """of to in for on with at by from into onto upon about over under between through during without within
    and or but nor so yet if because although though while whereas than as is are was were be been being am do
    does did have has had will would shall should can could may might must not no""".split()
)
# Function words that cannot follow an article; modal verbs and "no", "do" can ("the will", "a must", "the no vote").
NOT_AFTER_ARTICLE = FUNCTION_WORDS - frozenset("can will may might must no do does did have has had being".split())
SENTENCE_STARTERS = frozenset("the this it i a an in for to if when you we they there these however but and".split())
# Capitalised, these are sentence openers out of place (shuffles, salad), not names: their pairs stay scored.
_NEVER_NAMES = FUNCTION_WORDS | SENTENCE_STARTERS
ABBREVIATIONS = frozenset("e.g i.e etc vs mr mrs ms dr st no fig approx cf al inc ltd co jr sr a.m p.m u.s".split())
_CLOSING = "\"')]*_”’»"
_OPENING = "\"'([{*_“‘«"
_SHORT_PIECE = 5  # word pieces up to this long must be among the commonest 100,000 words; longer ones among all of them


@cache
def _wordfreq_english() -> list[str]:
    """wordfreq's English list by frequency (~320,000 words; bundled, read with msgpack, no pickle)."""
    import wordfreq

    return wordfreq.top_n_list("en", 10_000_000)


@cache
def english_words() -> frozenset[str]:
    """The 100,000 commonest English words: short pieces must be among these to count as words."""
    return frozenset(_wordfreq_english()[:100_000])


@cache
def all_english_words() -> frozenset[str]:
    """Every word of wordfreq's English list: longer pieces (names, transliterations, domain terms) only need to be here."""
    return frozenset(_wordfreq_english())


# ---------------------------------------------------------------- per-token features

# Feature bits of a token, computed once per distinct token (the low 16 bits of its packed features).
(ARTICLE, NO_ARTICLE_BEFORE, ENDS, LOWER_START, STARTER_UPPER, COLON, ALPHA, FUNC_ALPHA, ARTICLE_END, BREAK_AFTER,
 BREAK_BEFORE, HAS_LETTER, CAPITALISED) = (1 << k for k in range(13))
# Packed layout: bits | [a-z]{2,} pieces << 16 | non-word pieces << 24 | odd << 32 | code << 40 | bigram word id << 41.
_COUNT_BITS = 0xFF
_WORD_SHIFT = 41
_TOKEN_LIMIT = 2_000_000


def _token_features(token: str) -> int:
    word = token.strip("\"'()[]*_,;:").lower()
    closed = token.rstrip(_CLOSING) or token  # '"Girls."' ends a sentence as 'Girls.' does
    bits = 0
    if word in ARTICLES:
        bits |= ARTICLE
    if word in NOT_AFTER_ARTICLE:
        bits |= NO_ARTICLE_BEFORE
    if closed[-1] in ".!?" and word.rstrip(".!?") not in ABBREVIATIONS and not closed[:-1].replace(".", "").isdigit():
        bits |= ENDS
    if token[0].isalpha() and token[0].islower():
        bits |= LOWER_START
    if token[0].isupper() and word in SENTENCE_STARTERS and word != "i":
        bits |= STARTER_UPPER
    if closed[-1] == ":":
        bits |= COLON
    if word.isalpha():
        bits |= ALPHA
        if word in FUNCTION_WORDS:
            bits |= FUNC_ALPHA
    if word.rstrip(".!?") in ARTICLES:
        bits |= ARTICLE_END
    core = token.strip(_EMPHASIS) or token  # "**Ethics" and "*right*" are words; "1.", "##", "-" are not
    if not core[-1].isalnum():
        bits |= BREAK_AFTER
    if not core[0].isalnum():
        bits |= BREAK_BEFORE
    lead = token.lstrip(_OPENING)
    if lead[:1].isupper() and word.rstrip(".!?") not in _NEVER_NAMES:
        bits |= CAPITALISED
    if _HAS_LATIN.search(token) or LETTER.search(token):
        bits |= HAS_LETTER
    pieces = _LOWER_WORD.findall(token.lower())
    odd = len(_VOWELLESS.findall(token)) + len(_MIXED_ALNUM.findall(token)) + bool(_SYMBOL_CANDIDATE.fullmatch(token) and _HAS_LATIN.search(token))
    code = bool(_SYMBOLS_ONLY_TOKEN.fullmatch(token)) and not _CODE_SYMBOLS.isdisjoint(token)
    packed = bits | min(len(pieces), _COUNT_BITS) << 16 | min(_non_word_pieces(token, pieces), _COUNT_BITS) << 24
    return packed | min(odd, _COUNT_BITS) << 32 | int(code) << 40 | _bigram_word_id(token, word) << _WORD_SHIFT


def _non_word_pieces(token: str, pieces: list[str]) -> int:
    """Pieces of a lower-case running word that are not English words.

    Capitalised tokens (names), quoted ones (a term being mentioned, a transliteration),
    tokens holding digits (formulas, codes) and addresses (``www.x.com``, ``a/b``, ``@x``)
    are not running words and are not counted.
    """
    if not pieces or not token[0].islower() or any(ch.isdigit() for ch in token) or _ADDRESS.search(token):
        return 0
    common, every = english_words(), all_english_words()
    return sum(1 for w in pieces if w not in (common if len(w) <= _SHORT_PIECE else every))


def _bigram_word_id(token: str, word: str) -> int:
    """The word's id in the bigram model's vocabulary (``bigram_model().size``: none).

    Acronyms get none, and so do contractions: the pair table splits "I'm" into two tokens,
    so it lists no pair holding one and every such pair would look unseen.
    """
    model = bigram_model()
    if (len(token) > 1 and token.isupper()) or "'" in word or "’" in word:
        return model.size
    return model.ids.get(word, model.size)


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

    Token counts are over whitespace-separated tokens. ``prose`` is the text with its code
    (fenced blocks, inline spans, unfenced code lines: :func:`judgekit.flags.code.split_code`)
    blanked out; the salad, word-order and word-pair counts are over its tokens.
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
    code_chars: np.ndarray             # non-space characters of code blocks, fenced or not (judgekit.flags.code)
    repeated_ngram_share: np.ndarray   # share of word 4-grams repeating an earlier one; 0 below MIN_WORDS_NGRAMS
    tail_loop_share: np.ndarray        # share of words in a run of repeats of one unit ending the text (min_repeats copies)
    tail_loop_unit: np.ndarray         # that unit's length in words (0: no loop)
    odd_tokens: np.ndarray             # vowel-less or letter-digit-mixed pieces, symbol-laden tokens
    word_pieces: np.ndarray            # [a-z]{2,} pieces
    non_word_pieces: np.ndarray        # of those, outside english_words()
    code_tokens: np.ndarray            # tokens made only of symbols, some of them code symbols
    word_order_anomalies: np.ndarray   # adjacent-token pairs that break English word order, see _pair_anomalies
    alphabetic_tokens: np.ndarray
    function_tokens: np.ndarray        # alphabetic tokens that are English function words
    word_pairs: np.ndarray             # adjacent word pairs scored by the bigram model (same line, no punctuation between)
    word_pair_score: np.ndarray        # their mean score (NaN: none), see judgekit.flags.bigrams
    word_pair_window: np.ndarray       # lowest mean score over PAIR_WINDOW consecutive scored pairs of one line (NaN: none)


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
    code_prose_tokens: dict[int, list[str]] = {}
    line_starts: dict[int, list[int]] = {}
    counts: list[tuple] = []
    nan = float("nan")
    for row, text in enumerate(texts):
        words = text.split()
        extend(map(lookup, words, repeat(-1)))
        raw = text.encode("utf-8")
        stripped = text.rstrip()
        fenced = "```" in text
        split = split_code(text)
        text_prose = split.prose
        has_code = text_prose is not text
        if has_code:
            code_prose_tokens[row] = text_prose.split()
        prose.append(text_prose)
        if "\n" in text_prose:
            line_starts[row] = _line_starts(text_prose)
        if text.isascii():
            n_letters = len(raw) - len(raw.translate(None, _ASCII_LETTERS))
            latin = n_letters > 0
            has_alnum = len(raw.translate(None, _ASCII_ALNUM)) < len(raw)
            noise = len(raw) - len(raw.translate(None, _ASCII_NOISE))
            prose_raw = text_prose.encode("ascii") if has_code else raw
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
            split.block_chars,
        ))
    table = np.array(counts, dtype=float).reshape(len(texts), len(_COUNT_COLUMNS))
    columns = {name: table[:, k].astype(kind) for k, (name, kind) in enumerate(_COUNT_COLUMNS.items())}
    n_words = columns.pop("n_words")
    ids = _with_new_tokens(np.fromiter(word_ids, dtype=np.int64, count=len(word_ids)), n_words, texts)
    prose_ids, n_prose = _prose_ids(ids, n_words, code_prose_tokens)
    loop_share, loop_unit = _tail_loops(ids, n_words, texts)
    return TextStats(
        prose=prose, n_words=n_words, n_prose_tokens=n_prose, **columns,
        repeated_ngram_share=_repeated_ngram_share(ids, n_words),
        tail_loop_share=loop_share, tail_loop_unit=loop_unit,
        **_token_sums(prose_ids, n_prose, _line_start_mask(line_starts, n_prose)),
    )


def _line_starts(text: str) -> list[int]:
    """Indices of the tokens that begin a line (after the first); no pair rule or word pair crosses a line break."""
    starts, position = [], 0
    for line in text.split("\n"):
        if position:
            starts.append(position)
        position += len(line.split())
    return starts


def _line_start_mask(line_starts: dict[int, list[int]], lengths: np.ndarray) -> np.ndarray:
    mask = np.zeros(int(lengths.sum()), dtype=bool)
    if line_starts:
        offsets = np.cumsum(lengths) - lengths
        index = np.concatenate([np.asarray(starts, dtype=np.int64) + offsets[row] for row, starts in line_starts.items()])
        ends = np.repeat([offsets[row] + lengths[row] for row in line_starts], [len(v) for v in line_starts.values()])
        mask[index[index < ends]] = True
    return mask


_COUNT_COLUMNS = {
    "n_words": np.int64, "n_letters": np.int64, "latin": bool, "empty": bool, "has_alnum": bool,
    "ends_cleanly": bool, "text_chars": np.int64, "compression_ratio": float, "prose_chars": np.int64,
    "not_wordlike_chars": np.int64, "noise_chars": np.int64, "script_switches": np.int64, "code_chars": np.int64,
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


def _prose_ids(word_ids: np.ndarray, n_words: np.ndarray, code_prose_tokens: dict[int, list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and counts of the prose: the words, except where code fences were blanked out."""
    if not code_prose_tokens:
        return word_ids, n_words
    ends = np.cumsum(n_words).tolist()
    pieces = [_VOCABULARY.ids(code_prose_tokens[row]) if row in code_prose_tokens else word_ids[end - n : end]
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
    """Per response: share of words in the longest run of repeats of a 1-40 word unit ending the text.

    A unit qualifies when the text ends with :func:`min_repeats` back-to-back copies of it (any
    phase: a loop cut mid-unit still ends periodic); that test runs for all responses and units
    at once on a matrix of the last 120 word ids. Only the few (response, unit) pairs that pass
    are extended backwards in Python.
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
        copies = min_repeats(unit)
        passes[rows, unit] = (block[:, width - (copies - 1) * unit:] == block[:, width - copies * unit: width - unit]).all(axis=1)
    for row in np.flatnonzero(passes.any(axis=1)).tolist():
        share[row], unit_of[row] = _longest_tail_run(texts[row].split(), np.flatnonzero(passes[row]).tolist())
    return share, unit_of


def min_repeats(unit: int) -> int:
    """Back-to-back copies of a ``unit``-word unit that make a tail loop: 3, or 2 from ``MIN_UNIT_TWICE`` words."""
    return 2 if unit >= MIN_UNIT_TWICE else 3


def _longest_tail_run(words: list[str], units: list[int]) -> tuple[float, int]:
    """Of the units whose last repeats end the text, the one covering the largest share (ties: shortest)."""
    n = len(words)
    best, best_unit = 0.0, 0
    for unit in units:
        tail = words[n - unit:]
        start = n - min_repeats(unit) * unit
        while start - unit >= 0 and words[start - unit : start] == tail:
            start -= unit
        if (n - start) / n > best:
            best, best_unit = (n - start) / n, unit
    return best, best_unit


def _pair_anomalies(bits: np.ndarray, same_line: np.ndarray) -> np.ndarray:
    """Per adjacent token pair (i, i+1): how many English word-order rules it breaks.

    ``same_line[i]``: tokens i and i+1 are in one response and on one line. The rules are
    kept to pairs fluent text does not make: lists, headings, titles and code do not end a
    line with punctuation, so nothing is counted across a line break.
    """
    first, second = bits[:-1], bits[1:]
    third = np.zeros_like(second)
    third[:-1] = np.where(same_line[1:], bits[2:], 0)  # the token after the pair, when on the same line

    def has(values: np.ndarray, flag: int) -> np.ndarray:
        return (values & flag) != 0

    article_then_function = has(first, ARTICLE) & ~has(first, BREAK_AFTER) & has(second, NO_ARTICLE_BEFORE) & has(second, LOWER_START)
    stop_then_lower = has(first, ENDS) & has(second, LOWER_START)
    # "word The next": a capitalised sentence starter mid-sentence, followed by a lower-case word (not a title)
    starter_inside = (~has(first, ENDS | COLON) & has(first, HAS_LETTER) & has(second, STARTER_UPPER)
                      & has(third, LOWER_START))
    return (article_then_function.astype(np.int64) + stop_then_lower + starter_inside) * same_line


_SCORE_SCALE = 1 << 20  # pair scores in fixed point, so sums and windows are exact whatever the batch


def name_runs(bits: np.ndarray, same_line: np.ndarray) -> np.ndarray:
    """Per token: part of a run of two or more capitalised words on one line ("Albert Einstein", "Universal Basic
    Income"): a name or a title, whose pairs are not scored at all. A salad's stray capitalised words rarely stand
    side by side."""
    capitalised = (bits & CAPITALISED) != 0
    joined = same_line & capitalised[:-1] & capitalised[1:]
    run = np.zeros(len(bits), dtype=bool)
    run[:-1] |= joined
    run[1:] |= joined
    return run


def name_tokens(bits: np.ndarray, same_line: np.ndarray) -> np.ndarray:
    """Per token: a name, whose pairs score 0 (``same_line[i]``: tokens i and i+1 share a line).

    A capitalised word ("I" aside) inside a sentence is a name or a title word ("the French", "invite Cleopatra",
    "Universal Access to Healthcare"); so is one that opens a sentence, a line or a list item when the next word is
    capitalised too ("Albert Einstein", "Marie Curie"). A capitalised sentence opener followed by a lower-case word
    ("Sell items", "The dough") is an ordinary word. The word list counts "french" and "paris" in every use, so the
    pairs of a name say what English does with the common noun, not with the name: they are no evidence either way,
    like an absent pair of rare words. They still count as pairs, so a salad's stray capitalised words still dilute
    its windows.
    """
    capitalised = (bits & CAPITALISED) != 0
    opens = np.ones(len(bits), dtype=bool)  # first token of a response or a line, or after an end, a colon or a marker
    opens[1:] = ~same_line | ((bits[:-1] & (ENDS | COLON)) != 0) | ((bits[:-1] & HAS_LETTER) == 0)
    next_capitalised = np.zeros(len(bits), dtype=bool)
    next_capitalised[:-1] = same_line & capitalised[1:]
    return capitalised & (~opens | next_capitalised)


def _window_minimum(values: np.ndarray, owner: np.ndarray, width: int, n_responses: int) -> np.ndarray:
    """Per response, the lowest sum of ``width`` consecutive values (NaN: fewer); ``owner``: each value's response, sorted."""
    out = np.full(n_responses, np.nan)
    if len(values) < width:
        return out
    running = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(values, out=running[1:])
    sums = running[width:] - running[:-width]
    start_owner = owner[: len(sums)]
    inside = start_owner == owner[width - 1 :]
    sums, start_owner = sums[inside], start_owner[inside]
    if len(sums):
        first = np.flatnonzero(np.r_[True, start_owner[1:] != start_owner[:-1]])
        out[start_owner[first]] = np.minimum.reduceat(sums, first)
    return out


def _line_numbers(line_start: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per token, the number of its line in the batch (every response starts a new line)."""
    first_of_response = np.zeros(len(line_start), dtype=bool)
    starts = (np.cumsum(lengths) - lengths)[lengths > 0]
    first_of_response[starts] = True
    return np.cumsum(line_start | first_of_response) - 1


def _word_pair_stats(packed: np.ndarray, bits: np.ndarray, same_line: np.ndarray, n_responses: int,
                     response_of_pair: np.ndarray, line_of_token: np.ndarray) -> dict[str, np.ndarray]:
    """Bigram-model scores of adjacent word pairs with no punctuation or line break between, none for a word of a name
    run (:func:`name_runs`), 0 where one is a lone name (:func:`name_tokens`): count, mean, window minimum."""
    model = bigram_model()
    words = np.where(name_runs(bits, same_line), model.size, (packed >> _WORD_SHIFT) & 0x1FFFF)
    names = name_tokens(bits, same_line)
    scored = (same_line & (words[:-1] < model.size) & (words[1:] < model.size)
              & ~((bits[:-1] & BREAK_AFTER) != 0) & ~((bits[1:] & BREAK_BEFORE) != 0))
    where = np.flatnonzero(scored)
    with_name = names[where] | names[where + 1]
    scores = np.where(with_name, 0, np.round(model.pair_scores(words[where], words[where + 1]) * _SCORE_SCALE).astype(np.int64))
    owner = response_of_pair[where]
    count = np.bincount(owner, minlength=n_responses)
    total = np.bincount(owner, weights=scores, minlength=n_responses)  # exact: integers below 2**53
    # Windows stay inside a line: the items of a list or a recipe are separate fragments, not one run of words.
    line_of_pair = line_of_token[where]
    n_lines = int(line_of_pair[-1]) + 1 if len(where) else 0
    line_window = _window_minimum(scores, line_of_pair, PAIR_WINDOW, n_lines)
    response_of_line = np.zeros(n_lines, dtype=np.int64)
    response_of_line[line_of_pair] = owner
    lines = np.flatnonzero(np.isfinite(line_window))  # ascending, so their responses are too
    window = np.full(n_responses, np.nan)
    if len(lines):
        responses = response_of_line[lines]
        first = np.flatnonzero(np.r_[True, responses[1:] != responses[:-1]])
        window[responses[first]] = np.minimum.reduceat(line_window[lines], first) / (PAIR_WINDOW * _SCORE_SCALE)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / (np.maximum(count, 1) * _SCORE_SCALE), np.nan)
    return {"word_pairs": count, "word_pair_score": mean, "word_pair_window": window}


def _token_sums(ids: np.ndarray, lengths: np.ndarray, line_start: np.ndarray) -> dict[str, np.ndarray]:
    """Per-response sums of the prose tokens' features (differences of running sums at the responses' ends)."""
    ends = np.cumsum(lengths)
    starts = ends - lengths
    last = ends[lengths > 0] - 1
    packed = _VOCABULARY.features[ids]
    bits = packed & 0xFFFF

    def total(values: np.ndarray) -> np.ndarray:
        running = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(values, out=running[1:])
        return running[ends] - running[starts]

    # Pair (i, i+1) counted at i; a pair crossing into the next response or a new line is not a pair.
    same_line = ~line_start[1:]
    same_line[last[last < len(same_line)]] = False
    anomalies = np.zeros(len(ids), dtype=np.int64)
    anomalies[:-1] = _pair_anomalies(bits, same_line)
    anomalies[last] = (bits[last] & ARTICLE_END) != 0  # ends on an article
    response_of_pair = np.repeat(np.arange(len(lengths)), lengths)[:-1]
    return {
        "odd_tokens": total((packed >> 32) & _COUNT_BITS),
        "word_pieces": total((packed >> 16) & _COUNT_BITS),
        "non_word_pieces": total((packed >> 24) & _COUNT_BITS),
        "code_tokens": total((packed >> 40) & 1),
        "word_order_anomalies": total(anomalies),
        "alphabetic_tokens": total((bits & ALPHA) != 0),
        "function_tokens": total((bits & FUNC_ALPHA) != 0),
        **_word_pair_stats(packed, bits, same_line, len(lengths), response_of_pair, _line_numbers(line_start, lengths)),
    }
