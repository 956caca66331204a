"""English word-pair statistics: how much more (or less) often a word follows another than chance predicts.

The tables are the English frequency dictionaries shipped in the ``symspellpy`` wheel
(``frequency_dictionary_en_82_765.txt``: 82,765 words; ``frequency_bigramdictionary_en_243_342.txt``:
242,342 word pairs). SymSpell built them by intersecting Google Books Ngram counts with
SCOWL, the Spell Checker Oriented Word Lists (wolfgarbe/SymSpell, README.md, "Frequency
dictionary", commit 47449b550d00a44e58c4cdf9350b2747cc0199ab). Licences: SymSpell and
symspellpy are MIT; the Google Books Ngram data is CC BY 3.0; SCOWL's own permissive terms
(http://wordlist.aspell.net/scowl-readme/). The pair table keeps only pairs counted at least
6,400,000 times, which is what makes an absent pair informative: a pair of frequent words
that the table lacks is rarer than its words' frequencies predict.

Score of an adjacent pair (a, b), both in the word list (natural log):
``log p(a b) - log p(a) - log p(b)`` (pointwise mutual information; p(a b) relative to the
total of the listed pairs, p(a) to the total of the listed words) when the pair is listed; when it is not, the same with c(a b) replaced by the table's floor, capped at 0
(backoff: an absent pair of rare words is no evidence either way, an absent pair of frequent
words is evidence against).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import numpy as np

UNIGRAM_FILE = "frequency_dictionary_en_82_765.txt"
BIGRAM_FILE = "frequency_bigramdictionary_en_243_342.txt"


@dataclass(frozen=True)
class BigramModel:
    ids: dict[str, int]        # word -> id; ``size`` means "not in the list"
    size: int
    log_unigram: np.ndarray    # log count per id, with log N subtracted
    pair_keys: np.ndarray      # sorted ``a * size + b`` of the listed pairs
    log_pair: np.ndarray       # log count of each listed pair
    log_floor: float           # log of the smallest listed pair count

    def pair_scores(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Scores of the pairs (first[k], second[k]) of word ids (both < size); see the module docstring."""
        keys = first * self.size + second
        where = np.minimum(np.searchsorted(self.pair_keys, keys), len(self.pair_keys) - 1)
        listed = self.pair_keys[where] == keys
        chance = self.log_unigram[first] + self.log_unigram[second]
        return np.where(listed, self.log_pair[where] - chance, np.minimum(0.0, self.log_floor - chance))


def _read(name: str) -> list[list[str]]:
    return [line.split() for line in files("symspellpy").joinpath(name).read_text(encoding="utf-8").splitlines() if line.strip()]


@cache
def bigram_model() -> BigramModel:
    """The symspellpy tables, read once per process (~0.4 s)."""
    ids: dict[str, int] = {}
    counts: list[int] = []
    for word, count in _read(UNIGRAM_FILE):
        if word not in ids:
            ids[word] = len(counts)
            counts.append(int(count))
    size = len(counts)
    total = float(sum(counts))
    log_unigram = np.log(np.asarray(counts, dtype=float) / total)
    pairs = {(ids[a], ids[b]): int(c) for a, b, c in _read(BIGRAM_FILE) if a in ids and b in ids}
    keys = np.fromiter((a * size + b for a, b in pairs), dtype=np.int64, count=len(pairs))
    order = np.argsort(keys)
    pair_counts = np.fromiter(pairs.values(), dtype=float, count=len(pairs))[order]
    log_pair = np.log(pair_counts / pair_counts.sum())  # the listed pairs stand in for the pair total
    return BigramModel(ids=ids, size=size, log_unigram=log_unigram, pair_keys=keys[order], log_pair=log_pair,
                       log_floor=float(log_pair.min()))
